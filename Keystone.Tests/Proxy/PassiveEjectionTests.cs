using Keystone.Proxy;
using Keystone.Tests.Support;

namespace Keystone.Tests.Proxy;

/// <summary>Passive ejection on a hand-moved clock: the streak, the deadline, the doubling and its forgiveness.</summary>
public sealed class PassiveEjectionTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);
    private readonly ManualClock _clock = new();

    private PassiveEjection Ejection(int failures = 5, int ejectSeconds = 30, int maxSeconds = 300) =>
        new(new PassiveEjectionConfig(failures, TimeSpan.FromSeconds(ejectSeconds), TimeSpan.FromSeconds(maxSeconds), false), _clock);

    private static void Fail(PassiveEjection ejection, int times)
    {
        for (int i = 0; i < times; i++) ejection.RecordFailure();
    }

    [Fact]
    public void Defaults_suit_a_small_business()
    {
        Assert.Equal(new PassiveEjectionConfig(5, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5), false), PassiveEjectionConfig.Default);
    }

    [Fact]
    public void Target_is_ejected_by_the_configured_number_of_consecutive_failures_not_one_fewer()
    {
        var ejection = Ejection(failures: 5);

        Fail(ejection, 4);
        Assert.False(ejection.IsEjected);

        ejection.RecordFailure();
        Assert.True(ejection.IsEjected);
        Assert.Equal(TimeSpan.FromSeconds(30), ejection.Remaining);
    }

    [Fact]
    public void A_success_starts_the_failure_streak_over()
    {
        var ejection = Ejection(failures: 5);

        Fail(ejection, 4);
        ejection.RecordSuccess();
        Fail(ejection, 4);

        Assert.False(ejection.IsEjected);
        ejection.RecordFailure();
        Assert.True(ejection.IsEjected);
    }

    [Fact]
    public void Target_returns_exactly_at_the_deadline()
    {
        var ejection = Ejection();
        Fail(ejection, 5);

        _clock.Advance(TimeSpan.FromSeconds(30) - Tick);
        Assert.True(ejection.IsEjected);
        Assert.Equal(Tick, ejection.Remaining);

        _clock.Advance(Tick);
        Assert.False(ejection.IsEjected);
        Assert.Equal(TimeSpan.Zero, ejection.Remaining);
    }

    [Fact]
    public void Repeat_offences_double_the_ejection_up_to_the_cap()
    {
        var ejection = Ejection(ejectSeconds: 30, maxSeconds: 300);
        var lengths = new List<TimeSpan>();
        ejection.Ejected += lengths.Add;

        for (int offence = 0; offence < 6; offence++)
        {
            Fail(ejection, 5);
            var length = ejection.Remaining;
            _clock.Advance(length - Tick);
            Assert.True(ejection.IsEjected);
            _clock.Advance(Tick);
            Assert.False(ejection.IsEjected);
        }

        Assert.Equal([30, 60, 120, 240, 300, 300], lengths.Select(l => l.TotalSeconds));
        Assert.Equal(6, ejection.Offences);
    }

    [Fact]
    public void Failures_reported_while_ejected_are_stragglers_and_do_not_count()
    {
        var ejection = Ejection();
        int ejections = 0;
        ejection.Ejected += _ => ejections++;
        Fail(ejection, 5);

        Fail(ejection, 20);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Fail(ejection, 4);

        Assert.False(ejection.IsEjected);
        Assert.Equal(1, ejections);
    }

    [Fact]
    public void Serving_as_long_as_the_last_ejection_forgives_the_doubling()
    {
        var ejection = Ejection();
        Fail(ejection, 5);
        _clock.Advance(TimeSpan.FromSeconds(30));

        _clock.Advance(TimeSpan.FromSeconds(30));
        ejection.RecordSuccess();
        Assert.Equal(0, ejection.Offences);

        Fail(ejection, 5);
        Assert.Equal(TimeSpan.FromSeconds(30), ejection.Remaining);
    }

    [Fact]
    public void A_success_soon_after_returning_does_not_forgive_the_doubling()
    {
        var ejection = Ejection();
        Fail(ejection, 5);
        _clock.Advance(TimeSpan.FromSeconds(30));

        _clock.Advance(TimeSpan.FromSeconds(30) - Tick);
        ejection.RecordSuccess();
        Assert.Equal(1, ejection.Offences);

        Fail(ejection, 5);
        Assert.Equal(TimeSpan.FromSeconds(60), ejection.Remaining);
    }

    [Fact]
    public void Successes_reported_while_ejected_change_nothing()
    {
        var ejection = Ejection();
        Fail(ejection, 5);

        _clock.Advance(TimeSpan.FromSeconds(10));
        ejection.RecordSuccess();

        Assert.True(ejection.IsEjected);
        Assert.Equal(1, ejection.Offences);
    }

    [Fact]
    public void A_reload_keeps_an_ejected_target_out_until_its_deadline_and_remembers_the_offences()
    {
        var old = Ejection();
        Fail(old, 5);
        _clock.Advance(TimeSpan.FromSeconds(10));

        var reloaded = new PassiveEjection(PassiveEjectionConfig.Default with { ConsecutiveFailures = 3 }, _clock, old);

        Assert.True(reloaded.IsEjected);
        Assert.Equal(TimeSpan.FromSeconds(20), reloaded.Remaining);
        _clock.Advance(TimeSpan.FromSeconds(20));
        Fail(reloaded, 3);
        Assert.Equal(TimeSpan.FromSeconds(60), reloaded.Remaining);
    }

    [Theory]
    [InlineData(0, 30, 300)]
    [InlineData(5, 0, 300)]
    [InlineData(5, 30, 10)]
    public void Nonsense_settings_are_refused(int failures, int ejectSeconds, int maxSeconds)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Ejection(failures, ejectSeconds, maxSeconds));
    }

    [Fact]
    public void Concurrent_failures_eject_once_and_mixed_outcomes_keep_offences_and_ejection_in_step()
    {
        var ejection = Ejection(failures: 5);
        int ejections = 0;
        ejection.Ejected += _ => Interlocked.Increment(ref ejections);

        Parallel.For(0, 8, worker =>
        {
            for (int i = 0; i < 10_000; i++) ejection.RecordFailure();
        });

        // The clock stands still, so the first ejection swallows every later failure.
        Assert.Equal(1, ejections);
        Assert.Equal(TimeSpan.FromSeconds(30), ejection.Remaining);

        _clock.Advance(TimeSpan.FromSeconds(30));
        Parallel.For(0, 8, worker =>
        {
            var random = new Random(worker);
            for (int i = 0; i < 10_000; i++)
            {
                if (random.Next(4) == 0) ejection.RecordSuccess();
                else ejection.RecordFailure();
            }
        });

        // At most one more ejection (the clock still stands), and the offence count and the state agree with it.
        Assert.InRange(ejections, 1, 2);
        Assert.Equal(ejections, ejection.Offences);
        Assert.Equal(ejections == 2, ejection.IsEjected);
        if (ejections == 2) Assert.Equal(TimeSpan.FromSeconds(60), ejection.Remaining);
    }

    [Fact]
    public void Recording_outcomes_allocates_nothing_after_warm_up()
    {
        var ejection = Ejection(failures: 3);
        ejection.Ejected += _ => { };
        long allocated = Allocations.LeastOf(3, () => RunCycles(ejection, 10_000));

        Assert.Equal(0, allocated);
    }

    private void RunCycles(PassiveEjection ejection, int cycles)
    {
        for (int i = 0; i < cycles; i++)
        {
            ejection.RecordSuccess();
            ejection.RecordFailure();
            ejection.RecordFailure();
            ejection.RecordFailure();
            _ = ejection.IsEjected;
            _ = ejection.Remaining;
            _clock.Advance(TimeSpan.FromMinutes(5));
            ejection.RecordSuccess();
        }
    }
}
