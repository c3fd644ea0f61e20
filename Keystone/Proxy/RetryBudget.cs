using System.Diagnostics;

namespace Keystone.Proxy;

/// <summary>
/// Keeps retries to a share of an upstream's requests over the last ten seconds, so that an upstream in trouble
/// is not sent twice its normal load (a retry storm). Like Linkerd's budget it has a floor, so a quiet site
/// still gets its few retries. Counts are per one-second bucket and approximate under races: a budget, not a ledger.
/// </summary>
public sealed class RetryBudget
{
    private const int Buckets = 10;

    /// <summary>Retries always allowed within the window, whatever the traffic.</summary>
    public const int MinRetriesPerWindow = 10;

    private readonly double _ratio;
    private readonly Bucket[] _buckets = new Bucket[Buckets];
    private readonly Func<long> _now;

    private sealed class Bucket
    {
        public long Second = -1;
        public int Requests;
        public int Retries;
    }

    /// <param name="now">Stopwatch timestamp source; tests move it by hand.</param>
    public RetryBudget(double ratio, Func<long>? now = null)
    {
        _ratio = ratio;
        _now = now ?? Stopwatch.GetTimestamp;
        for (int i = 0; i < Buckets; i++) _buckets[i] = new Bucket();
    }

    public void RecordRequest() => Interlocked.Increment(ref Current().Requests);

    /// <summary>Takes one retry from the budget; false when the window's retries have reached their share.</summary>
    public bool TryRetry()
    {
        long second = _now() / Stopwatch.Frequency;
        long requests = 0, retries = 0;
        foreach (var bucket in _buckets)
        {
            if (Volatile.Read(ref bucket.Second) <= second - Buckets) continue;
            requests += Volatile.Read(ref bucket.Requests);
            retries += Volatile.Read(ref bucket.Retries);
        }
        if (retries >= MinRetriesPerWindow && retries >= requests * _ratio) return false;
        Interlocked.Increment(ref Current().Retries);
        return true;
    }

    /// <summary>This second's bucket, emptied first if it last counted an older second.</summary>
    private Bucket Current()
    {
        long second = _now() / Stopwatch.Frequency;
        var bucket = _buckets[second % Buckets];
        long seen = Volatile.Read(ref bucket.Second);
        if (seen != second && Interlocked.CompareExchange(ref bucket.Second, second, seen) == seen)
        {
            // A count racing with this reset may be lost; the budget stays approximately right.
            Volatile.Write(ref bucket.Requests, 0);
            Volatile.Write(ref bucket.Retries, 0);
        }
        return bucket;
    }
}
