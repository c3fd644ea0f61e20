using System.Collections.Concurrent;
using Keystone.Proxy;
using Keystone.Tests.Support;

namespace Keystone.Tests.Proxy;

/// <summary>The circuit breaker's transitions on a hand-moved clock, its notifications, threads and allocations.</summary>
public sealed class CircuitBreakerTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);
    private readonly ManualClock _clock = new();

    private CircuitBreaker Breaker(int failures = 5, int windowSeconds = 10, int openSeconds = 30, int probes = 1) =>
        new(new CircuitBreakerConfig(failures, TimeSpan.FromSeconds(windowSeconds), TimeSpan.FromSeconds(openSeconds), probes), _clock);

    private static void Fail(CircuitBreaker breaker, int times)
    {
        for (int i = 0; i < times; i++)
        {
            Assert.True(breaker.TryAcquire(out var permit));
            breaker.RecordFailure(permit);
        }
    }

    private CircuitBreaker OpenBreaker(int probes = 1)
    {
        var breaker = Breaker(probes: probes);
        Fail(breaker, 5);
        Assert.Equal(CircuitState.Open, breaker.State);
        return breaker;
    }

    private CircuitBreaker HalfOpenBreaker(int probes = 1)
    {
        var breaker = OpenBreaker(probes);
        _clock.Advance(TimeSpan.FromSeconds(30));
        return breaker;
    }

    [Fact]
    public void Defaults_suit_a_small_business()
    {
        Assert.Equal(new CircuitBreakerConfig(5, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), 1), CircuitBreakerConfig.Default);
    }

    [Fact]
    public void A_new_breaker_is_closed_and_admits_requests_that_are_not_probes()
    {
        var breaker = Breaker();

        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.True(breaker.IsAvailable);
        Assert.True(breaker.TryAcquire(out var permit));
        Assert.False(permit.IsProbe);
    }

    [Fact]
    public void Closed_opens_on_the_threshold_failure_within_the_window_not_before()
    {
        var breaker = Breaker(failures: 5, windowSeconds: 10);

        for (int i = 0; i < 4; i++)
        {
            Fail(breaker, 1);
            _clock.Advance(TimeSpan.FromSeconds(2));
        }
        Assert.Equal(CircuitState.Closed, breaker.State);

        Fail(breaker, 1);
        Assert.Equal(CircuitState.Open, breaker.State);
    }

    [Fact]
    public void Closed_stays_closed_when_the_failures_are_spread_wider_than_the_window()
    {
        var breaker = Breaker(failures: 5, windowSeconds: 10);

        // Five failures 2.5 s apart span exactly 10 s: the first has left the window when the fifth arrives.
        for (int i = 0; i < 20; i++)
        {
            Fail(breaker, 1);
            _clock.Advance(TimeSpan.FromSeconds(2.5));
        }

        Assert.Equal(CircuitState.Closed, breaker.State);
    }

    [Fact]
    public void Successes_in_between_do_not_erase_failures_in_the_window()
    {
        var breaker = Breaker(failures: 5);

        for (int i = 0; i < 5; i++)
        {
            Assert.True(breaker.TryAcquire(out var permit));
            breaker.RecordSuccess(permit);
            Fail(breaker, 1);
        }

        Assert.Equal(CircuitState.Open, breaker.State);
    }

    [Fact]
    public void Open_refuses_every_request_until_the_cool_down_is_over()
    {
        var breaker = OpenBreaker();

        _clock.Advance(TimeSpan.FromSeconds(30) - Tick);
        Assert.False(breaker.TryAcquire(out _));
        Assert.False(breaker.IsAvailable);
        Assert.Equal(CircuitState.Open, breaker.State);

        _clock.Advance(Tick);
        Assert.True(breaker.IsAvailable);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Half_open_admits_exactly_the_configured_number_of_concurrent_probes(int probes)
    {
        var breaker = HalfOpenBreaker(probes);

        for (int i = 0; i < probes; i++)
        {
            Assert.True(breaker.TryAcquire(out var permit));
            Assert.True(permit.IsProbe);
        }

        Assert.False(breaker.TryAcquire(out _));
        Assert.False(breaker.IsAvailable);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.Equal(probes, breaker.ProbesInFlight);
    }

    [Fact]
    public void Half_open_closes_after_as_many_probe_successes_as_probes_allowed()
    {
        var breaker = HalfOpenBreaker(probes: 2);
        Assert.True(breaker.TryAcquire(out var first));
        Assert.True(breaker.TryAcquire(out var second));

        breaker.RecordSuccess(first);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.True(breaker.TryAcquire(out var third));
        Assert.True(third.IsProbe);

        breaker.RecordSuccess(second);
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.True(breaker.TryAcquire(out var after));
        Assert.False(after.IsProbe);
    }

    [Fact]
    public void A_probe_failure_reopens_for_another_full_cool_down()
    {
        var breaker = HalfOpenBreaker(probes: 2);
        Assert.True(breaker.TryAcquire(out var probe));
        _clock.Advance(TimeSpan.FromSeconds(5));

        breaker.RecordFailure(probe);

        Assert.Equal(CircuitState.Open, breaker.State);
        _clock.Advance(TimeSpan.FromSeconds(30) - Tick);
        Assert.False(breaker.TryAcquire(out _));
        _clock.Advance(Tick);
        Assert.True(breaker.TryAcquire(out var next));
        Assert.True(next.IsProbe);
    }

    [Fact]
    public void A_released_probe_frees_its_slot_without_deciding_anything()
    {
        var breaker = HalfOpenBreaker(probes: 1);
        Assert.True(breaker.TryAcquire(out var probe));

        breaker.Release(probe);

        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.Equal(0, breaker.ProbesInFlight);
        Assert.True(breaker.TryAcquire(out var next));
        breaker.RecordSuccess(next);
        Assert.Equal(CircuitState.Closed, breaker.State);
    }

    [Fact]
    public void Outcomes_of_requests_admitted_before_a_transition_are_ignored()
    {
        var breaker = Breaker(failures: 5);
        Assert.True(breaker.TryAcquire(out var slowClosed));
        Fail(breaker, 5);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.True(breaker.TryAcquire(out var probe));

        // A closed-era request finishing now is not the probe: it neither closes nor re-opens the circuit.
        breaker.RecordSuccess(slowClosed);
        breaker.RecordFailure(slowClosed);
        breaker.Release(slowClosed);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.Equal(1, breaker.ProbesInFlight);

        // Nor does a probe of an earlier half-open spell count in the next one.
        breaker.Release(probe);
        Assert.True(breaker.TryAcquire(out var failing));
        breaker.RecordFailure(failing);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.True(breaker.TryAcquire(out _));
        breaker.RecordSuccess(probe);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.Equal(1, breaker.ProbesInFlight);
    }

    [Fact]
    public void A_default_permit_is_ignored()
    {
        var breaker = Breaker(failures: 1);

        breaker.RecordFailure(default);
        breaker.RecordSuccess(default);
        breaker.Release(default);

        Assert.Equal(CircuitState.Closed, breaker.State);
    }

    [Fact]
    public void Every_transition_is_notified_in_order()
    {
        var breaker = Breaker(probes: 1);
        var seen = new List<CircuitState>();
        breaker.StateChanged += seen.Add;

        Fail(breaker, 5);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Fail(breaker, 1);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.True(breaker.TryAcquire(out var probe));
        breaker.RecordSuccess(probe);

        Assert.Equal(
            [CircuitState.Open, CircuitState.HalfOpen, CircuitState.Open, CircuitState.HalfOpen, CircuitState.Closed],
            seen);
    }

    [Fact]
    public void Reading_the_state_after_the_cool_down_notifies_half_open_once()
    {
        var breaker = OpenBreaker();
        var seen = new List<CircuitState>();
        breaker.StateChanged += seen.Add;
        _clock.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);

        Assert.Equal([CircuitState.HalfOpen], seen);
    }

    [Fact]
    public void A_reload_keeps_an_open_circuit_open_until_its_deadline()
    {
        var old = OpenBreaker();
        _clock.Advance(TimeSpan.FromSeconds(10));

        var reloaded = new CircuitBreaker(CircuitBreakerConfig.Default with { HalfOpenProbes = 2 }, _clock, old);

        Assert.Equal(CircuitState.Open, reloaded.State);
        _clock.Advance(TimeSpan.FromSeconds(20) - Tick);
        Assert.False(reloaded.TryAcquire(out _));
        _clock.Advance(Tick);
        Assert.Equal(CircuitState.HalfOpen, reloaded.State);
    }

    [Fact]
    public void A_reload_of_a_half_open_circuit_lets_the_next_request_probe()
    {
        var old = HalfOpenBreaker();
        Assert.True(old.TryAcquire(out _));

        var reloaded = new CircuitBreaker(CircuitBreakerConfig.Default, _clock, old);

        Assert.True(reloaded.TryAcquire(out var probe));
        Assert.True(probe.IsProbe);
        Assert.False(reloaded.TryAcquire(out _));
    }

    [Fact]
    public void A_reload_of_a_closed_circuit_starts_with_a_clean_window()
    {
        var old = Breaker();
        Fail(old, 4);

        var reloaded = new CircuitBreaker(CircuitBreakerConfig.Default, _clock, old);
        Fail(reloaded, 4);

        Assert.Equal(CircuitState.Closed, reloaded.State);
    }

    [Theory]
    [InlineData(0, 10, 30, 1)]
    [InlineData(5, 0, 30, 1)]
    [InlineData(5, 10, 0, 1)]
    [InlineData(5, 10, 30, 0)]
    public void Nonsense_settings_are_refused(int failures, int windowSeconds, int openSeconds, int probes)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Breaker(failures, windowSeconds, openSeconds, probes));
    }

    [Fact]
    public void Concurrent_failures_open_the_circuit_once()
    {
        var breaker = Breaker(failures: 5);
        int opened = 0;
        breaker.StateChanged += state => { if (state == CircuitState.Open) Interlocked.Increment(ref opened); };

        Parallel.For(0, 8, _ =>
        {
            for (int i = 0; i < 10_000; i++)
                if (breaker.TryAcquire(out var permit)) breaker.RecordFailure(permit);
        });

        Assert.Equal(1, opened);
        Assert.Equal(CircuitState.Open, breaker.State);
    }

    [Fact]
    public void Concurrent_requests_after_the_cool_down_get_exactly_the_configured_probes()
    {
        var breaker = HalfOpenBreaker(probes: 3);
        int granted = 0;

        Parallel.For(0, 8, worker =>
        {
            for (int i = 0; i < 10_000; i++)
                if (breaker.TryAcquire(out _)) Interlocked.Increment(ref granted);
        });

        Assert.Equal(3, granted);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
    }

    [Fact]
    public void Under_mixed_concurrent_traffic_probes_never_exceed_the_limit_and_the_breaker_still_recovers()
    {
        const int Probes = 2;
        var breaker = Breaker(failures: 3, windowSeconds: 1, openSeconds: 1, probes: Probes);
        var probing = new ConcurrentDictionary<long, int>();
        int mostProbing = 0, probesSeen = 0;

        Parallel.For(0, 8, worker =>
        {
            var random = new Random(worker);
            for (int i = 0; i < 20_000; i++)
            {
                if (worker == 0 && i % 50 == 0) _clock.Advance(TimeSpan.FromMilliseconds(300));
                if (!breaker.TryAcquire(out var permit)) continue;
                if (permit.IsProbe)
                {
                    // Probes of one half-open spell held at once; a later spell owes nothing to earlier stragglers.
                    int held = probing.AddOrUpdate(permit.Generation, 1, (_, n) => n + 1);
                    InterlockedMax(ref mostProbing, held);
                    Interlocked.Increment(ref probesSeen);
                    probing.AddOrUpdate(permit.Generation, 0, (_, n) => n - 1);
                }
                int roll = random.Next(10);
                if (roll < 3) breaker.RecordFailure(permit);
                else if (roll < 9) breaker.RecordSuccess(permit);
                else breaker.Release(permit);
            }
        });

        Assert.True(probesSeen > 0);
        Assert.InRange(mostProbing, 1, Probes);
        Assert.Equal(0, breaker.ProbesInFlight);
        _clock.Advance(TimeSpan.FromSeconds(1));
        for (int i = 0; i < Probes && breaker.State == CircuitState.HalfOpen; i++)
        {
            Assert.True(breaker.TryAcquire(out var probe));
            breaker.RecordSuccess(probe);
        }
        Assert.Equal(CircuitState.Closed, breaker.State);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }

    [Fact]
    public void Acquiring_and_recording_allocates_nothing_after_warm_up()
    {
        var breaker = Breaker(failures: 3, probes: 2);
        breaker.StateChanged += _ => { };
        long allocated = Allocations.LeastOf(3, () => RunCycles(breaker, 10_000));

        Assert.Equal(0, allocated);
    }

    /// <summary>Each cycle goes closed -> open -> half-open -> closed, with successes and a release on the way.</summary>
    private void RunCycles(CircuitBreaker breaker, int cycles)
    {
        for (int i = 0; i < cycles; i++)
        {
            for (int f = 0; f < 3; f++)
            {
                breaker.TryAcquire(out var ok);
                breaker.RecordSuccess(ok);
                breaker.TryAcquire(out var bad);
                breaker.RecordFailure(bad);
            }
            _ = breaker.TryAcquire(out _);
            _clock.Advance(TimeSpan.FromSeconds(30));
            _ = breaker.State;
            _ = breaker.IsAvailable;
            breaker.TryAcquire(out var released);
            breaker.Release(released);
            breaker.TryAcquire(out var first);
            breaker.TryAcquire(out var second);
            breaker.RecordSuccess(first);
            breaker.RecordSuccess(second);
        }
    }
}
