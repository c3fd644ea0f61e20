using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Keystone.Scripting;

/// <summary>
/// The time budget of script calls. A runner only stamps its deadline and flips a flag, so a call within
/// budget pays two interlocked operations; one watchdog thread, waking every millisecond, arms a count
/// hook on a state whose call overran. The hook (Lua's own debug hook, set up by the sandbox) raises the
/// budget error on every following VM instruction, so catching it with pcall does not help.
/// <para>
/// A call past its wall-clock deadline is stopped only when its thread really ran for the budget: on a
/// busy machine the OS may pause a thread for milliseconds in the middle of a 20 µs hook, and that must not
/// fail the request. Scripts cannot block or sleep, so a hostile script's wall time is its run time. The
/// thread's CPU clock is read only for calls that outlive a watchdog tick, which well-behaved calls never do.
/// </para>
/// </summary>
internal static partial class ScriptBudget
{
    /// <summary>However the OS schedules, no call runs this much longer than its budget in wall time.</summary>
    public static readonly long WallSlackTicks = Stopwatch.Frequency; // 1 s

    private static BudgetSlot[] _slots = [];
    private static readonly Lock SlotsLock = new();
    private static Thread? _watchdog;

    [ThreadStatic] private static int _threadClock;
    [ThreadStatic] private static bool _threadClockKnown;

    public static void Register(BudgetSlot slot)
    {
        lock (SlotsLock)
        {
            var next = new BudgetSlot[_slots.Length + 1];
            _slots.CopyTo(next, 0);
            next[^1] = slot;
            Volatile.Write(ref _slots, next);
            if (_watchdog is null)
            {
                _watchdog = new Thread(Watch) { IsBackground = true, Name = "keystone-lua-watchdog", Priority = ThreadPriority.Highest };
                _watchdog.Start();
            }
        }
    }

    public static void Unregister(BudgetSlot slot)
    {
        lock (SlotsLock)
        {
            int i = Array.IndexOf(_slots, slot);
            if (i < 0) return;
            var next = new BudgetSlot[_slots.Length - 1];
            Array.Copy(_slots, 0, next, 0, i);
            Array.Copy(_slots, i + 1, next, i, _slots.Length - i - 1);
            Volatile.Write(ref _slots, next);
        }
    }

    // After a second in which no tick saw a call running, the watchdog stops ticking (an idle gateway should not
    // wake a thread 1,000 times a second) until the next call starts and wakes it.
    private const int IdleTicksBeforeParking = 1000;
    private static int _parked;
    private static readonly AutoResetEvent Wakeup = new(false);

    private static void Watch()
    {
        int idleTicks = 0;
        while (true)
        {
            Thread.Sleep(1);
            if (Sweep(Stopwatch.GetTimestamp()))
            {
                idleTicks = 0;
                continue;
            }
            if (++idleTicks < IdleTicksBeforeParking) continue;
            idleTicks = 0;
            // Parking is announced before the last look, and BudgetSlot.Start sets Running before it looks at
            // the flag (both with full fences): a call that starts meanwhile is seen here or wakes the thread.
            Interlocked.Exchange(ref _parked, 1);
            if (Sweep(Stopwatch.GetTimestamp()))
            {
                Interlocked.Exchange(ref _parked, 0);
                continue;
            }
            Wakeup.WaitOne();
            // The call that woke us has just started: seen now, it is watched from the next tick on, as if the
            // watchdog had never stopped (a first tick a millisecond late would let an overrun run a tick longer).
            Sweep(Stopwatch.GetTimestamp());
        }
    }

    /// <summary>Checks every slot; true when a call was running in any of them.</summary>
    private static bool Sweep(long now)
    {
        bool running = false;
        foreach (var slot in Volatile.Read(ref _slots))
            running |= slot.Check(now);
        return running;
    }

    /// <summary>True while the watchdog waits for a call to start (for tests).</summary>
    internal static bool IsParked => Volatile.Read(ref _parked) == 1;

    /// <summary>Called by a runner that just started a call: restarts the watchdog if it is parked.</summary>
    public static void WakeIfParked()
    {
        if (Volatile.Read(ref _parked) != 0 && Interlocked.Exchange(ref _parked, 0) == 1) Wakeup.Set();
    }

    /// <summary>The calling thread's CPU clock id (looked up once per thread), or -1 where there is none.</summary>
    public static int CurrentThreadClock()
    {
        if (_threadClockKnown) return _threadClock;
        _threadClockKnown = true;
        _threadClock = -1;
        if (OperatingSystem.IsLinux() && pthread_getcpuclockid(pthread_self(), out int clock) == 0) _threadClock = clock;
        return _threadClock;
    }

    /// <summary>CPU time a thread has used, in Stopwatch ticks; -1 when the clock cannot be read (the thread is gone).</summary>
    public static long CpuTicks(int clock)
    {
        if (clock == -1 || clock_gettime(clock, out var time) != 0) return -1;
        return (long)((time.Seconds * 1_000_000_000.0 + time.Nanoseconds) * Stopwatch.Frequency / 1_000_000_000.0);
    }

    /// <summary>Time the process spent paused for garbage collection so far, in Stopwatch ticks.</summary>
    public static long GcPauseTicks() => GC.GetTotalPauseDuration().Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc")]
    private static partial nint pthread_self();

    [LibraryImport("libc")]
    private static partial int pthread_getcpuclockid(nint thread, out int clock);

    [LibraryImport("libc")]
    private static partial int clock_gettime(int clock, out TimeSpec time);
}

/// <summary>The watchdog's view of one Lua state: whether a call runs in it, since when, and on which thread.</summary>
internal sealed class BudgetSlot(nint state)
{
    private const int Idle = 0, Running = 1, Arming = 2, Armed = 3;
    private int _phase;
    private long _started, _budget, _call, _threadClock;

    // The watchdog's own notes on the call it is watching; only the watchdog thread touches them.
    private const long NotRead = long.MinValue;
    private long _seenCall = -1, _cpuAtSeen = NotRead, _pauseAtSeen;

    /// <summary>Lua's own debug hook function, set up by the sandbox to raise the budget error.</summary>
    public nint BudgetHook { get; set; }

    /// <summary>Called by the runner before each protected call.</summary>
    public void Start(long started, long budget)
    {
        _started = started;
        _budget = budget;
        _threadClock = ScriptBudget.CurrentThreadClock();
        _call++;
        Interlocked.Exchange(ref _phase, Running); // a full fence: the watchdog's parking relies on it
        ScriptBudget.WakeIfParked();
    }

    /// <summary>Called by the runner after the call; true when the watchdog armed the hook (the call overran).</summary>
    public bool Stop()
    {
        if (Interlocked.CompareExchange(ref _phase, Idle, Running) == Running) return false;
        // The watchdog is between claiming the slot and setting the hook: wait for it, then take the hook off.
        var spin = new SpinWait();
        while (Volatile.Read(ref _phase) != Armed) spin.SpinOnce();
        LuaNative.lua_sethook(state, 0, 0, 0);
        Volatile.Write(ref _phase, Idle);
        return true;
    }

    /// <summary>Arms the hook on an overrunning call; true when a call is running in this slot.</summary>
    public bool Check(long now)
    {
        int phase = Volatile.Read(ref _phase);
        if (phase != Running) return phase != Idle;
        long call = Volatile.Read(ref _call), started = _started, budget = _budget;
        if (call != _seenCall)
        {
            // A call the watchdog has not seen before: nearly every call ends before the next tick,
            // so nothing more is done for it (reading a thread's CPU clock is a system call).
            _seenCall = call;
            _cpuAtSeen = NotRead;
            return true;
        }
        if (_cpuAtSeen == NotRead)
        {
            // Still running a tick later: from now on its thread's run time is watched.
            _cpuAtSeen = ScriptBudget.CpuTicks((int)_threadClock);
            _pauseAtSeen = ScriptBudget.GcPauseTicks();
            if (_cpuAtSeen != -1) return true;
        }
        if (now - started <= budget) return true;
        long cpu = ScriptBudget.CpuTicks((int)_threadClock);
        // Run time is counted from then on: what came before may have been a pause, not work. A looping
        // script is therefore stopped after its budget plus one to two ticks.
        // A garbage collection the call's own allocation set off runs on its thread, but is not the script's doing.
        long gc = ScriptBudget.GcPauseTicks() - _pauseAtSeen;
        bool spent = cpu < 0 || _cpuAtSeen < 0 || cpu - _cpuAtSeen - gc > budget;
        if (!spent && now - started <= budget + ScriptBudget.WallSlackTicks) return true;
        if (Interlocked.CompareExchange(ref _phase, Arming, Running) != Running) return true;
        LuaNative.lua_sethook(state, BudgetHook, LuaNative.MaskCount, 1);
        Volatile.Write(ref _phase, Armed);
        return true;
    }
}
