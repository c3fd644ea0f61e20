using Keystone.Observability;
using Prometheus;

namespace Keystone.Proxy;

/// <summary>One backend server of an upstream.</summary>
public sealed class Target
{
    /// <param name="previous">The same target in the snapshot being replaced: its health, ejection and breaker carry
    /// over, so a reload never puts a dead target back.</param>
    /// <param name="eject">Passive ejection settings; null turns it off.</param>
    /// <param name="breaker">Circuit breaker settings; null turns it off.</param>
    public Target(string upstream, Uri url, int weight, Target? previous = null,
        PassiveEjectionConfig? eject = null, CircuitBreakerConfig? breaker = null)
    {
        Url = url;
        Weight = weight;
        Origin = url.GetLeftPart(UriPartial.Authority);
        BasePath = url.AbsolutePath.TrimEnd('/');
        Name = url.Authority;
        Authority = Origin[(url.Scheme.Length + 3)..];
        // https targets go through YARP's client, which does TLS; plain http ones through the lean HTTP/1.1 path.
        if (url.Scheme == Uri.UriSchemeHttp) Connections = previous?.Connections ?? new Http1ConnectionPool(EndpointOf(url));
        Outcomes = UpstreamMetrics.Outcomes(upstream, Name);
        _upstream = upstream;
        Health = previous?.Health ?? new TargetHealth();
        Ejection = eject is null ? null : new PassiveEjection(eject, null, previous?.Ejection);
        Breaker = breaker is null ? null : new CircuitBreaker(breaker, null, previous?.Breaker);
    }

    /// <summary>In rotation: healthy by the active checks, not ejected, and its circuit not open.</summary>
    public bool IsUsable => Health.IsHealthy && Ejection?.IsEjected != true && Breaker?.IsAvailable != false;

    public PassiveEjection? Ejection { get; }
    public CircuitBreaker? Breaker { get; }

    public Uri Url { get; }
    public int Weight { get; }

    /// <summary><c>scheme://host:port</c>, the part every upstream request URI starts with.</summary>
    public string Origin { get; }

    /// <summary>The target URL's path without a trailing slash ("" for none), prepended to every upstream path.</summary>
    public string BasePath { get; }

    /// <summary>The Host header sent upstream: <c>host</c>, or <c>host:port</c> when the port is not the scheme's default.</summary>
    public string Authority { get; }

    /// <summary>Idle keep-alive connections of the lean HTTP/1.1 path; null for https targets. A reload keeps them.</summary>
    internal Http1ConnectionPool? Connections { get; }

    private static System.Net.EndPoint EndpointOf(Uri url) =>
        System.Net.IPAddress.TryParse(url.DnsSafeHost, out var address)
            ? new System.Net.IPEndPoint(address, url.Port)
            : new System.Net.DnsEndPoint(url.DnsSafeHost, url.Port);

    /// <summary><c>host:port</c>: how the target is named in logs and metrics.</summary>
    public string Name { get; }

    public TargetHealth Health { get; }

    private readonly string _upstream;

    /// <summary>
    /// Starts reporting this target's health gauge. Called once the snapshot is live, so that a config
    /// that is refused never creates series for targets that are not serving.
    /// </summary>
    public void Activate()
    {
        Health.BindGauge(UpstreamMetrics.Healthy(_upstream, Name));
        if (Breaker is { } breaker)
        {
            var gauge = UpstreamMetrics.CircuitState(_upstream, Name);
            breaker.StateChanged += state => gauge.Set((int)state);
            gauge.Set((int)breaker.State);
        }
    }

    /// <summary>Request counters by <see cref="UpstreamOutcome"/>.</summary>
    public Counter.Child[] Outcomes { get; }

    /// <summary>Requests being forwarded to this target right now.</summary>
    public int InFlight;

    /// <summary>How the last failed forward ended (a YARP ForwarderError name), for the admin API.</summary>
    public volatile string? LastError;

    // Smooth weighted round-robin state; guarded by the owning balancer's lock.
    internal int CurrentWeight;
}
