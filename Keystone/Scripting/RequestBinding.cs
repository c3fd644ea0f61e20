using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Keystone.Configuration;
using Microsoft.Extensions.Primitives;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>
/// The fields of <c>req</c>, <c>res</c> and their header tables, read from and written to the request's
/// HttpContext when a script touches them: nothing crosses into Lua unless it is read. Every value a
/// script writes is checked here before it can reach the wire.
/// </summary>
internal static unsafe class RequestBinding
{
    private const int MaxParams = 16;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int ObjectIndex(nint L) => NativeFrame.Run(L, &ObjectIndexBody);

    private static int ObjectIndexBody(LuaState state, nint L)
    {
        if (!state.TryObjectAt(L, 1, out var kind)) return OutsideItsCall(L, kind);
        if (kind is ObjectKind.RequestHeaders or ObjectKind.ResponseHeaders) return HeaderField(state, L, kind);
        var key = StringAt(L, 2);
        return kind == ObjectKind.Request ? RequestField(state, state.Call!, L, key) : ResponseField(state, state.Call!, L, key);
    }

    private static int OutsideItsCall(nint L, ObjectKind kind) => LuaText.Raise(L, kind is ObjectKind.Request or ObjectKind.Response
        ? "req/res used outside the hook call it was given to"
        : "headers used outside the hook call they were given to");

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int ObjectNewIndex(nint L) => NativeFrame.Run(L, &ObjectNewIndexBody);

    private static int ObjectNewIndexBody(LuaState state, nint L)
    {
        if (!state.TryObjectAt(L, 1, out var kind)) return OutsideItsCall(L, kind);
        if (kind is ObjectKind.RequestHeaders or ObjectKind.ResponseHeaders) return SetHeader(state, L, kind);
        var key = Encoding.UTF8.GetString(StringAt(L, 2));
        var error = kind == ObjectKind.Request ? SetRequestField(state.Call!, L, key) : SetResponseField(state.Call!, L, key);
        if (error is not null) return LuaText.Raise(L, error);
        lua_settop(L, 0);
        return 0;
    }

    private static int RequestField(LuaState state, ScriptCall call, nint L, ReadOnlySpan<byte> key)
    {
        var request = call.Context.Request;
        if (key.SequenceEqual("headers"u8)) state.PushObject(ObjectKind.RequestHeaders);
        else if (key.SequenceEqual("method"u8)) LuaText.Push(L, request.Method);
        else if (key.SequenceEqual("path"u8)) LuaText.Push(L, call.EffectivePath);
        else if (key.SequenceEqual("ctx"u8)) state.PushContext(L);
        else if (key.SequenceEqual("host"u8)) LuaText.Push(L, request.Host.Host);
        else if (key.SequenceEqual("id"u8)) LuaText.Push(L, call.RequestId);
        else if (key.SequenceEqual("route"u8)) LuaText.Push(L, call.Route.Name);
        else if (key.SequenceEqual("client_ip"u8)) LuaText.Push(L, ClientIp(call));
        else if (key.SequenceEqual("scheme"u8)) LuaText.Push(L, request.Scheme);
        else if (key.SequenceEqual("query_string"u8)) LuaText.Push(L, call.EffectiveQuery);
        else if (key.SequenceEqual("query"u8)) PushQuery(L, call);
        else if (key.SequenceEqual("params"u8)) PushParams(L, call);
        else if (key.SequenceEqual("upstream"u8))
        {
            if (call.EffectiveUpstream is { } upstream) LuaText.Push(L, upstream.Name);
            else lua_pushnil(L);
        }
        else if (key.SequenceEqual("body"u8))
        {
            if (call.Body is not { } body) return LuaText.Raise(L, "the request body is larger than lua.max_body");
            PushBytes(L, body.Span);
        }
        else lua_pushnil(L);
        return 1;
    }

    private static int ResponseField(LuaState state, ScriptCall call, nint L, ReadOnlySpan<byte> key)
    {
        if (key.SequenceEqual("status"u8)) lua_pushinteger(L, call.Context.Response.StatusCode);
        else if (key.SequenceEqual("headers"u8)) state.PushObject(ObjectKind.ResponseHeaders);
        else if (key.SequenceEqual("body"u8) && call.ResponseBodyAvailable && call.ResponseBody is { } body) PushBytes(L, body.Span);
        else lua_pushnil(L);
        return 1;
    }

    private static string? SetRequestField(ScriptCall call, nint L, string key)
    {
        switch (key)
        {
            case "path":
                if (LuaText.Read(L, 3) is not { } path) return "req.path must be a string";
                if (PathProblem(path) is { } problem) return problem;
                call.Path = path;
                return null;
            case "query_string":
                if (LuaText.Coerce(L, 3) is not { } query) return "req.query_string must be a string";
                if (query.StartsWith('?')) query = query[1..];
                if (!IsVisibleAscii(query) || query.Contains('#')) return "req.query_string may only hold visible ASCII characters without '#'";
                call.QueryString = query;
                return null;
            case "body":
                var type = lua_type(L, 3);
                if (type is not (TString or TNil)) return "req.body must be a string";
                call.Body = type == TNil ? ReadOnlyMemory<byte>.Empty : StringAt(L, 3).ToArray();
                call.BodyChanged = true;
                return null;
            case "upstream":
                if (LuaText.Read(L, 3) is not { } name) return "req.upstream must be the name of an upstream";
                if (!call.Upstreams.TryGetValue(name, out var upstream)) return $"req.upstream: no upstream named '{Truncate(name)}' is configured";
                call.Upstream = upstream;
                return null;
            case "method" or "query" or "host" or "scheme" or "client_ip" or "id" or "route" or "params" or "headers" or "ctx":
                return $"req.{key} is read-only";
            default:
                return $"req has no field '{Truncate(key)}' (use req.ctx for your own values)";
        }
    }

    private static string? SetResponseField(ScriptCall call, nint L, string key)
    {
        switch (key)
        {
            case "status":
                int isInteger;
                long status = lua_tointegerx(L, 3, &isInteger);
                if (lua_type(L, 3) != TNumber || isInteger == 0 || status is < 100 or > 599) return "res.status must be an integer from 100 to 599";
                if (call.Context.Response.HasStarted) return "res.status can no longer change: the response has started";
                call.Context.Response.StatusCode = (int)status;
                return null;
            case "body":
                if (!call.ResponseBodyAvailable) return "res.body needs buffer_response: true on the route";
                var type = lua_type(L, 3);
                if (type is not (TString or TNil)) return "res.body must be a string";
                call.ResponseBody = type == TNil ? ReadOnlyMemory<byte>.Empty : StringAt(L, 3).ToArray();
                return null;
            case "headers":
                return "res.headers is read-only; assign its fields";
            default:
                return $"res has no field '{Truncate(key)}'";
        }
    }

    /// <summary>A path a script may send upstream: absolute, visible ASCII, no query, no dot segments.</summary>
    public static string? PathProblem(string path)
    {
        if (!path.StartsWith('/')) return "req.path must start with '/'";
        if (!IsVisibleAscii(path) || path.Contains('?') || path.Contains('#'))
            return "req.path may only hold visible ASCII characters without '?' or '#' (set req.query_string for the query)";
        if (path.Contains("%2e", StringComparison.OrdinalIgnoreCase) || path.Contains("/../", StringComparison.Ordinal)
            || path.EndsWith("/..", StringComparison.Ordinal) || path.Contains("/./", StringComparison.Ordinal) || path.EndsWith("/.", StringComparison.Ordinal))
            return "req.path may not contain dot segments";
        return null;
    }

    private static bool IsVisibleAscii(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
            if (c is < '!' or > '~') return false;
        return true;
    }

    /// <summary>IPv4 clients of a dual-stack socket read as plain IPv4, as in the access log and hashing.</summary>
    private static string ClientIp(ScriptCall call)
    {
        var address = call.Context.Connection.RemoteIpAddress;
        if (address is null) return "";
        return (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
    }

    private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "...";

    private static void PushQuery(nint L, ScriptCall call)
    {
        var query = call.QueryString is null ? call.Context.Request.Query
            : new QueryCollection(Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(call.QueryString));
        lua_createtable(L, 0, query.Count);
        foreach (var (name, values) in query)
        {
            LuaText.Push(L, name);
            PushValues(L, values);
            lua_rawset(L, -3);
        }
    }

    /// <summary>One value as a string, several as an array: the shape Kong gives query arguments.</summary>
    private static void PushValues(nint L, StringValues values)
    {
        if (values.Count == 1)
        {
            LuaText.Push(L, values[0]);
            return;
        }
        lua_createtable(L, values.Count, 0);
        for (int i = 0; i < values.Count; i++)
        {
            LuaText.Push(L, values[i]);
            lua_rawseti(L, -2, i + 1);
        }
    }

    private static void PushParams(nint L, ScriptCall call)
    {
        var request = call.Context.Request;
        var path = request.Path.Value ?? "/";
        Span<Range> values = stackalloc Range[MaxParams];
        var match = call.Routes.Match(request.Host.Value, path, Routing.Methods.Parse(request.Method), values);
        lua_createtable(L, 0, match.ParamCount);
        for (int i = 0; i < match.ParamCount; i++)
        {
            LuaText.Push(L, match.ParamNames[i]);
            LuaText.Push(L, path.AsSpan()[values[i]]);
            lua_rawset(L, -3);
        }
    }

    // ---- header tables -------------------------------------------------------------------------

    private static IHeaderDictionary HeadersOf(ScriptCall call, ObjectKind kind) =>
        kind == ObjectKind.RequestHeaders ? call.Context.Request.Headers : call.Context.Response.Headers;

    private static int HeaderField(LuaState state, nint L, ObjectKind kind)
    {
        if (lua_type(L, 2) != TString || HeaderName(StringAt(L, 2)) is not { } name)
        {
            lua_pushnil(L);
            return 1;
        }
        if (HeadersOf(state.Call!, kind).TryGetValue(name, out var values) && values.Count > 0)
        {
            if (values.Count == 1) LuaText.Push(L, values[0]);
            else LuaText.Push(L, string.Join(", ", values.ToArray()));
        }
        else lua_pushnil(L);
        return 1;
    }

    private static int SetHeader(LuaState state, nint L, ObjectKind kind)
    {
        var call = state.Call!;
        if (lua_type(L, 2) != TString || HeaderName(StringAt(L, 2)) is not { } name || !Names.IsToken(name))
            return LuaText.Raise(L, "a header name must be a token (letters, digits and !#$%&'*+-.^_`|~)");
        if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            return LuaText.Raise(L, $"{name} is set by Keystone from the body, not by scripts");
        if (kind == ObjectKind.ResponseHeaders && call.Context.Response.HasStarted)
            return LuaText.Raise(L, "response headers can no longer change: the response has started");
        var value = ReadHeaderValue(L, 3, out var problem);
        if (problem is not null) return LuaText.Raise(L, problem);
        var headers = HeadersOf(call, kind);
        if (value.Count == 0) headers.Remove(name);
        else headers[name] = value;
        lua_settop(L, 0);
        return 0;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static int HeadersTable(nint L) => NativeFrame.Run(L, &HeadersTableBody);

    private static int HeadersTableBody(LuaState state, nint L)
    {
        if (!state.TryObjectAt(L, 1, out var kind)) return OutsideItsCall(L, kind);
        if (kind is ObjectKind.Request or ObjectKind.Response) return LuaText.Raise(L, "req and res cannot be iterated; their headers can");
        var headers = HeadersOf(state.Call!, kind);
        lua_createtable(L, 0, headers.Count);
        foreach (var (name, values) in headers)
        {
            LuaText.Push(L, name.ToLowerInvariant());
            LuaText.Push(L, values.Count == 1 ? values[0] : string.Join(", ", values.ToArray()));
            lua_rawset(L, -3);
        }
        return 1;
    }

    /// <summary>
    /// A header value from Lua: a string or number, an array of them for several values, or nil to remove.
    /// CR, LF and NUL would split or end the header on the wire, so they fail the hook.
    /// </summary>
    public static StringValues ReadHeaderValue(nint L, int idx, out string? problem)
    {
        problem = null;
        switch (lua_type(L, idx))
        {
            case TNil:
                return StringValues.Empty;
            case TString or TNumber:
                var text = LuaText.Coerce(L, idx)!;
                if (!Names.IsSafeHeaderValue(text)) problem = "a header value may not contain CR, LF or NUL";
                return text;
            case TTable:
                int count = (int)Math.Min(lua_rawlen(L, idx), 64);
                var values = new string[count];
                for (int i = 0; i < count; i++)
                {
                    lua_rawgeti(L, idx, i + 1);
                    var item = LuaText.Coerce(L, -1);
                    Pop(L, 1);
                    if (item is null || !Names.IsSafeHeaderValue(item))
                    {
                        problem = "a header value list may only hold strings without CR, LF or NUL";
                        return default;
                    }
                    values[i] = item;
                }
                return values;
            default:
                problem = $"a header value must be a string, a number, a list of them, or nil (got {LuaState.TypeName(lua_type(L, idx))})";
                return default;
        }
    }

    // Header names a script reads are usually a handful of constants; turning their bytes into strings once keeps reads allocation-free.
    private static readonly ConcurrentDictionary<string, string> NameCache = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> NameLookup = NameCache.GetAlternateLookup<ReadOnlySpan<char>>();

    public static string? HeaderName(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty || bytes.Length > 256) return null;
        Span<char> chars = stackalloc char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] >= 0x80) return null;
            chars[i] = (char)bytes[i];
        }
        if (NameLookup.TryGetValue(chars, out var name)) return name;
        name = new string(chars);
        if (NameCache.Count < 1024) NameCache.TryAdd(name, name);
        return name;
    }
}
