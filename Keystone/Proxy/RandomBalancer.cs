namespace Keystone.Proxy;

/// <summary>Weighted random choice among the healthy targets: no shared state, so no lock and no contention.</summary>
public sealed class RandomBalancer : ILoadBalancer
{
    private readonly Target[] _targets;

    public RandomBalancer(Target[] targets)
    {
        _targets = targets;
    }

    public Target? Pick(HttpContext context)
    {
        var targets = _targets;
        if (targets.Length == 1) return targets[0].IsUsable ? targets[0] : null;
        int total = 0;
        foreach (var t in targets)
            if (t.IsUsable) total += t.Weight;
        return total == 0 ? null : Draw(targets, Random.Shared.Next(total), null);
    }

    /// <summary>
    /// The healthy target (other than <paramref name="skip"/>) whose slice of the cumulative weights holds <paramref name="point"/>.
    /// Health can flip between the caller's sum and this walk; then the last healthy target seen stands in.
    /// </summary>
    internal static Target? Draw(Target[] targets, int point, Target? skip)
    {
        Target? last = null;
        foreach (var t in targets)
        {
            if (t == skip || !t.IsUsable) continue;
            last = t;
            point -= t.Weight;
            if (point < 0) return t;
        }
        return last;
    }
}
