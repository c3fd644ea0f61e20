using System.Buffers;
using System.Text;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>Moving .NET strings in and out of Lua as UTF-8 without a managed allocation for short ones.</summary>
internal static unsafe class LuaText
{
    public static void Push(nint L, ReadOnlySpan<char> text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        if (max <= 512)
        {
            Span<byte> buffer = stackalloc byte[max];
            PushBytes(L, buffer[..Encoding.UTF8.GetBytes(text, buffer)]);
            return;
        }
        var rented = ArrayPool<byte>.Shared.Rent(max);
        PushBytes(L, rented.AsSpan(0, Encoding.UTF8.GetBytes(text, rented)));
        ArrayPool<byte>.Shared.Return(rented);
    }

    public static string? Read(nint L, int idx) =>
        lua_type(L, idx) == TString ? Encoding.UTF8.GetString(StringAt(L, idx)) : null;

    /// <summary>Native functions report errors by returning the marker and a message; sandbox.lua raises them.</summary>
    public static int Raise(nint L, string message)
    {
        lua_settop(L, 0);
        lua_pushlightuserdata(L, LuaState.ErrorMarker);
        Push(L, message);
        return 2;
    }

    /// <summary>A string or number argument as text; numbers are formatted the way Lua's tostring does for integers.</summary>
    public static string? Coerce(nint L, int idx)
    {
        switch (lua_type(L, idx))
        {
            case TString:
                return Encoding.UTF8.GetString(StringAt(L, idx));
            case TNumber:
                if (lua_isinteger(L, idx) != 0) return lua_tointegerx(L, idx, null).ToString(System.Globalization.CultureInfo.InvariantCulture);
                return lua_tonumberx(L, idx, null).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            default:
                return null;
        }
    }
}
