using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>
/// The native half of the hardened string library (see sandbox.lua): pattern search on Keystone's own
/// engine, which stops at the call's deadline, and string.rep built without one C call per repetition.
/// </summary>
internal static unsafe class StringFunctions
{
    // ---- string.find / string.match / gmatch & gsub support ----------------------------------------

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int Find(nint L) => NativeFrame.Run(L, &FindBody);

    private static int FindBody(LuaState state, nint L)
    {
        var subject = StringAt(L, 1);
        var pattern = StringAt(L, 2);
        int isInteger;
        long init = lua_tointegerx(L, 3, &isInteger);
        int mode = (int)lua_tointegerx(L, 4, null);
        bool plain = lua_toboolean(L, 5) != 0;
        if (isInteger == 0) return LuaText.Raise(L, "bad argument #3 (number has no integer representation)");

        long len = subject.Length;
        if (init > 0) { }
        else if (init == 0) init = 1;
        else if (init < -len) init = 1;
        else init = len + init + 1;
        if (init > len + 1)
        {
            lua_pushnil(L);
            return 1;
        }
        int start = (int)init - 1;

        if (plain || (mode == 0 && !HasSpecials(pattern)))
        {
            int found = subject[start..].IndexOf(pattern);
            if (found < 0)
            {
                lua_pushnil(L);
                return 1;
            }
            lua_pushinteger(L, start + found + 1);
            lua_pushinteger(L, start + found + pattern.Length);
            return 2;
        }

        Span<Capture> captures = stackalloc Capture[LuaPattern.MaxCaptures];
        var result = LuaPattern.Find(subject, pattern, start, captures, state.Deadline, out int matchStart, out int matchEnd, out int count, out var error);
        switch (result)
        {
            case PatternResult.NoMatch:
                lua_pushnil(L);
                return 1;
            case PatternResult.Error:
                return LuaText.Raise(L, error ?? "malformed pattern");
            case PatternResult.Timeout:
                state.BudgetSpent = true;
                return LuaText.Raise(L, "script exceeded its time budget (in pattern matching)");
        }
        if (lua_checkstack(L, count + 4) == 0) return LuaText.Raise(L, "too many captures");
        int pushed = 0;
        if (mode != 1)
        {
            lua_pushinteger(L, matchStart + 1);
            lua_pushinteger(L, matchEnd);
            pushed = 2;
        }
        if (count == 0 && mode != 0)
        {
            PushBytes(L, subject[matchStart..matchEnd]);
            return pushed + 1;
        }
        for (int i = 0; i < count; i++)
        {
            var c = captures[i];
            if (c.Length == Capture.Position) lua_pushinteger(L, c.Start + 1);
            else PushBytes(L, subject.Slice(c.Start, c.Length));
        }
        return pushed + count;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int Rep(nint L) => NativeFrame.Run(L, &RepBody);

    /// <summary>Results from this size on are checked against the deadline; smaller ones take microseconds.</summary>
    private const long LargeResult = 64 * 1024;

    /// <summary>string.rep(s, n, sep), sizes already checked by the sandbox: built by doubling copies.</summary>
    private static int RepBody(LuaState state, nint L)
    {
        var s = StringAt(L, 1);
        var sep = StringAt(L, 3);
        long n = lua_tointegerx(L, 2, null);
        long total = n * s.Length + (n - 1) * sep.Length;
        if (n <= 0 || total <= 0)
        {
            PushBytes(L, default);
            return 1;
        }
        if (!state.CanAllocate(total)) return LuaText.Raise(L, "not enough memory");
        var buffer = ArrayPool<byte>.Shared.Rent((int)total);
        try
        {
            var output = buffer.AsSpan(0, (int)total);
            s.CopyTo(output);
            sep.CopyTo(output[s.Length..]);
            int unit = s.Length + sep.Length, filled = Math.Min(unit, (int)total);
            while (filled < total)
            {
                int copy = (int)Math.Min(filled, total - filled);
                output[..copy].CopyTo(output[filled..]);
                filled += copy;
            }
            // Megabytes take about a budget to fill: like the pattern functions, a call that saw the deadline pass fails it.
            if (total >= LargeResult && Stopwatch.GetTimestamp() > state.Deadline)
            {
                state.BudgetSpent = true;
                return LuaText.Raise(L, "script exceeded its time budget (in string.rep)");
            }
            PushBytes(L, output);
            return 1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static bool HasSpecials(ReadOnlySpan<byte> pattern) => pattern.IndexOfAny("^$*+?.([%-"u8) >= 0;
}
