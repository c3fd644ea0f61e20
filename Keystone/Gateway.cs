using System.Diagnostics;
using System.Net.Sockets;
using Keystone.Admin;
using Keystone.Observability;
using Keystone.Proxy;
using Keystone.Routing;
using Keystone.Scripting;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Keystone;

/// <summary>
/// The request pipeline: one terminal RequestDelegate over the current <see cref="Snapshot"/>.
/// Read top to bottom, it is the order every request goes through.
/// </summary>
public sealed class Gateway
{
    private const int MaxRouteParams = 16;
    private Snapshot _snapshot;
    private readonly IHttpForwarder _forwarder;
    private readonly HttpMessageInvoker _invoker;
    private readonly RequestObserver? _observer;

    public Gateway(Snapshot snapshot, IHttpForwarder forwarder, HttpMessageInvoker invoker, RequestObserver? observer = null)
    {
        _snapshot = snapshot;
        _forwarder = forwarder;
        _invoker = invoker;
        _observer = observer;
    }

    /// <summary>The snapshot new requests start on; requests in flight keep the one they read.</summary>
    public Snapshot Current => Volatile.Read(ref _snapshot);

    public void Swap(Snapshot next) => Volatile.Write(ref _snapshot, next);

    public Task InvokeAsync(HttpContext context)
    {
        var exchange = new Exchange(RequestId.Resolve(context));
        var handled = HandleAsync(context, Current, exchange);
        if (_observer is null) return handled;
        if (handled.IsCompletedSuccessfully)
        {
            _observer.Record(context, exchange);
            return Task.CompletedTask;
        }
        return RecordWhenDoneAsync(handled, context, exchange);
    }

    private async Task RecordWhenDoneAsync(Task handled, HttpContext context, Exchange exchange)
    {
        try
        {
            await handled;
        }
        finally
        {
            _observer!.Record(context, exchange);
        }
    }

    private Task HandleAsync(HttpContext context, Snapshot snapshot, Exchange exchange)
    {
        var requestId = exchange.RequestId;
        var request = context.Request;
        if (RequestSanity.Check(request) is { } problem)
            return RequestSanity.RefuseAsync(context, problem, requestId);
        if (snapshot.Config.Admin.MetricsOnTraffic && AdminEndpoints.IsMetricsRequest(request))
            return AdminEndpoints.WriteMetricsAsync(context);

        var match = Match(context, snapshot, out var upstreamPath);
        switch (match.Kind)
        {
            case MatchKind.NotFound:
                return ErrorResponse.WriteAsync(context, 404, "no route", requestId);
            case MatchKind.MethodNotAllowed:
                context.Response.Headers.Allow = Methods.AllowHeader(match.Allowed);
                return ErrorResponse.WriteAsync(context, 405, "method not allowed", requestId);
        }

        var route = match.Value!;
        exchange.Route = route;
        if (route.Scripts is { } scripts)
            return ScriptedAsync(context, snapshot, route, scripts, upstreamPath, exchange);
        if (route.Respond is { } fixedResponse)
            return WriteFixedResponse(context, fixedResponse, requestId);
        if (upstreamPath is null)
            return ErrorResponse.WriteAsync(context, 400, "bad path", requestId);
        return ForwardAsync(context, route, route.Upstream!, upstreamPath, exchange);
    }

    /// <summary>A route with Lua: hooks may answer, rewrite or re-target the request before it is forwarded.</summary>
    /// <remarks>Synchronous up to the forward when there is no body to read, so a hooked route adds no async frame.</remarks>
    private Task ScriptedAsync(HttpContext context, Snapshot snapshot, Route route, RouteScripts scripts, string? upstreamPath, Exchange exchange)
    {
        var call = new ScriptCall(context, snapshot.Routes, snapshot.Upstreams, route, exchange.RequestId);
        exchange.Script = call;
        if (scripts.Pool.Scripts.Overran) return OffIoThreadAsync(context, snapshot, route, scripts, upstreamPath, exchange, call);
        return RunRequestPhase(context, snapshot, route, scripts, upstreamPath, exchange, call);
    }

    /// <summary>Scripts that once overran their budget leave the socket engine's thread first (see <see cref="ScriptSet.Overran"/>).</summary>
    private async Task OffIoThreadAsync(HttpContext context, Snapshot snapshot, Route route, RouteScripts scripts, string? upstreamPath, Exchange exchange, ScriptCall call)
    {
        await Task.Yield();
        await RunRequestPhase(context, snapshot, route, scripts, upstreamPath, exchange, call);
    }

    private Task RunRequestPhase(HttpContext context, Snapshot snapshot, Route route, RouteScripts scripts, string? upstreamPath, Exchange exchange, ScriptCall call)
    {
        if (scripts.OnRequest.Length > 0 || scripts.IsHandler)
        {
            var read = ScriptStage.ReadBodyAsync(call, snapshot.Config.Lua.MaxBody);
            if (!read.IsCompletedSuccessfully) return ReadThenRunAsync(read, context, route, scripts, upstreamPath, exchange, call);
            if (!read.Result) return ErrorResponse.WriteAsync(context, 413, "request body too large", exchange.RequestId);
        }
        return RunScripts(context, route, scripts, upstreamPath, exchange, call);
    }

    private async Task ReadThenRunAsync(ValueTask<bool> read, HttpContext context, Route route, RouteScripts scripts, string? upstreamPath, Exchange exchange, ScriptCall call)
    {
        if (!await read)
        {
            await ErrorResponse.WriteAsync(context, 413, "request body too large", exchange.RequestId);
            return;
        }
        await RunScripts(context, route, scripts, upstreamPath, exchange, call);
    }

    private Task RunScripts(HttpContext context, Route route, RouteScripts scripts, string? upstreamPath, Exchange exchange, ScriptCall call)
    {
        switch (ScriptStage.RunRequest(call, scripts, out var failure))
        {
            case ScriptVerdict.Failed:
                context.Response.Clear();
                return ErrorResponse.WriteAsync(context, 500, failure!, exchange.RequestId);
            case ScriptVerdict.Answered:
                return ReplyReader.WriteAsync(call);
        }
        if (route.Respond is { } fixedResponse) return WriteFixedResponse(context, fixedResponse, exchange.RequestId);
        var path = call.Path ?? upstreamPath;
        if (path is null) return ErrorResponse.WriteAsync(context, 400, "bad path", exchange.RequestId);
        ScriptStage.PrepareUpstreamBody(call);
        return ForwardAsync(context, route, call.EffectiveUpstream!, path, exchange);
    }

    /// <summary>Finds the route and, for proxied routes, the path to send upstream (null when it would climb out).</summary>
    private static RouteMatch<Route> Match(HttpContext context, Snapshot snapshot, out string? upstreamPath)
    {
        upstreamPath = null;
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        Span<Range> values = stackalloc Range[MaxRouteParams];
        var match = snapshot.Routes.Match(request.Host.Value, path, Methods.Parse(request.Method), values);
        if (match.Kind != MatchKind.Found || match.Value!.Upstream is null) return match;

        var route = match.Value;
        if (path.Contains('%') && HasEncodedPercentSlash(context)) return match;
        var writer = new UpstreamPathWriter(path.Length + 16);
        try
        {
            if (route.Rewrite is { } rewrite)
                rewrite.Write(ref writer, path, values[..match.ParamCount]);
            else if (route.StripPrefix is { } prefix && path.StartsWith(prefix, StringComparison.Ordinal))
                writer.AppendDecoded(path.Length == prefix.Length ? "/" : path.AsSpan(prefix.Length));
            else
                writer.AppendDecoded(path);
            if (writer.Written.IsEmpty || writer.Written[0] != '/') return match;
            if (!writer.ClimbsOut()) upstreamPath = writer.ToString();
        }
        finally
        {
            writer.Dispose();
        }
        return match;
    }

    /// <summary>
    /// Kestrel decodes "%25" but keeps "%2F", so "%252F" (a literal "%2F" in a name) and "%2F" (an encoded slash)
    /// reach us as the same text. Only the raw target tells them apart; such a path is refused rather than guessed.
    /// </summary>
    private static bool HasEncodedPercentSlash(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        int query = raw.IndexOf('?');
        var rawPath = query < 0 ? raw.AsSpan() : raw.AsSpan(0, query);
        return rawPath.Contains("%252F", StringComparison.OrdinalIgnoreCase);
    }

    private static Task WriteFixedResponse(HttpContext context, FixedResponse fixedResponse, string requestId)
    {
        var response = context.Response;
        response.StatusCode = fixedResponse.Status;
        response.Headers[RequestId.Header] = requestId;
        foreach (var (name, value) in fixedResponse.Headers)
            response.Headers[name] = value;
        // Config refuses a body where the status forbids one; Kestrel refuses the header too.
        if (fixedResponse.Status is < 200 or 204 or 304) return Task.CompletedTask;
        response.ContentLength = fixedResponse.Body.Length;
        if (HttpMethods.IsHead(context.Request.Method) || fixedResponse.Body.Length == 0) return Task.CompletedTask;
        return response.Body.WriteAsync(fixedResponse.Body).AsTask();
    }

    private async Task ForwardAsync(HttpContext context, Route route, Upstream upstream, string upstreamPath, Exchange exchange)
    {
        var retry = upstream.Retry;
        int retriesLeft = retry.Retries > 0 && CanReplay(context.Request, retry) ? retry.Retries : 0;
        if (retriesLeft > 0) upstream.RetryBudget.RecordRequest();
        Target? previous = null;
        var error = ForwarderError.None;
        for (int attempt = 0; ; attempt++)
        {
            // A retry goes to another target or not at all; the client then learns why the last try failed.
            var (target, permit) = previous is null ? PickAvailable(upstream, context) : PickRetryTarget(upstream, previous);
            if (target is null)
            {
                if (previous is null)
                {
                    await ErrorResponse.WriteAsync(context, 503, "no healthy upstream target", exchange.RequestId);
                    return;
                }
                break;
            }
            if (attempt > 0 && !await PrepareRetryAsync(context, retry, attempt)) return;
            exchange.MayRetryStatus = retriesLeft > 0;
            exchange.DiscardedStatus = 0;
            error = await SendAsync(context, route, upstream, target, permit, upstreamPath, exchange);
            previous = target;
            if (exchange.DiscardedStatus != 0)
            {
                // The transformer dropped a 502/503/504 for a retry it took from the budget; YARP had set its status.
                retriesLeft--;
                context.Response.Clear();
                continue;
            }
            if (error == ForwarderError.None) return;
            if (!RequestObserver.IsClientSide(error)) target.LastError = error.ToString();
            if (context.Response.HasStarted || context.RequestAborted.IsCancellationRequested) return;

            // Failed before any response: nothing reached the client, and the request can be sent again.
            if (retriesLeft > 0 && (retry.On & FailureKind(error, context)) != 0 && upstream.RetryBudget.TryRetry())
            {
                retriesLeft--;
                context.Response.Clear();
                continue;
            }
            break;
        }

        context.Response.Clear();
        if (exchange.DiscardedStatus != 0)
        {
            await ErrorResponse.WriteAsync(context, exchange.DiscardedStatus, $"upstream answered {exchange.DiscardedStatus}", exchange.RequestId);
            return;
        }
        var (status, text) = error switch
        {
            ForwarderError.RequestTimedOut => (504, "upstream timed out"),
            ForwarderError.Request when TimeoutOf(context) is ConnectTimeoutException => (504, "upstream connect timed out"),
            ForwarderError.RequestBodyClient => (400, "could not read the request body"),
            ForwarderError.Request => (502, "upstream refused or reset the connection"),
            _ => (502, "upstream failed"),
        };
        await ErrorResponse.WriteAsync(context, status, text, exchange.RequestId);
    }

    /// <summary>Waits out the backoff and rewinds a buffered body; false when the client left meanwhile.</summary>
    private static async ValueTask<bool> PrepareRetryAsync(HttpContext context, RetryPolicy retry, int attempt)
    {
        var pause = retry.PauseBefore(attempt);
        if (pause > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(pause, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
        if (context.Request.Body.CanSeek) context.Request.Body.Position = 0;
        return true;
    }

    /// <summary>The balancer's choice among targets whose breaker grants a permit; null when none will take the request.</summary>
    private static (Target? Target, CircuitPermit Permit) PickAvailable(Upstream upstream, HttpContext context)
    {
        for (int tries = 0; tries < upstream.Targets.Count; tries++)
        {
            var target = upstream.PickTarget(context);
            if (target is null) return (null, default);
            if (TryAdmit(upstream, target, out var permit)) return (target, permit);
        }
        return (null, default);
    }

    /// <summary>
    /// For a retry: the next target after <paramref name="failed"/> in list order that will take the request. The
    /// balancer is not asked, so a retry neither moves the rotation on for other requests nor, with <c>hash</c>,
    /// lands on the same target again.
    /// </summary>
    private static (Target? Target, CircuitPermit Permit) PickRetryTarget(Upstream upstream, Target failed)
    {
        var targets = upstream.Targets;
        int start = 0;
        while (targets[start] != failed) start++;
        bool panic = upstream.InPanic;
        for (int i = 1; i < targets.Count; i++)
        {
            var target = targets[(start + i) % targets.Count];
            if ((target.IsUsable || panic) && TryAdmit(upstream, target, out var permit)) return (target, permit);
        }
        return (null, default);
    }

    private static bool TryAdmit(Upstream upstream, Target target, out CircuitPermit permit)
    {
        permit = default;
        // In panic, a target out of rotation is sent to anyway, its breaker included.
        if (target.Breaker is null || (upstream.Panic && !target.IsUsable)) return true;
        return target.Breaker.TryAcquire(out permit);
    }

    private async Task<ForwarderError> SendAsync(HttpContext context, Route route, Upstream upstream, Target target, CircuitPermit permit, string upstreamPath, Exchange exchange)
    {
        exchange.Target = target;
        exchange.Upstream = upstream;
        var query = exchange.Script?.QueryString is { } q ? (q.Length == 0 ? "" : "?" + q) : context.Request.QueryString.Value;
        bool lean = Http1Forwarder.Handles(context, route, target);
        if (!lean)
        {
            exchange.UpstreamUri = string.Concat(target.Origin, target.BasePath, upstreamPath, query);
            context.Features.Set(exchange);
        }

        long started = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref target.InFlight);
        ForwarderError error = ForwarderError.RequestCanceled; // what an exception out of the forwarder counts as
        try
        {
            error = lean
                ? await Http1Forwarder.SendAsync(context, route, upstream, target, upstreamPath, query, exchange)
                : await _forwarder.SendAsync(context, target.Origin, _invoker, upstream.RequestConfig, route.Transformer!);
            // UpstreamTimeoutHandler's first-byte limit reaches YARP as a failed request; it is a timeout.
            if (error == ForwarderError.Request && TimeoutOf(context) is { } timeout && timeout is not ConnectTimeoutException)
                error = ForwarderError.RequestTimedOut;
        }
        finally
        {
            Interlocked.Decrement(ref target.InFlight);
            long ticks = Stopwatch.GetTimestamp() - started;
            exchange.UpstreamTicks += ticks;
            int status = exchange.DiscardedStatus != 0 ? exchange.DiscardedStatus : context.Response.StatusCode;
            TargetFeedback.Report(target, permit, error, status, upstream.Eject?.EjectOn5xx == true);
            _observer?.RecordUpstream(upstream, target, error, ticks);
        }
        return error;
    }

    private static UpstreamTimeoutException? TimeoutOf(HttpContext context)
    {
        for (var e = context.Features.Get<IForwarderErrorFeature>()?.Exception; e is not null; e = e.InnerException)
            if (e is UpstreamTimeoutException timeout) return timeout;
        return null;
    }

    /// <summary>What kind of <see cref="ForwarderError.Request"/> failure happened, in <c>retry_on</c> terms.</summary>
    private static RetryOn FailureKind(ForwarderError error, HttpContext context)
    {
        if (error != ForwarderError.Request) return RetryOn.None;
        for (var e = context.Features.Get<IForwarderErrorFeature>()?.Exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case ConnectTimeoutException:
                case HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError }:
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused }:
                    return RetryOn.ConnectFailure;
            }
        }
        return RetryOn.Reset;
    }

    /// <summary>
    /// A method the upstream retries whose body, if any, can be sent again: already in memory (a script read it),
    /// or small enough to keep (it is then buffered as it is read). A large or chunked body is never retried.
    /// </summary>
    private static bool CanReplay(HttpRequest request, RetryPolicy retry)
    {
        if ((Methods.Parse(request.Method) & retry.Methods) == 0) return false;
        bool chunked = request.Headers.ContainsKey("Transfer-Encoding");
        if (!chunked && request.ContentLength is null or 0) return true;
        if (request.Body.CanSeek) return true;
        if (chunked || request.ContentLength > RetryPolicy.MaxReplayBody) return false;
        request.EnableBuffering(RetryPolicy.MaxReplayBody, RetryPolicy.MaxReplayBody);
        return true;
    }
}
