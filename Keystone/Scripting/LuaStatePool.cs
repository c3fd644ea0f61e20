using Keystone.Observability;
using Microsoft.Extensions.ObjectPool;

namespace Keystone.Scripting;

/// <summary>
/// The Lua states of one snapshot. A request rents a state for one phase (its hooks run synchronously,
/// so a state is out for microseconds) and gives it back; a state that cannot be trusted any more is
/// disposed instead of returned. When a reload retires the pool, idle states are closed at once and
/// states still out are closed as their requests give them back.
/// </summary>
internal sealed class LuaStatePool
{
    private static int _busy;
    private readonly ScriptSet _scripts;
    private volatile bool _retired;

    // A state per thread (by managed thread id) in front of the shared pool: a thread that rents the
    // same state again finds its memory still in its core's cache, which the shared pool's rotation
    // through all states defeats under load.
    private const int LocalSlots = 64;
    private readonly LuaState?[] _local = new LuaState?[LocalSlots];

    static LuaStatePool()
    {
        Prometheus.Metrics.DefaultRegistry.AddBeforeCollectCallback(() =>
        {
            int busy = Volatile.Read(ref _busy);
            GatewayMetrics.LuaPoolStates.WithLabels("busy").Set(busy);
            GatewayMetrics.LuaPoolStates.WithLabels("idle").Set(Math.Max(0, LuaState.Live - busy));
        });
    }

    private ObjectPool<LuaState> _pool;

    public LuaStatePool(ScriptSet scripts)
    {
        _scripts = scripts;
        _pool = new DefaultObjectPoolProvider { MaximumRetained = 1 }.Create(new Policy(this));
        if (scripts.FirstState is { } first) _pool.Return(first);
    }

    /// <summary>Fills the pool to <paramref name="states"/> states, so the first requests do not pay for compiling every script.</summary>
    public void Warm(int states)
    {
        var previous = _pool;
        _pool = new DefaultObjectPoolProvider { MaximumRetained = states }.Create(new Policy(this));
        var warm = new List<LuaState>(states) { previous.Get() };
        while (warm.Count < states) warm.Add(CreateState());
        foreach (var state in warm) _pool.Return(state);
    }

    public ScriptSet Scripts => _scripts;

    public LuaState Rent()
    {
        Interlocked.Increment(ref _busy);
        if (Interlocked.Exchange(ref _local[Environment.CurrentManagedThreadId & (LocalSlots - 1)], null) is { } local) return local;
        // A retired pool hands out what it still holds, then fresh states (Create answers null once retired).
        return _pool.Get() ?? CreateState();
    }

    public void Return(LuaState state)
    {
        Interlocked.Decrement(ref _busy);
        if (_retired || state.Discard)
        {
            Close(state);
            return;
        }
        if (Interlocked.CompareExchange(ref _local[Environment.CurrentManagedThreadId & (LocalSlots - 1)], state, null) is not null)
            _pool.Return(state);
        // Retired while this was being returned: do not leave it to the finalizer.
        if (_retired) Drain();
    }

    /// <summary>Closes idle states now; states in use close when they come back.</summary>
    public void Retire()
    {
        _retired = true;
        Drain();
    }

    /// <summary>
    /// Takes every idle state out and closes it. Each Get hands a state to exactly one caller, so a
    /// request renting at the same moment gets either a state nobody closes or a fresh one; disposing
    /// the pool instead could close a state another thread was just handed.
    /// </summary>
    private void Drain()
    {
        for (int i = 0; i < LocalSlots; i++)
            if (Interlocked.Exchange(ref _local[i], null) is { } local) Close(local);
        while (_pool.Get() is { } idle) Close(idle);
    }

    private LuaState CreateState() => LuaState.Create(_scripts);

    private static void Close(LuaState state) => state.Dispose();

    private sealed class Policy(LuaStatePool owner) : IPooledObjectPolicy<LuaState>
    {
        // Null once retired: Drain stops there, and Rent makes its own state.
        public LuaState Create() => owner._retired ? null! : owner.CreateState();

        // DisposableObjectPool disposes what this refuses and what it cannot keep.
        public bool Return(LuaState state) => !state.Discard;
    }
}
