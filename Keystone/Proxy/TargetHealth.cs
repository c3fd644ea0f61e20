namespace Keystone.Proxy;

/// <summary>
/// Whether a target may receive traffic, as the last health checks saw it. Written by one prober loop,
/// read by every request (one volatile read) and by the admin endpoints.
/// </summary>
public sealed class TargetHealth
{
    private readonly Lock _lock = new();
    private volatile bool _healthy = true;
    private int _successes;
    private int _failures;

    private Prometheus.Gauge.Child? _gauge;

    public bool IsHealthy => _healthy;

    /// <summary>Mirrors the state into <paramref name="gauge"/> from now on; a second call (after a reload) changes nothing.</summary>
    public void BindGauge(Prometheus.Gauge.Child gauge)
    {
        lock (_lock)
        {
            if (_gauge is not null) return;
            _gauge = gauge;
            Changed += healthy => gauge.Set(healthy ? 1 : 0);
            gauge.Set(_healthy ? 1 : 0);
        }
    }

    /// <summary>Raised with the new state when a threshold flips it; used to update the health gauge.</summary>
    public event Action<bool>? Changed;

    public double? LastCheckMilliseconds { get; private set; }
    public DateTimeOffset? LastCheckedAt { get; private set; }
    public string? LastError { get; private set; }

    /// <summary>Records one check; <paramref name="healthyThreshold"/> passes in a row admit, <paramref name="unhealthyThreshold"/> failures eject.</summary>
    public void Record(bool passed, double milliseconds, string? error, int healthyThreshold, int unhealthyThreshold)
    {
        bool? flipped = null;
        lock (_lock)
        {
            LastCheckMilliseconds = milliseconds;
            LastCheckedAt = DateTimeOffset.UtcNow;
            LastError = passed ? null : error;
            if (passed)
            {
                _failures = 0;
                if (++_successes >= healthyThreshold && !_healthy) flipped = _healthy = true;
            }
            else
            {
                _successes = 0;
                if (++_failures >= unhealthyThreshold && _healthy) flipped = _healthy = false;
            }
        }
        if (flipped is { } now) Changed?.Invoke(now);
    }
}
