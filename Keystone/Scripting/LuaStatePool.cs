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
        if (_retired) return CreateState();
        try
        {
            return _pool.Get();
        }
        catch (ObjectDisposedException)
        {
            return CreateState();
        }
    }

    public void Return(LuaState state)
    {
        Interlocked.Decrement(ref _busy);
        if (_retired || state.Discard)
        {
            Close(state);
            return;
        }
        _pool.Return(state);
    }

    /// <summary>Closes idle states now; states in use close when they come back.</summary>
    public void Retire()
    {
        _retired = true;
        (_pool as IDisposable)?.Dispose();
    }

    private LuaState CreateState() => LuaState.Create(_scripts);

    private static void Close(LuaState state) => state.Dispose();

    private sealed class Policy(LuaStatePool owner) : IPooledObjectPolicy<LuaState>
    {
        public LuaState Create() => owner.CreateState();

        // DisposableObjectPool disposes what this refuses and what it cannot keep.
        public bool Return(LuaState state) => !state.Discard;
    }
}
