using System.Diagnostics;

namespace Keystone.Scripting;

/// <summary>
/// The wall-time budget of script calls. A runner only stamps a deadline and flips a flag, so a call that
/// stays within budget pays two interlocked operations; one watchdog thread, waking every millisecond, arms
/// a count hook on a state whose call overran. The hook (Lua's own debug hook, set up by the sandbox)
/// raises the budget error on every following VM instruction, so catching it with pcall does not help.
/// </summary>
internal static class ScriptBudget
{
    private static BudgetSlot[] _slots = [];
    private static readonly Lock SlotsLock = new();
    private static Thread? _watchdog;

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

    private static void Watch()
    {
        while (true)
        {
            Thread.Sleep(1);
            long now = Stopwatch.GetTimestamp();
            foreach (var slot in Volatile.Read(ref _slots))
                slot.ArmIfOverrun(now);
        }
    }
}

/// <summary>The watchdog's view of one Lua state: whether a call runs in it, and until when it may.</summary>
internal sealed class BudgetSlot(nint state)
{
    /// <summary>Lua's own debug hook function, set up by the sandbox to raise the budget error.</summary>
    public nint BudgetHook { get; set; }

    private const int Idle = 0, Running = 1, Arming = 2, Armed = 3;
    private int _phase;
    private long _deadline;

    /// <summary>Called by the runner before each protected call.</summary>
    public void Start(long deadline)
    {
        _deadline = deadline;
        Volatile.Write(ref _phase, Running);
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

    public void ArmIfOverrun(long now)
    {
        if (Volatile.Read(ref _phase) != Running || now <= Volatile.Read(ref _deadline)) return;
        if (Interlocked.CompareExchange(ref _phase, Arming, Running) != Running) return;
        LuaNative.lua_sethook(state, BudgetHook, LuaNative.MaskCount, 1);
        Volatile.Write(ref _phase, Armed);
    }
}
