using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>
/// One sandboxed Lua state holding every script of a <see cref="ScriptSet"/>, each compiled once into its
/// own environment. A state runs one request's hooks at a time; the pool hands it out. It is discarded
/// (never reused) once it ran out of memory or the watchdog had to stop a call in it.
/// </summary>
internal sealed unsafe partial class LuaState : IDisposable
{
    /// <summary>The values native functions return first to say "raise this message" (see sandbox.lua).</summary>
    public static readonly nint ErrorMarker = 1;

    private static readonly byte[] SandboxSource = ReadSandbox();
    /// <summary>A script's top-level code runs once per state, at load: it gets more than a hook call.</summary>
    private static readonly long LoadBudgetTicks = Stopwatch.Frequency / 5;
    private const long Unlimited = long.MaxValue / 4;

    private static int _live;
    private nint _l;
    private LuaHeap* _heap;
    private GCHandle _self;
    private readonly BudgetSlot _slot;
    private readonly long _budgetTicks;
    private readonly int _tracebackRef, _ctxRef;
    private long _ctxGeneration = -1;
    private readonly int[] _functionRefs;   // [script * 3 + (int)ScriptFunction]
    private int[] _routeRefs;               // by ScriptSet.Routes index

    /// <summary>Builds the state; on failure <paramref name="errors"/> says which script failed and where.</summary>
    private LuaState(ScriptSet scripts, List<ScriptLoadError>? errors)
    {
        Scripts = scripts;
        _budgetTicks = (long)(scripts.Settings.Budget.TotalSeconds * Stopwatch.Frequency);
        _heap = (LuaHeap*)NativeMemory.AllocZeroed((nuint)sizeof(LuaHeap));
        _heap->Limit = scripts.Settings.MemoryBytes + SandboxAllowance;
        _heap->Infallible = 1;
        _l = lua_newstate(&LuaHeap.Allocate, (nint)_heap);
        if (_l == 0) throw new InvalidOperationException("could not create a Lua state");
        Interlocked.Increment(ref _live);
        lua_atpanic(_l, &Panic);
        // Weak: the pool or the caller keeps a state alive while it runs, and the finalizer must be able to run.
        _self = GCHandle.Alloc(this, GCHandleType.Weak);
        *(nint*)(_l - IntPtr.Size) = GCHandle.ToIntPtr(_self);
        luaL_openlibs(_l);

        var L = _l;
        _slot = new BudgetSlot(L);
        if (!RunSandbox(out var sandboxError))
            throw new InvalidOperationException("the Lua sandbox failed to load: " + sandboxError);
        // Stack: new_env, object_mt, traceback. The budget hook was installed by the sandbox.
        _slot.BudgetHook = lua_gethook(L);
        lua_sethook(L, 0, 0, 0);
        _tracebackRef = Ref(L);
        // Light userdata share one metatable per state; req, res and the header objects are the only ones scripts see.
        lua_pushlightuserdata(L, 0);
        lua_pushvalue(L, -2);
        lua_setmetatable(L, -2);
        Pop(L, 2);
        int newEnvRef = Ref(L);
        lua_pushboolean(L, 0);
        _ctxRef = Ref(L);

        ScriptBudget.Register(_slot);

        _functionRefs = new int[scripts.Scripts.Count * 3];
        _routeRefs = new int[scripts.Routes.Count];
        Array.Fill(_routeRefs, -1);
        for (int i = 0; i < scripts.Scripts.Count; i++)
        {
            var error = LoadScript(i, newEnvRef);
            if (error is not null)
            {
                if (errors is null) throw new InvalidOperationException(error.ToString());
                errors.Add(error);
            }
        }
    }

    /// <summary>Lua states open in the process, across all pools: what a leak check watches.</summary>
    public static int Live => Volatile.Read(ref _live);

    /// <summary>The sandbox, its libraries and the compiled scripts take memory before any request does.</summary>
    private const long SandboxAllowance = 512 * 1024;

    public ScriptSet Scripts { get; }

    /// <summary>The request whose hooks are running, read by the native functions; null between phases.</summary>
    public ScriptCall? Call { get; private set; }

    /// <summary>Tells req/res userdata of this phase from ones a script kept from an earlier request.</summary>
    public long Generation { get; private set; }

    /// <summary>Set when something happened that makes this state unfit for reuse.</summary>
    public bool Discard { get; private set; }

    /// <summary>A native function saw the deadline pass (the pattern matcher checks it as it goes).</summary>
    public bool BudgetSpent { get; set; }

    public long Deadline { get; private set; }

    public static LuaState Create(ScriptSet scripts) => new(scripts, null);

    /// <summary>Compiles everything once, collecting every script's load error instead of throwing.</summary>
    public static LuaState? TryCreate(ScriptSet scripts, List<ScriptLoadError> errors)
    {
        int before = errors.Count;
        var state = new LuaState(scripts, errors);
        if (errors.Count == before) return state;
        state.Dispose();
        return null;
    }

    public static LuaState From(nint L) => (LuaState)GCHandle.FromIntPtr(*(nint*)(L - IntPtr.Size)).Target!;

    public bool HasFunction(int script, ScriptFunction function) => _functionRefs[script * 3 + (int)function] > 0;

    /// <summary>Starts one request's phase: hooks called until <see cref="EndPhase"/> share req, res and ctx.</summary>
    public void BeginPhase(ScriptCall call)
    {
        // Cached slots are tagged with the phase that filled them, so a new phase clears nothing.
        Call = call;
        Generation++;
    }

    public void EndPhase(bool keepContext)
    {
        if (keepContext && Call is { } call && _ctxGeneration == Generation && lua_rawgeti(_l, RegistryIndex, _ctxRef) == TTable)
        {
            // Encoding runs after the hooks returned, so it gets a budget of its own.
            Deadline = Stopwatch.GetTimestamp() + _budgetTicks;
            call.CarriedContext = LuaJson.TryEncode(this, _l, lua_gettop(_l), out var error, LuaJson.MaxContextBytes);
            if (error is not null)
                ScriptLog.Logger.LogWarning("req.ctx of request {RequestId} is not carried to on_response: {Error}", call.RequestId, error);
            BudgetSpent = false;
        }
        lua_settop(_l, 0);
        Call = null;
    }

    /// <summary>Calls a script's function with req (and res for response hooks); its result stays on the stack.</summary>
    public ScriptOutcome Invoke(int script, ScriptFunction function, bool withResponse) =>
        InvokeRef(_functionRefs[script * 3 + (int)function], withResponse);

    public ScriptOutcome InvokeRoute(int route) => InvokeRef(_routeRefs[route], false);

    private ScriptOutcome InvokeRef(int functionRef, bool withResponse)
    {
        var L = _l;
        lua_settop(L, 0);
        PushRef(L, _tracebackRef);
        PushRef(L, functionRef);
        PushObject(ObjectKind.Request);
        if (withResponse) PushObject(ObjectKind.Response);
        return Protected(withResponse ? 2 : 1, 1, _budgetTicks);
    }

    /// <summary>The value the last call returned (stack index 2, above the traceback handler).</summary>
    public const int ResultIndex = 2;

    public nint Handle => _l;

    /// <summary>
    /// Pushes req, res or a header object of the current phase: a light userdata whose value is the phase and
    /// the kind, so making one allocates nothing (and gives Lua's collector nothing to do). The same object in a
    /// later phase has another value: one a script kept from an earlier request is refused, not read.
    /// </summary>
    public void PushObject(ObjectKind kind) => lua_pushlightuserdata(_l, (nint)((Generation << KindBits) | ((long)kind + 1)));

    private const int KindBits = 3;

    /// <summary>
    /// The kind of the req/res/header object at <paramref name="idx"/>; false when it is not one of the running
    /// phase (the kind then says what a script kept, for the error message).
    /// </summary>
    public bool TryObjectAt(nint L, int idx, out ObjectKind kind)
    {
        long value = lua_type(L, idx) == TLightUserdata ? lua_touserdata(L, idx) : 0;
        kind = (ObjectKind)Math.Max(0, (value & ((1 << KindBits) - 1)) - 1);
        // Generations start at 1, so no object is ever 0 or the error marker (1).
        return Call is not null && value >> KindBits == Generation;
    }

    /// <summary>Pushes this request's ctx table, creating it (or restoring it from an earlier phase) on first use.</summary>
    public void PushContext(nint L)
    {
        if (_ctxGeneration == Generation && lua_rawgeti(L, RegistryIndex, _ctxRef) == TTable) return;
        if (_ctxGeneration == Generation) Pop(L, 1);
        _ctxGeneration = Generation;
        if (Call?.CarriedContext is not { } carried || LuaJson.Decode(this, L, carried) is not null || lua_type(L, -1) != TTable)
            lua_createtable(L, 0, 4);
        lua_pushvalue(L, -1);
        lua_rawseti(L, RegistryIndex, _ctxRef);
    }

    /// <summary>
    /// Runs the function below <paramref name="nargs"/> arguments under the budget, with the traceback
    /// handler at stack index 1. Memory may only run out inside this call, where Lua can unwind it.
    /// </summary>
    private ScriptOutcome Protected(int nargs, int nresults, long budget, int handler = 1)
    {
        var L = _l;
        long started = Stopwatch.GetTimestamp();
        Deadline = started + budget;
        BudgetSpent = false;
        MemorySpent = false;
        _heap->Infallible = 0;
        _slot.Start(started, budget);
        int rc = lua_pcallk(L, nargs, nresults, handler, 0, 0);
        bool armed = _slot.Stop();
        _heap->Infallible = 1;

        if (armed) Discard = true; // the hook was set from another thread: do not trust the state further
        if (_heap->Exhausted) Discard = true;
        // A native function that saw the deadline pass fails the call even if the script caught its error.
        if (rc == Ok) return BudgetSpent ? new ScriptOutcome(FailureReason.Budget, "script exceeded its time budget") : ScriptOutcome.Success;
        // Running out of memory can take longer than the budget; the memory error is the cause.
        var reason = rc == ErrMem || MemorySpent ? FailureReason.Memory
            : armed || BudgetSpent ? FailureReason.Budget
            : _heap->Denied != 0 ? FailureReason.Memory
            : FailureReason.Error;
        if (reason == FailureReason.Memory) Discard = true;
        return new ScriptOutcome(reason, ErrorText(L, -1));
    }

    /// <summary>An error value read raw: its bytes when it is a string, only its type otherwise (no __tostring).</summary>
    private static string ErrorText(nint L, int idx) => lua_type(L, idx) switch
    {
        TString => System.Text.Encoding.UTF8.GetString(StringAt(L, idx)),
        TNil => "error object is nil",
        var t => $"error object is a {TypeName(t)} value",
    };

    public static string TypeName(int type) => type switch
    {
        TNil => "nil",
        TBoolean => "boolean",
        TNumber => "number",
        TString => "string",
        TTable => "table",
        TFunction => "function",
        TUserdata or TLightUserdata => "userdata",
        TThread => "thread",
        _ => "no value",
    };

    /// <summary>Unreachable by design (every call is protected); if it happens, nothing is safe any more.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Panic(nint L)
    {
        Environment.FailFast("Lua panic outside a protected call: " + ErrorText(L, -1));
        return 0;
    }

    public void MarkDiscard() => Discard = true;

    /// <summary>A native function refused an allocation that would pass the cap; the call fails with reason memory.</summary>
    public bool MemorySpent { get; set; }

    /// <summary>Whether <paramref name="bytes"/> more fit under the cap; natives ask before building large values.</summary>
    public bool CanAllocate(long bytes)
    {
        if (_heap->Used + bytes <= _heap->Limit) return true;
        MemorySpent = true;
        return false;
    }

    /// <summary>True while the memory in use is past the cap (values pushed by C# may go over it).</summary>
    public bool OverMemory => _heap->Used > _heap->Limit;

    public void EnterNative() => _heap->Infallible = 1;

    public void LeaveNative() => _heap->Infallible = 0;

    public void Dispose()
    {
        if (_l == 0) return;
        ScriptBudget.Unregister(_slot);
        lua_close(_l);
        Interlocked.Decrement(ref _live);
        _l = 0;
        _self.Free();
        NativeMemory.Free(_heap);
        _heap = null;
        GC.SuppressFinalize(this);
    }

    ~LuaState()
    {
        // A state dropped without Dispose (a retired pool's straggler) is closed here; nothing runs in it any more.
        if (_l != 0)
        {
            ScriptBudget.Unregister(_slot);
            lua_close(_l);
            Interlocked.Decrement(ref _live);
            NativeMemory.Free(_heap);
            _self.Free();
        }
    }
}

internal enum ScriptFunction { OnRequest = 0, OnResponse = 1, Handle = 2 }

internal enum ObjectKind { Request, Response, RequestHeaders, ResponseHeaders }

internal enum FailureReason { None, Error, Budget, Memory }

internal readonly record struct ScriptOutcome(FailureReason Failure, string? Message)
{
    public static readonly ScriptOutcome Success = new(FailureReason.None, null);
}

internal sealed record ScriptLoadError(ScriptSource Script, string Message)
{
    public override string ToString() => Message;
}
