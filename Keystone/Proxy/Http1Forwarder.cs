using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Keystone.Routing;
using Keystone.Scripting;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Keystone.Proxy;

/// <summary>
/// The lean forwarding hop for plain HTTP/1.x requests without a body to http targets: the request head is written
/// as bytes in one send on a pooled keep-alive connection, and the response head is parsed once, straight into
/// Kestrel's response, whose body is then read from the target into the client's output buffer. Everything else
/// (bodies, upgrades, HTTP/2 clients, https targets, buffered responses) goes through YARP's <c>IHttpForwarder</c>.
/// Failures are reported as YARP reports them, so retries, timeouts, metrics and error bodies do not care which
/// path a request took.
/// </summary>
internal static class Http1Forwarder
{
    /// <summary>Whether this path takes the request; the rest goes through YARP.</summary>
    public static bool Handles(HttpContext context, Route route, Target target)
    {
        var request = context.Request;
        return target.Connections is not null
            && route.Transformer is { BufferResponse: false }
            && request.ContentLength is null or 0
            && !request.Headers.ContainsKey("Transfer-Encoding")
            && (HttpProtocol.IsHttp11(request.Protocol) || HttpProtocol.IsHttp10(request.Protocol))
            && context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest != true
            && context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<ForwarderError> SendAsync(HttpContext context, Route route, Upstream upstream, Target target,
        string path, string? query, Exchange exchange)
    {
        var head = Http1RequestHead.Write(context, upstream, target, path, query, exchange.RequestId, route.Transformer!, out int headLength);
        if (head is null)
            return Fail(context, ForwarderError.Request, new InvalidOperationException("a request header would break the request framing"));
        Http1Connection? connection = null;
        int responseHead;
        try
        {
            (connection, responseHead, var error) = await ExchangeHeadAsync(context, upstream, target.Connections!, head.AsMemory(0, headLength));
            if (error != ForwarderError.None) return error;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(head);
        }
        return await RespondAsync(context, upstream, target.Connections!, connection!, responseHead, exchange);
    }

    /// <summary>
    /// Sends the request head and waits for the response head, whose length it returns. A pooled connection the
    /// target closed while idle fails before any response byte; the request then goes once more on a new
    /// connection, as SocketsHttpHandler does.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<(Http1Connection?, int, ForwarderError)> ExchangeHeadAsync(HttpContext context, Upstream upstream,
        Http1ConnectionPool pool, ReadOnlyMemory<byte> head)
    {
        var cancel = context.RequestAborted;
        while (true)
        {
            var connection = pool.TryRent();
            if (connection is null)
            {
                try
                {
                    connection = await Http1Connection.OpenAsync(pool.Endpoint, upstream.ConnectTimeout, cancel);
                }
                catch (Exception e)
                {
                    return (null, 0, Fail(context, cancel.IsCancellationRequested ? ForwarderError.RequestCanceled : ForwarderError.Request, e));
                }
            }
            using var abort = cancel.UnsafeRegister(static c => ((Http1Connection)c!).Abort(), connection);
            try
            {
                connection.RequestSent = Stopwatch.GetTimestamp();
                await connection.SendAsync(head, upstream.Timeout);
                int length = await ReadHeadAsync(connection, upstream.Timeout);
                if (length > 0) return (connection, length, ForwarderError.None);
                connection.Dispose();
                if (connection.Reused && !cancel.IsCancellationRequested) continue;
                return (null, 0, Fail(context, ForwarderError.Request, new IOException("the target closed the connection without a response")));
            }
            catch (Exception e) when (connection.Reused && connection.Start == connection.End && e is System.Net.Sockets.SocketException && !cancel.IsCancellationRequested)
            {
                connection.Dispose();
            }
            catch (Exception e)
            {
                connection.Dispose();
                return (null, 0, Fail(context, HeadFailure(cancel, e), e));
            }
        }
    }

    /// <summary>Reads until the buffer holds a whole response head and returns its length; 0 when the target closed before any byte.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<int> ReadHeadAsync(Http1Connection connection, TimeSpan timeout)
    {
        int length;
        while ((length = Http1ResponseHead.Find(connection.Unread)) < 0)
        {
            if (connection.IsFull)
                throw new InvalidDataException($"the response head is larger than {Http1Connection.MaxBufferSize / 1024} KB");
            // timeout bounds the whole wait for the head, however slowly it trickles in.
            var left = timeout - Stopwatch.GetElapsedTime(connection.RequestSent);
            if (left <= TimeSpan.Zero) throw new UpstreamTimeoutException($"waiting for the response head took longer than {timeout.TotalMilliseconds:0}ms");
            if (await connection.FillAsync(left, "waiting for the response head") == 0)
            {
                if (connection.Start == connection.End) return 0;
                throw new IOException("the target closed the connection inside the response head");
            }
        }
        return length;
    }

    /// <summary>Copies the response: status and headers, the route's response hooks, then the body.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<ForwarderError> RespondAsync(HttpContext context, Upstream upstream, Http1ConnectionPool pool,
        Http1Connection connection, int headLength, Exchange exchange)
    {
        var cancel = context.RequestAborted;
        var response = context.Response;
        bool headRequest = HttpMethods.IsHead(context.Request.Method);
        Http1ResponseHead parsed;
        using (var abort = cancel.UnsafeRegister(static c => ((Http1Connection)c!).Abort(), connection))
        {
            try
            {
                // Informational responses (100 Continue, 103 Early Hints) come before the real one; the client gets the final one only.
                while (true)
                {
                    if (Http1ResponseHead.Parse(connection.Unread[..headLength], headRequest, response, out parsed) is { } problem)
                        throw new InvalidDataException($"invalid response from the target: {problem}");
                    connection.Start += headLength;
                    if (parsed.Status >= 200) break;
                    if (parsed.Status == 101) throw new InvalidDataException("the target switched protocols unasked");
                    headLength = await ReadHeadAsync(connection, upstream.Timeout);
                    if (headLength == 0) throw new IOException("the target closed the connection after an informational response");
                }
            }
            catch (Exception e)
            {
                connection.Dispose();
                // Headers of a head refused halfway may have been copied; the gateway clears them with the status.
                return Fail(context, HeadFailure(cancel, e), e);
            }

            if (exchange.MayRetryStatus && UpstreamRequestTransformer.ShouldRetry(exchange, parsed.Status))
            {
                // The gateway clears the copied headers and sends the request to another target.
                exchange.DiscardedStatus = parsed.Status;
                connection.Dispose();
                return ForwarderError.None;
            }
            response.StatusCode = parsed.Status;
            response.Headers[Observability.RequestId.Header] = exchange.RequestId;
        }

        if (exchange.Script is { } call && call.Route.Scripts is { HasResponsePhase: true } scripts)
        {
            // With inline completions this runs on the socket engine's thread, like the rest of the response.
            if (scripts.Pool.Scripts.Overran) await Task.Yield();
            if (!await ScriptStage.RunResponseAsync(call, scripts, null, cancel))
            {
                connection.Dispose();
                return ForwarderError.None;
            }
        }

        using (var abort = cancel.UnsafeRegister(static c => ((Http1Connection)c!).Abort(), connection))
        {
            try
            {
                var copied = await Http1ResponseBody.CopyAsync(connection, response.BodyWriter, parsed, upstream.IdleTimeout);
                if (copied != ForwarderError.None)
                {
                    connection.Dispose();
                    return Fail(context, copied, null);
                }
            }
            catch (Exception e)
            {
                connection.Dispose();
                // The client must not take a cut-off body for a whole one.
                context.Abort();
                return Fail(context, cancel.IsCancellationRequested ? ForwarderError.ResponseBodyClient : ForwarderError.ResponseBodyDestination, e);
            }
        }

        if (parsed.KeepAlive && connection.Start == connection.End) pool.Return(connection);
        else connection.Dispose();
        return ForwarderError.None;
    }

    /// <summary>How a failure before any of the response was copied counts: the client left, a timeout, or the target's fault.</summary>
    private static ForwarderError HeadFailure(CancellationToken cancel, Exception e) =>
        cancel.IsCancellationRequested ? ForwarderError.RequestCanceled
        : e is UpstreamTimeoutException ? ForwarderError.RequestTimedOut
        : ForwarderError.Request;

    /// <summary>Reports a failure as YARP does: the error and its exception on the context, for the gateway to read.</summary>
    private static ForwarderError Fail(HttpContext context, ForwarderError error, Exception? exception)
    {
        context.Features.Set<IForwarderErrorFeature>(new ForwardingFailure(error, exception));
        return error;
    }

    private sealed class ForwardingFailure(ForwarderError error, Exception? exception) : IForwarderErrorFeature
    {
        public ForwarderError Error { get; } = error;
        public Exception? Exception { get; } = exception;
    }
}
