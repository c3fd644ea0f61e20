namespace Keystone.Proxy;

/// <summary>
/// nginx's smooth weighted round-robin: weights 5,1,1 give a a b a c a a, spreading the heavy target's
/// turns instead of sending it bursts.
/// </summary>
public sealed class SmoothWeightedRoundRobin : ILoadBalancer
{
    private readonly Target[] _targets;
    private readonly Lock _lock = new();

    public SmoothWeightedRoundRobin(Target[] targets)
    {
        _targets = targets;
    }

    public Target? Pick(HttpContext _) => Next();

    /// <summary>The next healthy target, or null when none is healthy.</summary>
    public Target? Next()
    {
        if (_targets.Length == 1) return _targets[0].IsUsable ? _targets[0] : null;
        lock (_lock)
        {
            Target? best = null;
            int total = 0;
            foreach (var t in _targets)
            {
                if (!t.IsUsable) continue;
                t.CurrentWeight += t.Weight;
                total += t.Weight;
                if (best is null || t.CurrentWeight > best.CurrentWeight) best = t;
            }
            if (best is not null) best.CurrentWeight -= total;
            return best;
        }
    }
}
