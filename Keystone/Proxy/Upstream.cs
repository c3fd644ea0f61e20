using Keystone.Configuration;
using Keystone.Observability;
using Prometheus;
using Yarp.ReverseProxy.Forwarder;

namespace Keystone.Proxy;

/// <summary>A named set of targets with the settings used to forward to them.</summary>
public sealed class Upstream
{
    private readonly ILoadBalancer _balancer;
    private readonly Target[] _targets;

    /// <param name="previous">The same-named upstream of the snapshot being replaced: a target with the same URL keeps its health.</param>
    public Upstream(UpstreamConfig config, Upstream? previous = null)
    {
        Name = config.Name;
        PreserveHost = config.PreserveHost;
        var targets = new Target[config.Targets.Count];
        for (int i = 0; i < targets.Length; i++)
            targets[i] = new Target(config.Name, config.Targets[i].Url, config.Targets[i].Weight,
                previous?.FindTarget(config.Targets[i].Url), config.Eject, config.CircuitBreaker);
        Targets = _targets = targets;
        _balancer = config.Balancer switch
        {
            BalancerKind.LeastRequests => new LeastRequests(targets),
            BalancerKind.Random => new RandomBalancer(targets),
            BalancerKind.Hash => new ConsistentHash(targets, HashKey.Parse(config.HashOn!)),
            _ => new SmoothWeightedRoundRobin(targets),
        };
        // YARP's activity timeout covers the wait for response headers and every idle gap after it.
        RequestConfig = new ForwarderRequestConfig { ActivityTimeout = config.Timeout };
        Health = config.Health;
        Eject = config.Eject;
        Retries = config.Retries;
        ConnectTimeout = config.ConnectTimeout;
        Panic = config.Panic;
        Duration = UpstreamMetrics.Duration(config.Name);
    }

    public string Name { get; }
    public IReadOnlyList<Target> Targets { get; }
    public bool PreserveHost { get; }
    public ForwarderRequestConfig RequestConfig { get; }

    public HealthCheckConfig? Health { get; }
    public PassiveEjectionConfig? Eject { get; }

    public TimeSpan ConnectTimeout { get; }

    /// <summary>How many times a safe request refused by one target is tried on another.</summary>
    public int Retries { get; }
    public Histogram.Child Duration { get; }

    public Target? FindTarget(Uri url)
    {
        foreach (var t in Targets)
            if (t.Url == url) return t;
        return null;
    }

    /// <summary>The next target to send to, or null when every target is out of rotation.</summary>
    public Target? PickTarget(HttpContext context)
    {
        var target = _balancer.Pick(context);
        if (target is not null || !Panic) return target;
        // Panic: health checks and ejections may be wrong (a shared dependency down, a bad check path);
        // trying every target beats refusing everyone. Plain rotation, weights aside.
        uint turn = (uint)Interlocked.Increment(ref _panicTurn);
        return _targets[(int)(turn % (uint)_targets.Length)];
    }

    /// <summary>Sends to every target when none is in rotation (<c>panic: true</c>).</summary>
    public bool Panic { get; }

    private int _panicTurn;
}
