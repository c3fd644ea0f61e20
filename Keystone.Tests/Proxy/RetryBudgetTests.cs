using System.Diagnostics;
using Keystone.Proxy;

namespace Keystone.Tests.Proxy;

/// <summary>The retry budget on a hand-moved Stopwatch clock: its floor, its ratio and its ten-second window.</summary>
public sealed class RetryBudgetTests
{
    // Starts well away from zero, on a whole second, so bucket arithmetic never meets an unset bucket by chance.
    private long _now = Stopwatch.Frequency * 1_000;

    private RetryBudget Budget(double ratio) => new(ratio, () => Interlocked.Read(ref _now));

    private void Advance(TimeSpan by) => Interlocked.Add(ref _now, (long)(by.TotalSeconds * Stopwatch.Frequency));

    private static int RetriesGranted(RetryBudget budget, int asking = 1_000)
    {
        int granted = 0;
        for (int i = 0; i < asking; i++)
            if (budget.TryRetry()) granted++;
        return granted;
    }

    private static void Requests(RetryBudget budget, int count)
    {
        for (int i = 0; i < count; i++) budget.RecordRequest();
    }

    [Fact]
    public void Without_traffic_the_floor_of_ten_retries_is_allowed_and_no_more()
    {
        var budget = Budget(0.2);

        for (int i = 0; i < RetryBudget.MinRetriesPerWindow; i++)
            Assert.True(budget.TryRetry(), $"retry {i + 1} of the floor was refused");
        Assert.False(budget.TryRetry());
        Assert.Equal(10, RetryBudget.MinRetriesPerWindow);
    }

    [Fact]
    public void With_100_requests_in_the_window_20_percent_allows_20_retries_then_refuses()
    {
        var budget = Budget(0.2);
        Requests(budget, 100);

        for (int i = 0; i < 20; i++)
            Assert.True(budget.TryRetry(), $"retry {i + 1} of 20 was refused");
        Assert.False(budget.TryRetry());
        Assert.False(budget.TryRetry()); // a refusal takes nothing, and stays a refusal
    }

    [Fact]
    public void More_requests_make_room_for_more_retries()
    {
        var budget = Budget(0.2);
        Requests(budget, 100);
        Assert.Equal(20, RetriesGranted(budget));

        Requests(budget, 50); // 150 requests: 30 retries in all
        Assert.Equal(10, RetriesGranted(budget));
    }

    [Fact]
    public void Requests_spread_over_the_window_count_together()
    {
        var budget = Budget(0.2);
        for (int second = 0; second < 10; second++)
        {
            Requests(budget, 10);
            Advance(TimeSpan.FromSeconds(1));
        }
        Advance(TimeSpan.FromSeconds(-1)); // back into the tenth second: all ten buckets are still in the window

        Assert.Equal(20, RetriesGranted(budget));
    }

    [Fact]
    public void Buckets_older_than_ten_seconds_stop_counting()
    {
        var budget = Budget(0.2);
        Requests(budget, 100);
        Assert.Equal(20, RetriesGranted(budget));

        Advance(TimeSpan.FromSeconds(9)); // still inside the window: the 20 retries still count
        Assert.False(budget.TryRetry());

        Advance(TimeSpan.FromSeconds(2)); // 11 s on: requests and retries have both left the window
        Assert.Equal(RetryBudget.MinRetriesPerWindow, RetriesGranted(budget));
    }

    [Fact]
    public void Old_requests_leave_the_window_too_so_the_share_shrinks_back_to_the_floor()
    {
        var budget = Budget(0.2);
        Requests(budget, 1_000);
        Advance(TimeSpan.FromSeconds(11));

        Assert.Equal(RetryBudget.MinRetriesPerWindow, RetriesGranted(budget));
    }

    [Fact]
    public void A_reused_bucket_is_emptied_before_it_counts_again()
    {
        var budget = Budget(0.2);
        Requests(budget, 100);
        Assert.Equal(20, RetriesGranted(budget));

        // Exactly ten seconds on, the same ring slot serves the new second: the old counts must go.
        Advance(TimeSpan.FromSeconds(10));
        Requests(budget, 1);
        Assert.Equal(RetryBudget.MinRetriesPerWindow, RetriesGranted(budget));
    }

    [Fact]
    public void Zero_percent_gives_only_the_floor_whatever_the_traffic()
    {
        var budget = Budget(0);
        Requests(budget, 10_000);

        Assert.Equal(RetryBudget.MinRetriesPerWindow, RetriesGranted(budget));
    }

    [Fact]
    public void One_hundred_percent_allows_a_retry_per_request()
    {
        var budget = Budget(1);
        Requests(budget, 50);

        Assert.Equal(50, RetriesGranted(budget));
    }

    [Fact]
    public void Concurrent_callers_never_get_far_past_the_budget()
    {
        var budget = Budget(0.2);
        Requests(budget, 100);
        int granted = 0;

        Parallel.For(0, 8, _ =>
        {
            for (int i = 0; i < 1_000; i++)
                if (budget.TryRetry()) Interlocked.Increment(ref granted);
        });

        // Approximate under races by design: the check and the count are not one step, so a few may slip through.
        Assert.InRange(granted, 20, 20 + 8);
    }
}
