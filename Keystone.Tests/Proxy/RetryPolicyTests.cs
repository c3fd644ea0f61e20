using Keystone.Proxy;
using Keystone.Routing;

namespace Keystone.Tests.Proxy;

/// <summary>Retry settings: the defaults, which statuses are retryable, and the full-jitter backoff.</summary>
public sealed class RetryPolicyTests
{
    private static RetryPolicy WithBackoff(TimeSpan backoff) => RetryPolicy.Default with { Backoff = backoff };

    [Fact]
    public void Defaults_retry_a_safe_request_once_at_once_on_a_dead_or_restarting_target()
    {
        var d = RetryPolicy.Default;
        Assert.Equal(1, d.Retries);
        Assert.Equal(RetryOn.ConnectFailure | RetryOn.Reset | RetryOn.Status502 | RetryOn.Status503, d.On);
        Assert.Equal(MethodSet.Get | MethodSet.Head | MethodSet.Options, d.Methods);
        Assert.Equal(0.2, d.BudgetRatio);
        Assert.Equal(TimeSpan.Zero, d.Backoff);
    }

    [Fact]
    public void Only_idempotent_methods_may_be_opted_in()
    {
        Assert.Equal(MethodSet.Get | MethodSet.Head | MethodSet.Options | MethodSet.Put | MethodSet.Delete | MethodSet.Trace,
            RetryPolicy.IdempotentMethods);
        Assert.Equal(MethodSet.None, RetryPolicy.IdempotentMethods & (MethodSet.Post | MethodSet.Patch));
    }

    [Theory]
    [InlineData(502, RetryOn.Status502)]
    [InlineData(503, RetryOn.Status503)]
    [InlineData(504, RetryOn.Status504)]
    [InlineData(500, RetryOn.None)]
    [InlineData(501, RetryOn.None)]
    [InlineData(505, RetryOn.None)]
    [InlineData(429, RetryOn.None)]
    [InlineData(200, RetryOn.None)]
    [InlineData(0, RetryOn.None)]
    public void StatusFlag_maps_502_503_and_504_only(int status, RetryOn expected)
    {
        Assert.Equal(expected, RetryPolicy.StatusFlag(status));
    }

    [Fact]
    public void Status_flags_are_distinct_from_connection_failures()
    {
        const RetryOn statuses = RetryOn.Status502 | RetryOn.Status503 | RetryOn.Status504;
        Assert.Equal(RetryOn.None, statuses & (RetryOn.ConnectFailure | RetryOn.Reset));
        Assert.Equal(RetryOn.None, RetryOn.Status502 & (RetryOn.Status503 | RetryOn.Status504));
        Assert.Equal(RetryOn.None, RetryOn.Status503 & RetryOn.Status504);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(10)]
    public void Without_backoff_there_is_no_pause(int retry)
    {
        Assert.Equal(TimeSpan.Zero, RetryPolicy.Default.PauseBefore(retry));
    }

    [Theory]
    [InlineData(1, 100)]
    [InlineData(2, 200)]
    [InlineData(3, 400)]
    [InlineData(4, 800)]
    [InlineData(5, 1000)] // 1600 ms uncapped: capped at 10 x backoff
    [InlineData(8, 1000)]
    [InlineData(10, 1000)]
    [InlineData(40, 1000)] // far past any shift that could overflow
    public void Pause_is_full_jitter_up_to_backoff_times_two_to_the_retry_capped_at_ten_times(int retry, int ceilingMs)
    {
        var policy = WithBackoff(TimeSpan.FromMilliseconds(100));
        var ceiling = TimeSpan.FromMilliseconds(ceilingMs);
        var samples = Enumerable.Range(0, 4_000).Select(_ => policy.PauseBefore(retry)).ToList();

        Assert.All(samples, p => Assert.InRange(p, TimeSpan.Zero, ceiling));
        // Spread over the whole range, not bunched at either end: the chance of any of these failing is below 1e-100.
        Assert.Contains(samples, p => p < ceiling * 0.1);
        Assert.Contains(samples, p => p > ceiling * 0.9);
        Assert.InRange(samples.Average(p => p.Ticks) / ceiling.Ticks, 0.45, 0.55);
    }

    [Fact]
    public void Pause_never_exceeds_ten_times_the_largest_backoff()
    {
        var policy = WithBackoff(TimeSpan.FromSeconds(10));
        for (int retry = 1; retry <= 10; retry++)
            for (int i = 0; i < 1_000; i++)
                Assert.InRange(policy.PauseBefore(retry), TimeSpan.Zero, TimeSpan.FromSeconds(100));
    }
}
