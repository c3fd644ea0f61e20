using Keystone.Configuration;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>
/// Reads the response table a hook or handler returned — <c>{status, headers, body}</c> — with raw access
/// only, and applies it to the HttpContext. Anything malformed fails the hook instead of reaching the wire.
/// </summary>
internal static class ReplyReader
{
    public static string? Apply(ScriptCall call, nint L, int idx)
    {
        var response = call.Context.Response;
        if (lua_type(L, idx) == TString)
        {
            response.StatusCode = 200;
            response.ContentType = "text/plain; charset=utf-8";
            call.ResponseBody = StringAt(L, idx).ToArray();
            call.ResponseBodyAvailable = true;
            return null;
        }
        if (lua_type(L, idx) != TTable) return $"a response must be a table, not a {LuaState.TypeName(lua_type(L, idx))}";

        PushBytes(L, "status"u8);
        int type = lua_rawget(L, idx);
        int status = 200;
        if (type != TNil)
        {
            int isInteger;
            long value;
            unsafe { value = lua_tointegerx(L, -1, &isInteger); }
            if (type != TNumber || isInteger == 0 || value is < 200 or > 599)
                return "response status must be an integer from 200 to 599";
            status = (int)value;
        }
        Pop(L, 1);

        PushBytes(L, "body"u8);
        type = lua_rawget(L, idx);
        ReadOnlyMemory<byte> body = ReadOnlyMemory<byte>.Empty;
        if (type == TString) body = StringAt(L, -1).ToArray();
        else if (type != TNil) return $"response body must be a string, not a {LuaState.TypeName(type)}";
        Pop(L, 1);

        response.StatusCode = status;
        PushBytes(L, "headers"u8);
        type = lua_rawget(L, idx);
        if (type == TTable && ApplyHeaders(response.Headers, L, lua_gettop(L)) is { } problem) return problem;
        if (type is not (TTable or TNil)) return $"response headers must be a table, not a {LuaState.TypeName(type)}";
        Pop(L, 1);

        if (body.Length > 0 && !response.Headers.ContainsKey("Content-Type")) response.ContentType = "text/plain; charset=utf-8";
        call.ResponseBody = body;
        call.ResponseBodyAvailable = true;
        return null;
    }

    /// <summary>More headers than any real response needs; the cap keeps applying a table short.</summary>
    public const int MaxHeaders = 100;

    private static string? ApplyHeaders(IHeaderDictionary headers, nint L, int table)
    {
        int count = 0;
        lua_pushnil(L);
        while (lua_next(L, table) != 0)
        {
            if (++count > MaxHeaders) return $"a response may set at most {MaxHeaders} headers";
            if (lua_type(L, -2) != TString || RequestBinding.HeaderName(StringAt(L, -2)) is not { } name || !Names.IsToken(name))
                return "response header names must be tokens";
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                return $"{name} is set by Keystone from the body, not by scripts";
            var value = RequestBinding.ReadHeaderValue(L, lua_gettop(L), out var problem);
            if (problem is not null) return problem;
            if (value.Count > 0) headers[name] = value;
            Pop(L, 1);
        }
        return null;
    }

    /// <summary>Writes the status, headers and body a script produced.</summary>
    public static Task WriteAsync(ScriptCall call)
    {
        var response = call.Context.Response;
        response.Headers[Observability.RequestId.Header] = call.RequestId;
        var body = call.ResponseBody ?? ReadOnlyMemory<byte>.Empty;
        if (response.StatusCode is < 200 or 204 or 304)
        {
            response.Headers.ContentLength = null;
            return Task.CompletedTask;
        }
        response.ContentLength = body.Length;
        if (body.Length == 0 || HttpMethods.IsHead(call.Context.Request.Method)) return Task.CompletedTask;
        return response.Body.WriteAsync(body).AsTask();
    }

    public static string Describe(string script, FailureReason reason, string? message) => reason switch
    {
        FailureReason.Budget => $"script '{script}' exceeded its time budget",
        FailureReason.Memory => $"script '{script}' ran out of memory",
        _ => $"script '{script}' failed: {FirstLine(message)}",
    };

    private static string FirstLine(string? message)
    {
        // error(nil) reaches the traceback handler without a message: only the traceback comes back.
        if (string.IsNullOrEmpty(message) || message.StartsWith("stack traceback:", StringComparison.Ordinal)) return "error object is nil";
        int end = message.IndexOf('\n');
        var line = end < 0 ? message : message[..end];
        return line.Length <= 200 ? line : line[..200] + "...";
    }
}
