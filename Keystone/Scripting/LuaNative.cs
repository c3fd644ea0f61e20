using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Keystone.Scripting;

/// <summary>
/// The Lua 5.4 C API, declared against KeraLua's native <c>lua54</c> with byte spans and function pointers,
/// because KeraLua's own wrappers allocate per call and take delegates. Only calls that cannot raise a Lua
/// error (a longjmp, which must never cross a managed frame) are used outside a protected call.
/// Calls that neither allocate nor call back are marked SuppressGCTransition.
/// </summary>
internal static unsafe partial class LuaNative
{
    private const string Lib = "lua54";

    public const int RegistryIndex = -1001000;
    public const int Ok = 0, ErrMem = 4;
    public const int TNone = -1, TNil = 0, TBoolean = 1, TLightUserdata = 2, TNumber = 3, TString = 4,
        TTable = 5, TFunction = 6, TUserdata = 7, TThread = 8;
    public const int MaskCount = 1 << 3;

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial nint lua_newstate(delegate* unmanaged[Cdecl]<nint, nint, nuint, nuint, nint> alloc, nint ud);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial void lua_close(nint L);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial nint lua_atpanic(nint L, delegate* unmanaged[Cdecl]<nint, int> panic);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial void luaL_openlibs(nint L);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int luaL_loadbufferx(nint L, byte* buffer, nuint size, byte* name, byte* mode);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int lua_pcallk(nint L, int nargs, int nresults, int msgh, nint ctx, nint k);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_sethook(nint L, nint hook, int mask, int count);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial nint lua_gethook(nint L);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial int lua_gettop(nint L);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_settop(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial int lua_type(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_pushnil(nint L);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_pushinteger(nint L, long n);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_pushnumber(nint L, double n);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_pushboolean(nint L, int b);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_pushlightuserdata(nint L, nint p);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_pushvalue(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial int lua_toboolean(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial long lua_tointegerx(nint L, int idx, int* isnum);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial double lua_tonumberx(nint L, int idx, int* isnum);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial int lua_isinteger(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial nint lua_touserdata(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial void lua_rotate(nint L, int idx, int n);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial ulong lua_rawlen(nint L, int idx);

    /// <summary>Only ever called on a value already known to be a string, so it never converts or allocates.</summary>
    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial byte* lua_tolstring(nint L, int idx, nuint* len);

    // The calls below may allocate (and so call the managed allocator): no transition suppression.
    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial byte* lua_pushlstring(nint L, byte* s, nuint len);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial void lua_pushcclosure(nint L, delegate* unmanaged[Cdecl]<nint, int> fn, int n);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial void lua_createtable(nint L, int narr, int nrec);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial nint lua_newuserdatauv(nint L, nuint size, int nuvalue);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int lua_setmetatable(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial int lua_rawget(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl), typeof(CallConvSuppressGCTransition)])]
    public static partial int lua_rawgeti(nint L, int idx, long n);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial void lua_rawset(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial void lua_rawseti(nint L, int idx, long n);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int lua_next(nint L, int idx);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int lua_checkstack(nint L, int n);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int luaL_ref(nint L, int t);

    [LibraryImport(Lib), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial nint lua_setupvalue(nint L, int funcindex, int n);

    public static void Pop(nint L, int n) => lua_settop(L, -n - 1);

    public static void PushBytes(nint L, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes) lua_pushlstring(L, p, (nuint)bytes.Length);
    }

    /// <summary>The string at <paramref name="idx"/>, valid while it stays on the stack; empty when it is not a string.</summary>
    public static ReadOnlySpan<byte> StringAt(nint L, int idx)
    {
        if (lua_type(L, idx) != TString) return default;
        nuint len;
        var p = lua_tolstring(L, idx, &len);
        return new ReadOnlySpan<byte>(p, checked((int)len));
    }

    /// <summary>Pushes a value from the registry: constant strings, functions and metatables are kept there by ref.</summary>
    public static void PushRef(nint L, int reference) => lua_rawgeti(L, RegistryIndex, reference);

    /// <summary>Pops the top value into the registry and returns its ref.</summary>
    public static int Ref(nint L) => luaL_ref(L, RegistryIndex);

    public static int AbsIndex(nint L, int idx) => idx > 0 || idx <= RegistryIndex ? idx : lua_gettop(L) + idx + 1;
}
