using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>Building a state: the sandbox chunk, then every script compiled once into its own environment.</summary>
internal sealed unsafe partial class LuaState
{
    private bool RunSandbox(out string error)
    {
        var L = _l;
        fixed (byte* src = SandboxSource)
        {
            if (luaL_loadbufferx(L, src, (nuint)SandboxSource.Length, Z("=sandbox\0"u8), Z("t\0"u8)) != Ok)
            {
                error = ErrorText(L, -1);
                return false;
            }
        }
        KeystoneLibrary.PushNativeTable(L);
        PushLibSources(L);
        var outcome = Protected(2, 3, LoadBudgetTicks, handler: 0);
        error = outcome.Message ?? "";
        return outcome.Failure == FailureReason.None;
    }

    /// <summary>A pointer to a NUL-terminated UTF-8 literal; u8 literals live in the assembly's data, so they never move.</summary>
    private static byte* Z(ReadOnlySpan<byte> literal) => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(literal));

    private void PushLibSources(nint L)
    {
        lua_createtable(L, 0, Scripts.Libraries.Count);
        foreach (var (name, source) in Scripts.Libraries)
        {
            PushBytes(L, System.Text.Encoding.UTF8.GetBytes(name));
            PushBytes(L, source);
            lua_rawset(L, -3);
        }
    }

    private ScriptLoadError? LoadScript(int index, int newEnvRef)
    {
        var L = _l;
        var script = Scripts.Scripts[index];
        lua_settop(L, 0);
        PushRef(L, _tracebackRef);                       // 1
        PushRef(L, newEnvRef);
        PushBytes(L, System.Text.Encoding.UTF8.GetBytes(script.Name));
        if (Protected(1, 1, Unlimited) is { Failure: not FailureReason.None } envFailure)
            return new ScriptLoadError(script, envFailure.Message!);
        // 2: env
        var chunkName = System.Text.Encoding.UTF8.GetBytes("@" + script.DisplayPath + "\0");
        int rc;
        fixed (byte* src = script.Source)
        fixed (byte* name = chunkName)
            rc = luaL_loadbufferx(L, src, (nuint)script.Source.Length, name, Z("t\0"u8));
        if (rc != Ok) return new ScriptLoadError(script, ErrorText(L, -1));
        lua_pushvalue(L, 2);
        lua_setupvalue(L, 3, 1);                         // the chunk's _ENV is the script's environment
        var run = Protected(0, 0, LoadBudgetTicks);
        if (run.Failure != FailureReason.None) return new ScriptLoadError(script, run.Message!);

        RefFunction(L, index, ScriptFunction.OnRequest, "on_request"u8);
        RefFunction(L, index, ScriptFunction.OnResponse, "on_response"u8);
        RefFunction(L, index, ScriptFunction.Handle, "handle"u8);
        return RefRoutes(L, index, script);
    }

    private void RefFunction(nint L, int script, ScriptFunction function, ReadOnlySpan<byte> name)
    {
        PushBytes(L, name);
        if (lua_rawget(L, 2) == TFunction) _functionRefs[script * 3 + (int)function] = Ref(L);
        else Pop(L, 1);
    }

    /// <summary>Binds the functions of the script's <c>routes</c> table to the routes the set declared for it.</summary>
    private ScriptLoadError? RefRoutes(nint L, int script, ScriptSource source)
    {
        PushBytes(L, "routes"u8);
        int type = lua_rawget(L, 2);
        if (type == TNil) { Pop(L, 1); return null; }
        if (type != TTable) return new ScriptLoadError(source, "routes must be a table of \"METHOD /path\" = function");
        int table = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, table) != 0)
        {
            if (lua_type(L, -2) != TString || lua_type(L, -1) != TFunction)
                return new ScriptLoadError(source, "routes must be a table of \"METHOD /path\" = function");
            var key = System.Text.Encoding.UTF8.GetString(StringAt(L, -2));
            int route = Scripts.FindRoute(script, key);
            if (route < 0)
            {
                // Discovered by the first state built; a later state must declare the same routes.
                if (!Scripts.Discovering) return new ScriptLoadError(source, $"route '{key}' was not declared when the scripts were loaded");
                route = Scripts.DeclareRoute(script, key);
                Array.Resize(ref _routeRefs, route + 1);
            }
            _routeRefs[route] = Ref(L);
        }
        Pop(L, 1);
        return null;
    }

    /// <summary>Reads Keystone's own sandbox chunk, embedded next to this type.</summary>
    private static byte[] ReadSandbox()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Keystone.Scripting.sandbox.lua")
            ?? throw new InvalidOperationException("sandbox.lua is not embedded");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}
