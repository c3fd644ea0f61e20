namespace Keystone.Proxy;

/// <summary>Where a target's circuit breaker stands; the values are those of <c>keystone_upstream_circuit_state</c>.</summary>
public enum CircuitState { Closed = 0, Open = 1, HalfOpen = 2 }

/// <summary>When a target's circuit opens, how long it stays open, and how carefully it is tried again.</summary>
/// <param name="FailureThreshold">Failures within <paramref name="Window"/> that open the circuit.</param>
/// <param name="OpenFor">How long an open circuit refuses every request before it lets probes through.</param>
/// <param name="HalfOpenProbes">Probes let through at once while half-open; that many successes close the circuit.</param>
public sealed record CircuitBreakerConfig(int FailureThreshold, TimeSpan Window, TimeSpan OpenFor, int HalfOpenProbes)
{
    public static readonly CircuitBreakerConfig Default = new(5, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), 1);
}

/// <summary>Leave to send one request through a <see cref="CircuitBreaker"/>; hand it back with the outcome.</summary>
public readonly struct CircuitPermit
{
    internal CircuitPermit(long stamp) => Stamp = stamp;

    /// <summary>The breaker's generation and state when the permit was granted.</summary>
    internal long Stamp { get; }

    /// <summary>Which spell between two transitions the permit belongs to.</summary>
    internal long Generation => Stamp >> CircuitBreaker.GenerationShift;

    /// <summary>The request is one of the half-open probes whose outcome decides whether the circuit closes.</summary>
    public bool IsProbe => (CircuitState)(Stamp & CircuitBreaker.StateMask) == CircuitState.HalfOpen;
}

/// <summary>
/// The classic breaker for one target: closed until <see cref="CircuitBreakerConfig.FailureThreshold"/> failures fall
/// within the window, then open for <see cref="CircuitBreakerConfig.OpenFor"/>, then half-open with a few probes
/// that close it again or re-open it.
/// </summary>
/// <remarks>
/// Every permit carries the generation it was granted in; each transition starts a new generation, so the outcome of a
/// request that outlived a transition (a slow request from the closed days, a probe of an earlier half-open spell)
/// is ignored instead of being mistaken for a probe. A closed circuit admits and records successes without the lock.
/// </remarks>
public sealed class CircuitBreaker
{
    internal const long StateMask = 3;
    internal const int GenerationShift = 2;

    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly long _window;
    private readonly long _openFor;
    private readonly int _probes;

    // Timestamps of the last FailureThreshold failures in this closed spell; guarded by _lock.
    private readonly long[] _failures;
    private int _failureCount;
    private int _nextFailure;

    // generation << GenerationShift | state. Written under _lock, read without it.
    private long _stamp = 1L << GenerationShift;

    // Written under _lock before _stamp publishes the transition that uses them.
    private long _openUntil;
    private int _probesInFlight;
    private int _probeSuccesses;

    /// <param name="time">The clock; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="previous">The same target's breaker in the snapshot being replaced: an open circuit stays open.</param>
    public CircuitBreaker(CircuitBreakerConfig config, TimeProvider? time = null, CircuitBreaker? previous = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(config.FailureThreshold, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(config.Window, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(config.OpenFor, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(config.HalfOpenProbes, 1);
        Config = config;
        _time = time ?? TimeProvider.System;
        _window = Timestamps.FromTimeSpan(_time, config.Window);
        _openFor = Timestamps.FromTimeSpan(_time, config.OpenFor);
        _probes = config.HalfOpenProbes;
        _failures = new long[config.FailureThreshold];
        if (previous is not null) Inherit(previous);
    }

    public CircuitBreakerConfig Config { get; }

    /// <summary>
    /// Raised with the new state on every transition, in order, under the breaker's lock: keep handlers short
    /// (set a gauge, queue a log line).
    /// </summary>
    public event Action<CircuitState>? StateChanged;

    /// <summary>The current state; an open circuit whose cool-down is over turns half-open when read.</summary>
    public CircuitState State
    {
        get
        {
            long stamp = Volatile.Read(ref _stamp);
            if (StateOf(stamp) == CircuitState.Open && CoolDownOver())
            {
                lock (_lock) HalfOpenIfDueLocked();
                stamp = Volatile.Read(ref _stamp);
            }
            return StateOf(stamp);
        }
    }

    /// <summary>Whether <see cref="TryAcquire"/> would probably succeed now; a cheap hint for balancers, no side effects.</summary>
    public bool IsAvailable => StateOf(Volatile.Read(ref _stamp)) switch
    {
        CircuitState.Closed => true,
        CircuitState.Open => CoolDownOver(),
        _ => Volatile.Read(ref _probesInFlight) < _probes,
    };

    /// <summary>
    /// Asks leave to send one request. False means send it elsewhere. On true, report the outcome with exactly one of
    /// <see cref="RecordSuccess"/>, <see cref="RecordFailure"/> or <see cref="Release"/>.
    /// </summary>
    public bool TryAcquire(out CircuitPermit permit)
    {
        long stamp = Volatile.Read(ref _stamp);
        if (StateOf(stamp) == CircuitState.Closed)
        {
            permit = new CircuitPermit(stamp);
            return true;
        }
        permit = default;
        if (StateOf(stamp) == CircuitState.Open ? !CoolDownOver() : Volatile.Read(ref _probesInFlight) >= _probes) return false;
        lock (_lock)
        {
            HalfOpenIfDueLocked();
            switch (StateOf(_stamp))
            {
                case CircuitState.Closed:
                    permit = new CircuitPermit(_stamp);
                    return true;
                case CircuitState.HalfOpen when _probesInFlight < _probes:
                    Volatile.Write(ref _probesInFlight, _probesInFlight + 1);
                    permit = new CircuitPermit(_stamp);
                    return true;
                default:
                    return false;
            }
        }
    }

    /// <summary>The request was served; while half-open, enough of these close the circuit.</summary>
    public void RecordSuccess(CircuitPermit permit)
    {
        // A success while closed changes nothing: the breaker counts failures in a window, not a streak.
        if (!permit.IsProbe || permit.Stamp != Volatile.Read(ref _stamp)) return;
        lock (_lock)
        {
            if (permit.Stamp != _stamp) return;
            Volatile.Write(ref _probesInFlight, _probesInFlight - 1);
            if (++_probeSuccesses >= _probes) MoveLocked(CircuitState.Closed);
        }
    }

    /// <summary>The target failed the request; counts toward opening, and re-opens a half-open circuit.</summary>
    public void RecordFailure(CircuitPermit permit)
    {
        lock (_lock)
        {
            if (permit.Stamp != _stamp) return;
            if (permit.IsProbe)
            {
                MoveLocked(CircuitState.Open);
                return;
            }
            long now = _time.GetTimestamp();
            _failures[_nextFailure] = now;
            _nextFailure = (_nextFailure + 1) % _failures.Length;
            if (_failureCount < _failures.Length) _failureCount++;
            // With the ring full, the slot to be written next holds the oldest of the last FailureThreshold failures.
            if (_failureCount == _failures.Length && now - _failures[_nextFailure] < _window)
                MoveLocked(CircuitState.Open);
        }
    }

    /// <summary>The request ended without saying anything about the target (the client went away): frees a probe slot.</summary>
    public void Release(CircuitPermit permit)
    {
        if (!permit.IsProbe) return;
        lock (_lock)
        {
            if (permit.Stamp == _stamp) Volatile.Write(ref _probesInFlight, _probesInFlight - 1);
        }
    }

    internal int ProbesInFlight => Volatile.Read(ref _probesInFlight);

    private static CircuitState StateOf(long stamp) => (CircuitState)(stamp & StateMask);

    private bool CoolDownOver() => _time.GetTimestamp() >= Volatile.Read(ref _openUntil);

    private void HalfOpenIfDueLocked()
    {
        if (StateOf(_stamp) == CircuitState.Open && _time.GetTimestamp() >= _openUntil) MoveLocked(CircuitState.HalfOpen);
    }

    private void MoveLocked(CircuitState to)
    {
        if (to == CircuitState.Open) Volatile.Write(ref _openUntil, _time.GetTimestamp() + _openFor);
        _failureCount = 0;
        _nextFailure = 0;
        _probeSuccesses = 0;
        Volatile.Write(ref _probesInFlight, 0);
        long generation = (_stamp >> GenerationShift) + 1;
        Volatile.Write(ref _stamp, generation << GenerationShift | (long)to);
        StateChanged?.Invoke(to);
    }

    /// <summary>
    /// Keeps an open circuit open until its deadline. A half-open one becomes open and due, so the first request
    /// probes: the old probes report to the old breaker. Failures of a closed one are forgotten.
    /// </summary>
    private void Inherit(CircuitBreaker previous)
    {
        lock (previous._lock)
        {
            var state = StateOf(previous._stamp);
            if (state == CircuitState.Closed) return;
            _openUntil = state == CircuitState.Open ? previous._openUntil : _time.GetTimestamp();
            _stamp = _stamp & ~StateMask | (long)CircuitState.Open;
        }
    }
}

/// <summary>Conversions between <see cref="TimeSpan"/> and a <see cref="TimeProvider"/>'s timestamp units.</summary>
internal static class Timestamps
{
    public static long FromTimeSpan(TimeProvider time, TimeSpan span) =>
        (long)(span.Ticks * ((double)time.TimestampFrequency / TimeSpan.TicksPerSecond));
}
