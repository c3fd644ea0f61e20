using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>
/// keystone.json: Lua values to JSON and back, walking tables with raw access only (no metamethod of a
/// script's table runs from C#), with a depth limit and a size limit so a hostile value cannot make one
/// call long or large.
/// </summary>
internal static unsafe class LuaJson
{
    public const int MaxDepth = 32;

    /// <summary>Largest JSON text either way.</summary>
    public const int MaxBytes = 4 << 20;

    /// <summary>Largest req.ctx carried from one phase to the next.</summary>
    public const int MaxContextBytes = 64 * 1024;

    private const string OverBudget = "script exceeded its time budget";

    /// <summary>
    /// The JSON text of the value at <paramref name="idx"/>, or null with the reason. A table that shares
    /// subtables can expand exponentially, so the walk also stops at the call's deadline.
    /// </summary>
    public static byte[]? TryEncode(LuaState state, nint L, int idx, out string? error, int maxBytes = MaxBytes)
    {
        var output = new ArrayBufferWriter<byte>(256);
        var walk = new Walk(state, maxBytes);
        error = Write(L, AbsIndex(L, idx), output, 0, ref walk);
        if (error == OverBudget) state.BudgetSpent = true;
        return error is null ? output.WrittenSpan.ToArray() : null;
    }

    /// <summary>What one encode or decode may still spend: time (checked every 256 values), bytes and state memory.</summary>
    private struct Walk(LuaState state, int maxBytes)
    {
        private int _values;
        public readonly int MaxBytes = maxBytes;

        public string? Step()
        {
            if ((++_values & 255) != 0) return null;
            if (Stopwatch.GetTimestamp() > state.Deadline) return OverBudget;
            if (state.OverMemory)
            {
                state.MarkDiscard();
                return "not enough memory";
            }
            return null;
        }
    }

    private static string? Write(nint L, int idx, ArrayBufferWriter<byte> output, int depth, ref Walk walk)
    {
        if (output.WrittenCount > walk.MaxBytes) return $"result larger than {walk.MaxBytes / 1024} KB";
        if (walk.Step() is { } stop) return stop;
        switch (lua_type(L, idx))
        {
            case TNil:
                output.Write("null"u8);
                return null;
            case TBoolean:
                output.Write(lua_toboolean(L, idx) != 0 ? "true"u8 : "false"u8);
                return null;
            case TNumber:
                return WriteNumber(L, idx, output);
            case TString:
                return WriteString(StringAt(L, idx), output);
            case TTable:
                if (depth >= MaxDepth) return $"nested deeper than {MaxDepth} levels (or a cycle)";
                if (lua_checkstack(L, 4) == 0) return "out of stack";
                return WriteTable(L, idx, output, depth, ref walk);
            case var type:
                return $"cannot encode a {LuaState.TypeName(type)}";
        }
    }

    private static unsafe string? WriteNumber(nint L, int idx, ArrayBufferWriter<byte> output)
    {
        Span<byte> text = stackalloc byte[32];
        int written;
        if (lua_isinteger(L, idx) != 0)
        {
            lua_tointegerx(L, idx, null).TryFormat(text, out written, default, CultureInfo.InvariantCulture);
        }
        else
        {
            double d = lua_tonumberx(L, idx, null);
            if (!double.IsFinite(d)) return "cannot encode NaN or infinity";
            d.TryFormat(text, out written, "R", CultureInfo.InvariantCulture);
        }
        output.Write(text[..written]);
        return null;
    }

    private static string? WriteString(ReadOnlySpan<byte> text, ArrayBufferWriter<byte> output)
    {
        if (!System.Text.Unicode.Utf8.IsValid(text)) return "strings must be valid UTF-8";
        output.Write("\""u8);
        Span<byte> escape = stackalloc byte[6];
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            byte b = text[i];
            if (b >= 0x20 && b != '"' && b != '\\') continue;
            output.Write(text[start..i]);
            switch (b)
            {
                case (byte)'"': output.Write("\\\""u8); break;
                case (byte)'\\': output.Write("\\\\"u8); break;
                case (byte)'\n': output.Write("\\n"u8); break;
                case (byte)'\r': output.Write("\\r"u8); break;
                case (byte)'\t': output.Write("\\t"u8); break;
                default:
                    "\\u00"u8.CopyTo(escape);
                    escape[4] = (byte)"0123456789abcdef"[b >> 4];
                    escape[5] = (byte)"0123456789abcdef"[b & 15];
                    output.Write(escape);
                    break;
            }
            start = i + 1;
        }
        output.Write(text[start..]);
        output.Write("\""u8);
        return null;
    }

    /// <summary>A table whose keys are exactly 1..n is an array; any other non-empty table is an object.</summary>
    private static string? WriteTable(nint L, int idx, ArrayBufferWriter<byte> output, int depth, ref Walk walk)
    {
        long length = (long)lua_rawlen(L, idx);
        long count = 0;
        bool array = length > 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0)
        {
            count++;
            if (array && (lua_type(L, -2) != TNumber || lua_isinteger(L, -2) == 0 || lua_tointegerx(L, -2, null) is < 1 || lua_tointegerx(L, -2, null) > length)) array = false;
            Pop(L, 1);
        }
        if (array && count == length)
        {
            output.Write("["u8);
            for (long i = 1; i <= length; i++)
            {
                if (i > 1) output.Write(","u8);
                lua_rawgeti(L, idx, i);
                var error = Write(L, lua_gettop(L), output, depth + 1, ref walk);
                Pop(L, 1);
                if (error is not null) return error;
            }
            output.Write("]"u8);
            return null;
        }

        output.Write("{"u8);
        bool first = true;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0)
        {
            if (!first) output.Write(","u8);
            first = false;
            int keyType = lua_type(L, -2);
            string? error;
            if (keyType == TString) error = WriteString(StringAt(L, -2), output);
            else if (keyType == TNumber)
            {
                output.Write("\""u8);
                error = WriteNumber(L, -2, output);
                output.Write("\""u8);
            }
            else error = $"object keys must be strings or numbers, not {LuaState.TypeName(keyType)}";
            if (error is null)
            {
                output.Write(":"u8);
                error = Write(L, lua_gettop(L), output, depth + 1, ref walk);
            }
            if (error is not null)
            {
                Pop(L, 2);
                return error;
            }
            Pop(L, 1);
        }
        output.Write("}"u8);
        return null;
    }

    /// <summary>Pushes the value of a JSON text and returns null, or pushes nothing and returns why it is not JSON.</summary>
    public static string? Decode(LuaState state, nint L, ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxBytes) return "JSON text larger than 4 MB";
        int top = lua_gettop(L);
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
        var walk = new Walk(state, MaxBytes);
        try
        {
            if (!reader.Read()) return "empty JSON text";
            if (ReadValue(L, ref reader, 0, ref walk) is { } error)
            {
                lua_settop(L, top);
                if (error == OverBudget) state.BudgetSpent = true;
                return error;
            }
            if (reader.Read())
            {
                lua_settop(L, top);
                return $"unexpected data after the JSON value at byte {reader.TokenStartIndex}";
            }
            return null;
        }
        catch (JsonException e)
        {
            lua_settop(L, top);
            return $"invalid JSON at byte {reader.BytesConsumed}: {FirstSentence(e.Message)}";
        }
        catch (InvalidOperationException)
        {
            // A string escape the reader cannot turn into UTF-8, such as a lone surrogate.
            lua_settop(L, top);
            return $"invalid JSON string near byte {reader.TokenStartIndex}";
        }
    }

    private static string FirstSentence(string message)
    {
        int end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message : message[..end];
    }

    private static string? ReadValue(nint L, ref Utf8JsonReader reader, int depth, ref Walk walk)
    {
        if (lua_checkstack(L, 4) == 0) return "out of stack";
        if (walk.Step() is { } stop) return stop;
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                lua_pushnil(L);
                return null;
            case JsonTokenType.True:
                lua_pushboolean(L, 1);
                return null;
            case JsonTokenType.False:
                lua_pushboolean(L, 0);
                return null;
            case JsonTokenType.Number:
                if (reader.TryGetInt64(out long integer)) lua_pushinteger(L, integer);
                else lua_pushnumber(L, reader.GetDouble());
                return null;
            case JsonTokenType.String:
                PushString(L, ref reader);
                return null;
            case JsonTokenType.StartArray:
                lua_createtable(L, 0, 0);
                for (long i = 1; reader.Read() && reader.TokenType != JsonTokenType.EndArray; i++)
                {
                    if (ReadValue(L, ref reader, depth + 1, ref walk) is { } error) return error;
                    lua_rawseti(L, -2, i);
                }
                return null;
            case JsonTokenType.StartObject:
                lua_createtable(L, 0, 0);
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    PushString(L, ref reader);
                    reader.Read();
                    if (ReadValue(L, ref reader, depth + 1, ref walk) is { } error) return error;
                    lua_rawset(L, -3);
                }
                return null;
            default:
                return $"unexpected {reader.TokenType} at byte {reader.TokenStartIndex}";
        }
    }

    private static void PushString(nint L, ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            PushBytes(L, reader.ValueSpan);
            return;
        }
        int max = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(max, 16));
        int written = reader.CopyString(rented);
        PushBytes(L, rented.AsSpan(0, written));
        ArrayPool<byte>.Shared.Return(rented);
    }
}
