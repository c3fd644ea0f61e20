using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>
/// The native half of the <c>keystone</c> global and of string matching. Each function reads its
/// arguments raw, never raises (errors come back as the marker and a message), and pushes its results.
/// </summary>
internal static unsafe class KeystoneLibrary
{
    /// <summary>Longest log line a script can write; the rest is cut.</summary>
    public const int MaxLogBytes = 4096;

    // ---- keystone.log --------------------------------------------------------------------------

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int Log(nint L) => NativeFrame.Run(L, &LogBody);

    private static int LogBody(LuaState state, nint L)
    {
        var level = StringAt(L, 2) switch
        {
            var l when l.SequenceEqual("debug"u8) => LogLevel.Debug,
            var l when l.SequenceEqual("info"u8) => LogLevel.Information,
            var l when l.SequenceEqual("warn"u8) => LogLevel.Warning,
            var l when l.SequenceEqual("error"u8) => LogLevel.Error,
            _ => LogLevel.None,
        };
        if (level == LogLevel.None) return LuaText.Raise(L, "keystone.log: level must be debug, info, warn or error");
        var logger = ScriptLog.Logger;
        if (!logger.IsEnabled(level)) return 0;
        var text = new StringBuilder();
        int top = lua_gettop(L);
        for (int i = 3; i <= top && text.Length < MaxLogBytes; i++)
        {
            if (i > 3) text.Append(' ');
            text.Append(LuaText.Coerce(L, i) ?? (lua_type(L, i) == TBoolean ? (lua_toboolean(L, i) != 0 ? "true" : "false") : LuaState.TypeName(lua_type(L, i))));
        }
        var message = text.ToString();
        // Cut at 4 KB of UTF-8, on a character boundary.
        while (Encoding.UTF8.GetByteCount(message) > MaxLogBytes)
            message = message[..Math.Min(message.Length - 1, message.Length * MaxLogBytes / Encoding.UTF8.GetByteCount(message))];
        var script = LuaText.Read(L, 1) ?? "?";
        var requestId = state.Call?.RequestId ?? "-";
        logger.Log(level, "script {Script} request {RequestId}: {Message}", script, requestId, message);
        return 0;
    }

    // ---- encodings and hashes ------------------------------------------------------------------

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int Base64Encode(nint L) => NativeFrame.Run(L, &Base64EncodeBody);

    private static int Base64EncodeBody(LuaState state, nint L)
    {
        if (lua_type(L, 1) != TString) return LuaText.Raise(L, "bad argument #1 to 'encode' (string expected)");
        var input = StringAt(L, 1);
        bool url = lua_toboolean(L, 2) != 0;
        int length = url ? Base64Url.GetEncodedLength(input.Length) : Base64.GetMaxEncodedToUtf8Length(input.Length);
        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(length, 4));
        try
        {
            int written;
            if (url) written = Base64Url.EncodeToUtf8(input, rented);
            else Base64.EncodeToUtf8(input, rented, out _, out written);
            PushBytes(L, rented.AsSpan(0, written));
            return 1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int Base64Decode(nint L) => NativeFrame.Run(L, &Base64DecodeBody);

    private static int Base64DecodeBody(LuaState state, nint L)
    {
        if (lua_type(L, 1) != TString) return LuaText.Raise(L, "bad argument #1 to 'decode' (string expected)");
        var input = StringAt(L, 1);
        bool url = lua_toboolean(L, 2) != 0;
        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(input.Length, 4));
        try
        {
            int written;
            // The status forms: the Try/throwing forms throw on malformed input, which must be a plain nil here.
            bool ok = url
                ? Base64Url.DecodeFromUtf8(input, rented, out _, out written) == OperationStatus.Done
                : Base64.DecodeFromUtf8(input, rented, out _, out written) == OperationStatus.Done;
            if (!ok)
            {
                lua_pushnil(L);
                LuaText.Push(L, "invalid base64");
                return 2;
            }
            PushBytes(L, rented.AsSpan(0, written));
            return 1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int Sha256(nint L) => NativeFrame.Run(L, &Sha256Body);

    private static int Sha256Body(LuaState state, nint L)
    {
        if (LuaText.Coerce(L, 1) is null) return LuaText.Raise(L, "bad argument #1 to 'sha256' (string expected)");
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(lua_type(L, 1) == TString ? StringAt(L, 1) : Encoding.UTF8.GetBytes(LuaText.Coerce(L, 1)!), hash);
        return PushHex(L, hash);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int HmacSha256(nint L) => NativeFrame.Run(L, &HmacSha256Body);

    private static int HmacSha256Body(LuaState state, nint L)
    {
        if (lua_type(L, 1) != TString || lua_type(L, 2) != TString) return LuaText.Raise(L, "bad arguments to 'hmac_sha256' (key and message must be strings)");
        Span<byte> hash = stackalloc byte[32];
        HMACSHA256.HashData(StringAt(L, 1), StringAt(L, 2), hash);
        return PushHex(L, hash);
    }

    private static int PushHex(nint L, ReadOnlySpan<byte> bytes)
    {
        Span<byte> hex = stackalloc byte[bytes.Length * 2];
        for (int i = 0; i < bytes.Length; i++)
        {
            hex[2 * i] = (byte)"0123456789abcdef"[bytes[i] >> 4];
            hex[2 * i + 1] = (byte)"0123456789abcdef"[bytes[i] & 15];
        }
        PushBytes(L, hex);
        return 1;
    }

    // ---- JSON, JWT, time, environment ------------------------------------------------------------

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int JsonEncode(nint L) => NativeFrame.Run(L, &JsonEncodeBody);

    private static int JsonEncodeBody(LuaState state, nint L)
    {
        lua_settop(L, 1);
        var json = LuaJson.TryEncode(state, L, 1, out var error);
        if (json is null) return LuaText.Raise(L, state.BudgetSpent ? error! : "keystone.json.encode: " + error);
        PushBytes(L, json);
        return 1;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int JsonDecode(nint L) => NativeFrame.Run(L, &JsonDecodeBody);

    private static int JsonDecodeBody(LuaState state, nint L)
    {
        if (lua_type(L, 1) != TString) return LuaText.Raise(L, "bad argument #1 to 'decode' (string expected)");
        var error = LuaJson.Decode(state, L, StringAt(L, 1));
        if (error is null) return 1;
        if (state.BudgetSpent) return LuaText.Raise(L, "script exceeded its time budget (in keystone.json.decode)");
        lua_pushnil(L);
        LuaText.Push(L, error);
        return 2;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int JwtVerify(nint L) => NativeFrame.Run(L, &JwtVerifyBody);

    private static int JwtVerifyBody(LuaState state, nint L)
    {
        // token, alg, secret, public_key, issuer, audience, leeway
        var algorithm = LuaText.Read(L, 2) ?? "";
        byte[]? secret = lua_type(L, 3) == TString ? StringAt(L, 3).ToArray() : null;
        var options = new JwtOptions(algorithm, secret, LuaText.Read(L, 4), LuaText.Read(L, 5), LuaText.Read(L, 6), lua_tonumberx(L, 7, null));
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        if (JwtVerifier.Verify(StringAt(L, 1), options, now, out var payload, out var error))
        {
            PushBytes(L, payload);
            return 1;
        }
        lua_pushnil(L);
        LuaText.Push(L, error ?? "invalid token");
        return 2;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int Now(nint L)
    {
        lua_pushnumber(L, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
        return 1;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int Env(nint L) => NativeFrame.Run(L, &EnvBody);

    private static int EnvBody(LuaState state, nint L)
    {
        if (LuaText.Read(L, 1) is { } name && state.Scripts.Settings.Environment.TryGetValue(name, out var value) && value is not null)
            LuaText.Push(L, value);
        else
            lua_pushnil(L);
        return 1;
    }

    // ---- keystone.shared -----------------------------------------------------------------------

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int SharedGet(nint L) => NativeFrame.Run(L, &SharedGetBody);

    private static int SharedGetBody(LuaState state, nint L)
    {
        if (lua_type(L, 1) != TString) return LuaText.Raise(L, "keystone.shared: keys are strings");
        if (!state.Scripts.Shared.TryGet(StringAt(L, 1), out var value)) lua_pushnil(L);
        else PushShared(L, value);
        return 1;
    }

    private static void PushShared(nint L, SharedValue value)
    {
        switch (value.Kind)
        {
            case SharedValueKind.String: PushBytes(L, value.Bytes); break;
            case SharedValueKind.Number: PushNumber(L, value.Number); break;
            default: lua_pushboolean(L, value.Boolean ? 1 : 0); break;
        }
    }

    /// <summary>Whole numbers come back as Lua integers, so a counter reads 3 and not 3.0.</summary>
    private static void PushNumber(nint L, double number)
    {
        if (number == Math.Floor(number) && Math.Abs(number) < 9.007199254740992E15) lua_pushinteger(L, (long)number);
        else lua_pushnumber(L, number);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int SharedSet(nint L) => NativeFrame.Run(L, &SharedSetBody);

    private static int SharedSetBody(LuaState state, nint L)
    {
        if (lua_type(L, 1) != TString) return LuaText.Raise(L, "keystone.shared: keys are strings");
        var ttl = lua_type(L, 3) == TNumber ? lua_tonumberx(L, 3, null) : 0;
        var key = StringAt(L, 1);
        SharedValue value;
        switch (lua_type(L, 2))
        {
            case TNil or TNone:
                state.Scripts.Shared.Delete(key);
                lua_pushboolean(L, 1);
                return 1;
            case TString: value = SharedValue.FromString(StringAt(L, 2).ToArray()); break;
            case TNumber: value = SharedValue.FromNumber(lua_tonumberx(L, 2, null)); break;
            case TBoolean: value = SharedValue.FromBoolean(lua_toboolean(L, 2) != 0); break;
            default: return LuaText.Raise(L, "keystone.shared: values are strings, numbers or booleans");
        }
        if (state.Scripts.Shared.Set(key, value, ttl) == SharedSetResult.TooLarge)
        {
            lua_pushnil(L);
            LuaText.Push(L, "too large");
            return 2;
        }
        lua_pushboolean(L, 1);
        return 1;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int SharedIncrement(nint L) => NativeFrame.Run(L, &SharedIncrementBody);

    private static int SharedIncrementBody(LuaState state, nint L)
    {
        if (lua_type(L, 1) != TString) return LuaText.Raise(L, "keystone.shared: keys are strings");
        double delta = lua_type(L, 2) == TNumber ? lua_tonumberx(L, 2, null) : lua_type(L, 2) is TNil or TNone ? 1 : double.NaN;
        if (double.IsNaN(delta)) return LuaText.Raise(L, "keystone.shared.incr: delta must be a number");
        var ttl = lua_type(L, 3) == TNumber ? lua_tonumberx(L, 3, null) : 0;
        if (!state.Scripts.Shared.TryIncrement(StringAt(L, 1), delta, ttl, out var result, out var error))
        {
            lua_pushnil(L);
            LuaText.Push(L, error ?? "failed");
            return 2;
        }
        PushNumber(L, result);
        return 1;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int SharedDelete(nint L) => NativeFrame.Run(L, &SharedDeleteBody);

    private static int SharedDeleteBody(LuaState state, nint L)
    {
        if (lua_type(L, 1) != TString) return LuaText.Raise(L, "keystone.shared: keys are strings");
        lua_pushboolean(L, state.Scripts.Shared.Delete(StringAt(L, 1)) ? 1 : 0);
        return 1;
    }

    /// <summary>Builds the table of native functions handed to sandbox.lua.</summary>
    public static void PushNativeTable(nint L)
    {
        lua_createtable(L, 0, 24);
        lua_pushlightuserdata(L, LuaState.ErrorMarker);
        SetField(L, "ERR"u8);
        Add(L, "find"u8, &StringFunctions.Find);
        Add(L, "rep"u8, &StringFunctions.Rep);
        Add(L, "log"u8, &Log);
        Add(L, "base64_encode"u8, &Base64Encode);
        Add(L, "base64_decode"u8, &Base64Decode);
        Add(L, "sha256"u8, &Sha256);
        Add(L, "hmac_sha256"u8, &HmacSha256);
        Add(L, "json_encode"u8, &JsonEncode);
        Add(L, "json_decode"u8, &JsonDecode);
        Add(L, "jwt_verify"u8, &JwtVerify);
        Add(L, "now"u8, &Now);
        Add(L, "env"u8, &Env);
        Add(L, "shared_get"u8, &SharedGet);
        Add(L, "shared_set"u8, &SharedSet);
        Add(L, "shared_incr"u8, &SharedIncrement);
        Add(L, "shared_delete"u8, &SharedDelete);
        Add(L, "object_index"u8, &RequestBinding.ObjectIndex);
        Add(L, "object_newindex"u8, &RequestBinding.ObjectNewIndex);
        Add(L, "headers_table"u8, &RequestBinding.HeadersTable);
    }

    private static void Add(nint L, ReadOnlySpan<byte> name, delegate* unmanaged[Cdecl]<nint, int> function)
    {
        lua_pushcclosure(L, function, 0);
        SetField(L, name);
    }

    /// <summary>table[name] = top of stack, for the table just below it.</summary>
    private static void SetField(nint L, ReadOnlySpan<byte> name)
    {
        PushBytes(L, name);
        lua_rotate(L, -2, 1);
        lua_rawset(L, -3);
    }
}

/// <summary>Where script log lines and script failures go; set once by the host.</summary>
internal static class ScriptLog
{
    public static ILogger Logger { get; set; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
}
