namespace Keystone.Proxy;

/// <summary>How many failures in a row take a target out of rotation, and for how long.</summary>
/// <param name="EjectFor">The first ejection; each repeat offence doubles it.</param>
/// <param name="MaxEjectFor">The cap on the doubling.</param>
/// <param name="EjectOn5xx">Whether a 5xx response counts as a failure, not only connect errors, resets and timeouts.</param>
public sealed record PassiveEjectionConfig(int ConsecutiveFailures, TimeSpan EjectFor, TimeSpan MaxEjectFor, bool EjectOn5xx)
{
    public static readonly PassiveEjectionConfig Default = new(5, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5), false);
}

/// <summary>
/// Takes a target out of rotation after <see cref="PassiveEjectionConfig.ConsecutiveFailures"/> real requests failed in
/// a row, for <see cref="PassiveEjectionConfig.EjectFor"/>, doubled on each repeat offence up to the cap.
/// </summary>
/// <remarks>
/// The target comes back by the clock alone, with a clean streak. Outcomes reported while it is out are ignored:
/// they belong to requests sent before the ejection. The doubling is forgiven once the target has served for as long
/// as it was last out, so a target that crash-loops keeps getting longer breaks while one that recovered starts over.
/// </remarks>
public sealed class PassiveEjection
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly int _threshold;
    private readonly long _ejectFor;
    private readonly long _maxEjectFor;

    // Read without the lock by every request; written under it.
    private long _ejectedUntil = long.MinValue;

    // Guarded by _lock; read without it only for the lock-free success path.
    private int _failures;
    private int _offences;
    private long _lastLength;

    /// <param name="time">The clock; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="previous">The same target's ejection in the snapshot being replaced: an ejected target stays out.</param>
    public PassiveEjection(PassiveEjectionConfig config, TimeProvider? time = null, PassiveEjection? previous = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(config.ConsecutiveFailures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(config.EjectFor, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(config.MaxEjectFor, config.EjectFor);
        Config = config;
        _time = time ?? TimeProvider.System;
        _threshold = config.ConsecutiveFailures;
        _ejectFor = Timestamps.FromTimeSpan(_time, config.EjectFor);
        _maxEjectFor = Timestamps.FromTimeSpan(_time, config.MaxEjectFor);
        if (previous is not null)
        {
            lock (previous._lock)
            {
                _ejectedUntil = previous._ejectedUntil;
                _failures = previous._failures;
                _offences = previous._offences;
                _lastLength = previous._lastLength;
            }
        }
    }

    public PassiveEjectionConfig Config { get; }

    /// <summary>Out of rotation right now: one read and one clock compare.</summary>
    public bool IsEjected => _time.GetTimestamp() < Volatile.Read(ref _ejectedUntil);

    /// <summary>Time left until the target is back; zero when it is in rotation.</summary>
    public TimeSpan Remaining
    {
        get
        {
            long now = _time.GetTimestamp(), until = Volatile.Read(ref _ejectedUntil);
            return now < until ? _time.GetElapsedTime(now, until) : TimeSpan.Zero;
        }
    }

    /// <summary>Ejections not yet forgiven; the next one lasts <c>EjectFor * 2^Offences</c>, capped.</summary>
    public int Offences => Volatile.Read(ref _offences);

    /// <summary>Raised with the length of each ejection, after it took effect; for logs and counters.</summary>
    public event Action<TimeSpan>? Ejected;

    /// <summary>A request to the target succeeded: the failure streak starts over.</summary>
    public void RecordSuccess()
    {
        // The common case, a healthy target with nothing to forget, takes no lock.
        if (Volatile.Read(ref _failures) == 0 && Volatile.Read(ref _offences) == 0) return;
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            if (now < _ejectedUntil) return;
            _failures = 0;
            if (_offences > 0 && now - _ejectedUntil >= _lastLength) Volatile.Write(ref _offences, 0);
        }
    }

    /// <summary>A request to the target failed (the caller decides what counts); enough in a row eject it.</summary>
    public void RecordFailure()
    {
        long length;
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            if (now < _ejectedUntil || ++_failures < _threshold) return;
            _failures = 0;
            length = LengthOf(_offences);
            _lastLength = length;
            Volatile.Write(ref _offences, _offences + 1);
            Volatile.Write(ref _ejectedUntil, now + length);
        }
        Ejected?.Invoke(_time.GetElapsedTime(0, length));
    }

    private long LengthOf(int offences)
    {
        long length = _ejectFor;
        for (int i = 0; i < offences && length < _maxEjectFor; i++) length *= 2;
        return Math.Min(length, _maxEjectFor);
    }
}
