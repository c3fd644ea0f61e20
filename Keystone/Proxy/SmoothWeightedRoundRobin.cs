namespace Keystone.Proxy;

/// <summary>
/// nginx's smooth weighted round-robin: weights 5,1,1 give a a b a c a a, spreading the heavy target's
/// turns instead of sending it bursts.
/// </summary>
public sealed class SmoothWeightedRoundRobin
{
    private readonly Target[] _targets;
    private readonly int _totalWeight;
    private readonly Lock _lock = new();

    public SmoothWeightedRoundRobin(Target[] targets)
    {
        _targets = targets;
        foreach (var t in targets) _totalWeight += t.Weight;
    }

    public Target Next()
    {
        if (_targets.Length == 1) return _targets[0];
        lock (_lock)
        {
            Target best = _targets[0];
            foreach (var t in _targets)
            {
                t.CurrentWeight += t.Weight;
                if (t.CurrentWeight > best.CurrentWeight) best = t;
            }
            best.CurrentWeight -= _totalWeight;
            return best;
        }
    }
}
