using System.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using static Keystone.Scripting.LuaNative;

namespace Keystone.Scripting;

/// <summary>What the request phase decided.</summary>
internal enum ScriptVerdict { Continue, Answered, Failed }

/// <summary>
/// The Lua stage of the pipeline: runs a route's hooks and handler on a rented state, records their
/// time and failures, and turns failures into the 500 the client gets. Hooks of one phase share a state,
/// so they share <c>req.ctx</c> directly; a later phase gets it back from JSON.
/// </summary>
internal static class ScriptStage
{
    /// <summary>Buffers the request body for <c>req.body</c>; false when a chunked body is over the limit (413).</summary>
    public static async ValueTask<bool> ReadBodyAsync(ScriptCall call, long maxBody)
    {
        var request = call.Context.Request;
        long? length = request.ContentLength;
        bool chunked = request.Headers.ContainsKey("Transfer-Encoding");
        if (!chunked && length is null or 0) return true;
        if (length > maxBody)
        {
            // Too big for scripts: it streams to the upstream untouched, and req.body says why it is missing.
            call.Body = null;
            return true;
        }
        var buffer = new MemoryStream(length is { } l ? (int)l : 16 * 1024);
        var chunk = new byte[16 * 1024];
        while (true)
        {
            int read = await request.Body.ReadAsync(chunk, call.Context.RequestAborted);
            if (read == 0) break;
            if (buffer.Length + read > maxBody) return false;
            buffer.Write(chunk, 0, read);
        }
        call.Body = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        return true;
    }

    /// <summary>Hands the buffered (or rewritten) body to the forwarder, framed by Content-Length.</summary>
    public static void PrepareUpstreamBody(ScriptCall call)
    {
        var request = call.Context.Request;
        if (call.Body is not { } body) return;
        bool hadBody = request.ContentLength > 0 || request.Headers.ContainsKey("Transfer-Encoding");
        if (!hadBody && !call.BodyChanged) return;
        request.Headers.Remove("Transfer-Encoding");
        request.ContentLength = body.Length;
        request.Body = new MemoryStream(body.ToArray(), writable: false);
        call.Context.Features.Set<IHttpRequestBodyDetectionFeature>(BufferedBody.Instance);
    }

    /// <summary>on_request hooks, then the handler and its on_response hooks when the route has one.</summary>
    public static ScriptVerdict RunRequest(ScriptCall call, RouteScripts scripts, out string? failure)
    {
        failure = null;
        var state = scripts.Pool.Rent();
        try
        {
            state.BeginPhase(call);
            var L = state.Handle;
            foreach (var hook in scripts.OnRequest)
            {
                var outcome = Invoke(state, call, hook.Script, ScriptFunction.OnRequest, -1);
                if (outcome.Failure != FailureReason.None)
                {
                    if (hook.ContinueOnError)
                    {
                        state = Replace(state, call, scripts);
                        L = state.Handle;
                        continue;
                    }
                    failure = ReplyReader.Describe(state.Scripts.Scripts[hook.Script].Name, outcome.Failure, outcome.Message);
                    return ScriptVerdict.Failed;
                }
                int type = lua_type(L, LuaState.ResultIndex);
                if (type == TNil) continue;
                if (ReplyReader.Apply(call, L, LuaState.ResultIndex) is not { } problem) return ScriptVerdict.Answered;
                var rejected = Rejected(state, call, hook.Script, ScriptFunction.OnRequest, problem);
                if (hook.ContinueOnError)
                {
                    call.Context.Response.Clear();
                    continue;
                }
                failure = rejected;
                return ScriptVerdict.Failed;
            }
            if (!scripts.IsHandler) return ScriptVerdict.Continue;

            int owner = scripts.HandlerOwner;
            var handled = Invoke(state, call, owner, ScriptFunction.Handle, scripts.HandlerRoute);
            if (handled.Failure != FailureReason.None)
            {
                failure = ReplyReader.Describe(state.Scripts.Scripts[owner].Name, handled.Failure, handled.Message);
                return ScriptVerdict.Failed;
            }
            if (ReplyReader.Apply(call, L, LuaState.ResultIndex) is { } invalid)
            {
                failure = Rejected(state, call, owner, ScriptFunction.Handle, invalid);
                return ScriptVerdict.Failed;
            }
            return RunResponseHooks(state, call, scripts, out failure) ? ScriptVerdict.Answered : ScriptVerdict.Failed;
        }
        catch (Exception e)
        {
            state.MarkDiscard();
            ScriptLog.Logger.LogError(e, "Lua stage failed on request {RequestId}", call.RequestId);
            failure = "script stage failed";
            return ScriptVerdict.Failed;
        }
        finally
        {
            state.EndPhase(keepContext: scripts.HasResponsePhase);
            scripts.Pool.Return(state);
        }
    }

    /// <summary>
    /// The response phase of a proxied route, from the forwarder's response transform: buffers the body when
    /// the route asks for it, runs on_response hooks, and writes the body itself when it was buffered.
    /// Returns whether the forwarder should still copy the upstream body.
    /// </summary>
    public static async ValueTask<bool> RunResponseAsync(ScriptCall call, RouteScripts scripts, HttpResponseMessage? upstream, CancellationToken cancel)
    {
        Stream? rest = null;
        ReadOnlyMemory<byte> prefix = default;
        if (scripts.BufferResponse && upstream?.Content is { } content)
        {
            var stream = await content.ReadAsStreamAsync(cancel);
            var (bytes, complete) = await ReadUpToAsync(stream, scripts.Pool.Scripts.Settings.MaxBody, cancel);
            if (complete)
            {
                call.ResponseBody = bytes;
                call.ResponseBodyAvailable = true;
            }
            else
            {
                prefix = bytes;
                rest = stream;
            }
        }
        else if (scripts.BufferResponse)
        {
            call.ResponseBody = ReadOnlyMemory<byte>.Empty;
            call.ResponseBodyAvailable = true;
        }

        if (!RunResponsePhase(call, scripts, out var failure))
        {
            call.Context.Response.Clear();
            await ErrorResponse.WriteAsync(call.Context, 500, failure!, call.RequestId);
            return false;
        }
        if (!scripts.BufferResponse) return true;
        if (rest is null)
        {
            await ReplyReader.WriteAsync(call);
            return false;
        }
        // Larger than lua.max_body: scripts saw no body, and it streams through unchanged.
        await call.Context.Response.Body.WriteAsync(prefix, cancel);
        await rest.CopyToAsync(call.Context.Response.Body, cancel);
        return false;
    }

    private static bool RunResponsePhase(ScriptCall call, RouteScripts scripts, out string? failure)
    {
        failure = null;
        if (scripts.OnResponse.Length == 0) return true;
        var state = scripts.Pool.Rent();
        try
        {
            state.BeginPhase(call);
            return RunResponseHooks(state, call, scripts, out failure);
        }
        catch (Exception e)
        {
            state.MarkDiscard();
            ScriptLog.Logger.LogError(e, "Lua stage failed on request {RequestId}", call.RequestId);
            failure = "script stage failed";
            return false;
        }
        finally
        {
            state.EndPhase(keepContext: false);
            scripts.Pool.Return(state);
        }
    }

    private static bool RunResponseHooks(LuaState state, ScriptCall call, RouteScripts scripts, out string? failure)
    {
        failure = null;
        foreach (var hook in scripts.OnResponse)
        {
            var outcome = Invoke(state, call, hook.Script, ScriptFunction.OnResponse, -1);
            if (outcome.Failure == FailureReason.None) continue;
            if (hook.ContinueOnError)
            {
                // Only the state that failed is left behind; the hooks after it run in a sound one.
                if (state.Discard) return RunResponseHooksAfter(call, scripts, hook, out failure);
                continue;
            }
            failure = ReplyReader.Describe(state.Scripts.Scripts[hook.Script].Name, outcome.Failure, outcome.Message);
            return false;
        }
        return true;
    }

    /// <summary>
    /// After a skipped failure (<c>on_error: continue</c>) the phase goes on in a fresh state when the failed
    /// one cannot be trusted; req.ctx moves over as JSON, as it does between phases.
    /// </summary>
    private static LuaState Replace(LuaState state, ScriptCall call, RouteScripts scripts)
    {
        if (!state.Discard) return state;
        state.EndPhase(keepContext: true);
        scripts.Pool.Return(state);
        var fresh = scripts.Pool.Rent();
        fresh.BeginPhase(call);
        return fresh;
    }

    private static bool RunResponseHooksAfter(ScriptCall call, RouteScripts scripts, HookRef failed, out string? failure)
    {
        int next = Array.IndexOf(scripts.OnResponse, failed) + 1;
        var rest = new RouteScripts(scripts.Pool) { OnResponse = scripts.OnResponse[next..] };
        return RunResponsePhase(call, rest, out failure);
    }

    /// <summary>One call, timed and counted; failures are logged with the script's own message and traceback.</summary>
    private static ScriptOutcome Invoke(LuaState state, ScriptCall call, int script, ScriptFunction function, int route)
    {
        var set = state.Scripts;
        long started = Stopwatch.GetTimestamp();
        var outcome = route >= 0 ? state.InvokeRoute(route) : state.Invoke(script, function, function == ScriptFunction.OnResponse);
        long elapsed = Stopwatch.GetTimestamp() - started;
        call.LuaTicks += elapsed;
        set.Durations[script * 3 + (int)function].Observe((double)elapsed / Stopwatch.Frequency);
        if (outcome.Failure != FailureReason.None)
        {
            if (outcome.Failure == FailureReason.Budget) set.MarkOverran();
            set.Failures[script * 3 + (int)outcome.Failure - 1].Inc();
            ScriptLog.Logger.LogWarning("script {Script} {Phase} failed ({Reason}) on request {RequestId}: {Message}",
                set.Scripts[script].DisplayPath, PhaseName(function), ReasonName(outcome.Failure), call.RequestId, outcome.Message);
        }
        return outcome;
    }

    /// <summary>A script returned something that cannot be a response: counted and logged as a script error.</summary>
    private static string Rejected(LuaState state, ScriptCall call, int script, ScriptFunction function, string problem)
    {
        var set = state.Scripts;
        set.Failures[script * 3].Inc();
        ScriptLog.Logger.LogWarning("script {Script} {Phase} returned an invalid response on request {RequestId}: {Problem}",
            set.Scripts[script].DisplayPath, PhaseName(function), call.RequestId, problem);
        return $"script '{set.Scripts[script].Name}' returned an invalid response: {problem}";
    }

    public static string PhaseName(ScriptFunction function) => function switch
    {
        ScriptFunction.OnRequest => "on_request",
        ScriptFunction.OnResponse => "on_response",
        _ => "handle",
    };

    public static string ReasonName(FailureReason reason) => reason switch
    {
        FailureReason.Budget => "budget",
        FailureReason.Memory => "memory",
        _ => "error",
    };

    private static async ValueTask<(ReadOnlyMemory<byte> Bytes, bool Complete)> ReadUpToAsync(Stream stream, long max, CancellationToken cancel)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        while (true)
        {
            int read = await stream.ReadAsync(chunk, cancel);
            if (read == 0) return (buffer.GetBuffer().AsMemory(0, (int)buffer.Length), true);
            buffer.Write(chunk, 0, read);
            if (buffer.Length > max) return (buffer.GetBuffer().AsMemory(0, (int)buffer.Length), false);
        }
    }

    /// <summary>Tells the forwarder a body follows even when the client's request had none (a script set req.body).</summary>
    private sealed class BufferedBody : IHttpRequestBodyDetectionFeature
    {
        public static readonly BufferedBody Instance = new();
        public bool CanHaveBody => true;
    }
}
