using Keystone.Routing;

namespace Keystone.Proxy;

/// <summary>What makes an attempt worth repeating on another target (<c>retry_on</c>).</summary>
[Flags]
public enum RetryOn
{
    None = 0,
    /// <summary>The target refused the connection or did not accept it within <c>connect_timeout</c>.</summary>
    ConnectFailure = 1,
    /// <summary>The connection broke before a response came back.</summary>
    Reset = 2,
    Status502 = 4,
    Status503 = 8,
    Status504 = 16,
}

/// <summary>
/// An upstream's retry settings: how often, on what, for which methods, within what budget and after what pause.
/// Defaults suit a small business: retry a safe request once, at once, when a target is down or restarting.
/// </summary>
public sealed record RetryPolicy(int Retries, RetryOn On, MethodSet Methods, double BudgetRatio, TimeSpan Backoff)
{
    public const MethodSet DefaultMethods = MethodSet.Get | MethodSet.Head | MethodSet.Options;

    /// <summary>Methods that may be opted in: repeating them has the same effect as sending them once (RFC 9110 §9.2.2).</summary>
    public const MethodSet IdempotentMethods = DefaultMethods | MethodSet.Put | MethodSet.Delete | MethodSet.Trace;

    /// <summary>The longest pause between attempts, in multiples of <see cref="Backoff"/> (as Envoy caps it).</summary>
    public const int MaxBackoffFactor = 10;

    /// <summary>A request body up to this size is kept in memory so that a retry can send it again.</summary>
    public const int MaxReplayBody = 64 * 1024;

    public static readonly RetryPolicy Default = new(1, RetryOn.ConnectFailure | RetryOn.Reset | RetryOn.Status502 | RetryOn.Status503,
        DefaultMethods, 0.2, TimeSpan.Zero);

    public static RetryOn StatusFlag(int status) => status switch
    {
        502 => RetryOn.Status502,
        503 => RetryOn.Status503,
        504 => RetryOn.Status504,
        _ => RetryOn.None,
    };

    /// <summary>
    /// The pause before retry number <paramref name="retry"/> (1-based): "full jitter", a random time up to
    /// <see cref="Backoff"/> x 2^(retry-1), capped, so that clients retrying together spread out.
    /// </summary>
    public TimeSpan PauseBefore(int retry)
    {
        if (Backoff <= TimeSpan.Zero) return TimeSpan.Zero;
        long ceiling = Math.Min(Backoff.Ticks << Math.Min(retry - 1, 16), Backoff.Ticks * MaxBackoffFactor);
        return TimeSpan.FromTicks((long)(Random.Shared.NextDouble() * ceiling));
    }
}
