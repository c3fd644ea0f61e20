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
        // YARP's activity timeout covers the wait for response headers and every idle gap after it; when
        // timeout and idle_timeout differ it takes the larger, and UpstreamTimeoutHandler enforces the other.
        Timeout = config.Timeout;
        IdleTimeout = config.IdleTimeout;
        if (config.IdleTimeout != config.Timeout) Timeouts = new UpstreamTimeouts(config.Timeout, config.IdleTimeout);
        RequestConfig = new ForwarderRequestConfig { ActivityTimeout = Timeouts?.Activity ?? config.Timeout };
        Health = config.Health;
        Eject = config.Eject;
        Retry = config.Retry;
        RetryBudget = new RetryBudget(config.Retry.BudgetRatio);
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

    /// <summary>The longest wait for response headers (<c>timeout</c>).</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The longest gap between reads of the response body (<c>idle_timeout</c>).</summary>
    public TimeSpan IdleTimeout { get; }

    /// <summary>Null when <c>timeout</c> and <c>idle_timeout</c> are the same and YARP's activity timeout does both.</summary>
    public UpstreamTimeouts? Timeouts { get; }

    public RetryPolicy Retry { get; }

    /// <summary>Retries in the last ten seconds against requests; a fresh budget on every reload.</summary>
    public RetryBudget RetryBudget { get; }

    /// <summary>True when a retry could go to a target other than <paramref name="target"/> now.</summary>
    public bool HasOtherUsable(Target target)
    {
        foreach (var t in _targets)
            if (t != target && t.IsUsable) return true;
        return InPanic && _targets.Length > 1;
    }

    /// <summary><c>panic: true</c> and no target in rotation: every target is sent to.</summary>
    public bool InPanic
    {
        get
        {
            if (!Panic) return false;
            foreach (var t in _targets)
                if (t.IsUsable) return false;
            return true;
        }
    }

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
