using Keystone.Observability;
using Prometheus;

namespace Keystone.Proxy;

/// <summary>One backend server of an upstream.</summary>
public sealed class Target
{
    /// <param name="health">The health of the same target in the snapshot being replaced, so a reload never puts a dead target back.</param>
    public Target(string upstream, Uri url, int weight, TargetHealth? health = null)
    {
        Url = url;
        Weight = weight;
        Origin = url.GetLeftPart(UriPartial.Authority);
        BasePath = url.AbsolutePath.TrimEnd('/');
        Name = url.Authority;
        Outcomes = UpstreamMetrics.Outcomes(upstream, Name);
        _upstream = upstream;
        Health = health ?? new TargetHealth();
    }

    public Uri Url { get; }
    public int Weight { get; }

    /// <summary><c>scheme://host:port</c>, the part every upstream request URI starts with.</summary>
    public string Origin { get; }

    /// <summary>The target URL's path without a trailing slash ("" for none), prepended to every upstream path.</summary>
    public string BasePath { get; }

    /// <summary><c>host:port</c>: how the target is named in logs and metrics.</summary>
    public string Name { get; }

    public TargetHealth Health { get; }

    private readonly string _upstream;

    /// <summary>
    /// Starts reporting this target's health gauge. Called once the snapshot is live, so that a config
    /// that is refused never creates series for targets that are not serving.
    /// </summary>
    public void Activate() => Health.BindGauge(UpstreamMetrics.Healthy(_upstream, Name));

    /// <summary>Request counters by <see cref="UpstreamOutcome"/>.</summary>
    public Counter.Child[] Outcomes { get; }

    /// <summary>Requests being forwarded to this target right now.</summary>
    public int InFlight;

    /// <summary>How the last failed forward ended (a YARP ForwarderError name), for the admin API.</summary>
    public volatile string? LastError;

    // Smooth weighted round-robin state; guarded by the owning balancer's lock.
    internal int CurrentWeight;
}
