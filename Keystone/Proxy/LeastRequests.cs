namespace Keystone.Proxy;

/// <summary>
/// Power of two choices: draw two distinct healthy targets by weight and send to the less loaded one, load being
/// requests in flight per unit of weight. Nearly as good as scanning for the least loaded target, without herding
/// every request onto the same one between two updates of the counters.
/// </summary>
public sealed class LeastRequests : ILoadBalancer
{
    private readonly Target[] _targets;

    public LeastRequests(Target[] targets)
    {
        _targets = targets;
    }

    public Target? Pick(HttpContext context)
    {
        var targets = _targets;
        if (targets.Length == 1) return targets[0].IsUsable ? targets[0] : null;
        int total = 0, healthy = 0;
        Target? any = null;
        foreach (var t in targets)
        {
            if (!t.IsUsable) continue;
            total += t.Weight;
            healthy++;
            any = t;
        }
        if (healthy <= 1) return any;

        var first = RandomBalancer.Draw(targets, Random.Shared.Next(total), null);
        if (first is null) return null;
        // Health may have flipped since the sum; a non-positive rest means no second candidate is left.
        int rest = total - first.Weight;
        var second = rest > 0 ? RandomBalancer.Draw(targets, Random.Shared.Next(rest), first) : null;
        if (second is null) return first;
        // Weighted load: with equal weights this is plain "fewer in flight"; a tie goes to the first draw, itself random.
        long firstLoad = (long)Volatile.Read(ref first.InFlight) * second.Weight;
        long secondLoad = (long)Volatile.Read(ref second.InFlight) * first.Weight;
        return secondLoad < firstLoad ? second : first;
    }
}
