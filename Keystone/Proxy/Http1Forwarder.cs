using System.Buffers;
using System.Runtime.CompilerServices;
using System.Buffers.Text;
using System.Diagnostics;
using System.IO.Pipelines;
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
        try
        {
            (connection, var error) = await ExchangeHeadAsync(context, upstream, target.Connections!, head.AsMemory(0, headLength));
            if (error != ForwarderError.None) return error;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(head);
        }
        return await RespondAsync(context, upstream, target.Connections!, connection!, exchange);
    }

    /// <summary>
    /// Sends the request head and waits for the response head. A pooled connection the target closed while idle
    /// fails before any response byte; the request then goes once more on a new connection, as SocketsHttpHandler does.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<(Http1Connection?, ForwarderError)> ExchangeHeadAsync(HttpContext context, Upstream upstream,
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
                    return (null, Fail(context, cancel.IsCancellationRequested ? ForwarderError.RequestCanceled : ForwarderError.Request, e));
                }
            }
            using var abort = cancel.UnsafeRegister(static c => ((Http1Connection)c!).Abort(), connection);
            try
            {
                connection.RequestSent = Stopwatch.GetTimestamp();
                await connection.SendAsync(head, upstream.Timeout);
                if (await ReadHeadAsync(connection, upstream.Timeout)) return (connection, ForwarderError.None);
                connection.Dispose();
                if (connection.Reused && !cancel.IsCancellationRequested) continue;
                return (null, Fail(context, ForwarderError.Request, new IOException("the target closed the connection without a response")));
            }
            catch (Exception e) when (connection.Reused && connection.Start == connection.End && e is System.Net.Sockets.SocketException && !cancel.IsCancellationRequested)
            {
                connection.Dispose();
            }
            catch (Exception e)
            {
                connection.Dispose();
                var error = cancel.IsCancellationRequested ? ForwarderError.RequestCanceled
                    : e is UpstreamTimeoutException ? ForwarderError.RequestTimedOut : ForwarderError.Request;
                return (null, Fail(context, error, e));
            }
        }
    }

    /// <summary>Reads until the buffer holds a whole response head; false when the target closed before any byte.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> ReadHeadAsync(Http1Connection connection, TimeSpan timeout)
    {
        while (Http1ResponseHead.Find(connection.Unread) < 0)
        {
            if (connection.End - connection.Start == Http1Connection.BufferSize)
                throw new InvalidDataException($"the response head is larger than {Http1Connection.BufferSize / 1024} KB");
            // timeout bounds the whole wait for the head, however slowly it trickles in.
            var left = timeout - Stopwatch.GetElapsedTime(connection.RequestSent);
            if (left <= TimeSpan.Zero) throw new UpstreamTimeoutException($"waiting for the response head took longer than {timeout.TotalMilliseconds:0}ms");
            if (await connection.FillAsync(left, "waiting for the response head") == 0)
            {
                if (connection.Start == connection.End) return false;
                throw new IOException("the target closed the connection inside the response head");
            }
        }
        return true;
    }

    /// <summary>Copies the response: status and headers, the route's response hooks, then the body.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<ForwarderError> RespondAsync(HttpContext context, Upstream upstream, Http1ConnectionPool pool,
        Http1Connection connection, Exchange exchange)
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
                    int length = Http1ResponseHead.Find(connection.Unread);
                    if (Http1ResponseHead.Parse(connection.Unread[..length], headRequest, response, out parsed) is { } problem)
                        throw new InvalidDataException($"invalid response from the target: {problem}");
                    connection.Start += length;
                    if (parsed.Status >= 200) break;
                    if (parsed.Status == 101) throw new InvalidDataException("the target switched protocols unasked");
                    if (!await ReadHeadAsync(connection, upstream.Timeout)) throw new IOException("the target closed the connection after an informational response");
                }
            }
            catch (Exception e)
            {
                connection.Dispose();
                // Headers of a head refused halfway may have been copied; the gateway clears them with the status.
                var error = cancel.IsCancellationRequested ? ForwarderError.RequestCanceled
                    : e is UpstreamTimeoutException ? ForwarderError.RequestTimedOut : ForwarderError.Request;
                return Fail(context, error, e);
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
                var copied = await CopyBodyAsync(connection, response.BodyWriter, parsed, upstream.IdleTimeout);
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

    /// <summary>
    /// The response body, in whatever framing the target chose, to the client; Kestrel frames it again. What was
    /// written is flushed before every wait on the target, so a slow body streams instead of piling up.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<ForwarderError> CopyBodyAsync(Http1Connection connection, PipeWriter client, Http1ResponseHead head, TimeSpan idle)
    {
        // A body that came whole with the head goes out when the request ends, after the gateway has recorded the
        // outcome (breaker, ejection, metrics), as on YARP's path: a client that has its response can count on them.
        bool whole = head.Framing == BodyFraming.Length && head.ContentLength <= connection.End - connection.Start;
        switch (head.Framing)
        {
            case BodyFraming.Length:
                if (!await CopyExactlyAsync(connection, client, head.ContentLength, idle)) return ForwarderError.ResponseBodyClient;
                break;
            case BodyFraming.Chunked:
                while (true)
                {
                    long size = await ReadChunkSizeAsync(connection, client, idle);
                    if (size == 0) break;
                    if (!await CopyExactlyAsync(connection, client, size, idle)) return ForwarderError.ResponseBodyClient;
                    if ((await ReadLineAsync(connection, client, idle)).Length != 0) throw new InvalidDataException("a chunk is longer than its size");
                }
                // Trailers are not passed on; the blank line ends the message.
                while ((await ReadLineAsync(connection, client, idle)).Length != 0) { }
                break;
            case BodyFraming.UntilClose:
                connection.MarkBroken();
                client.Write(connection.Unread);
                connection.Start = connection.End;
                while (true)
                {
                    if (IsClientGone(await client.FlushAsync())) return ForwarderError.ResponseBodyClient;
                    var memory = client.GetMemory(16 * 1024);
                    int read = await connection.ReceiveAsync(memory, idle, "reading the response body");
                    if (read == 0) break;
                    client.Advance(read);
                }
                break;
        }
        if (whole) return ForwarderError.None;
        return IsClientGone(await client.FlushAsync()) ? ForwarderError.ResponseBodyClient : ForwarderError.None;
    }

    /// <summary>
    /// Copies <paramref name="count"/> body bytes: first those already read with the head, then straight from the
    /// socket into the client's buffer. False when the client went away.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> CopyExactlyAsync(Http1Connection connection, PipeWriter client, long count, TimeSpan idle)
    {
        int buffered = (int)Math.Min(count, connection.End - connection.Start);
        client.Write(connection.Unread[..buffered]);
        connection.Start += buffered;
        count -= buffered;
        while (count > 0)
        {
            if (IsClientGone(await client.FlushAsync())) return false;
            var memory = client.GetMemory(16 * 1024);
            if (memory.Length > count) memory = memory[..(int)count];
            int read = await connection.ReceiveAsync(memory, idle, "reading the response body");
            if (read == 0) throw new IOException("the target closed the connection before the end of the response body");
            client.Advance(read);
            count -= read;
        }
        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<long> ReadChunkSizeAsync(Http1Connection connection, PipeWriter client, TimeSpan idle)
    {
        var (start, length) = await ReadLineAsync(connection, client, idle);
        var text = connection.Buffer.AsSpan(start, length);
        int extension = text.IndexOf((byte)';');
        if (extension >= 0) text = text[..extension];
        text = text.TrimEnd(" \t"u8);
        // Fifteen hex digits at most: no size that overflows, and none that a peer could use to desynchronise us.
        if (text.IsEmpty || text.Length > 15 || !Utf8Parser.TryParse(text, out long size, out int used, 'x') || used != text.Length)
            throw new InvalidDataException("a chunk size is not a hex number");
        return size;
    }

    /// <summary>The next line in the buffer (its range, without the line ending), reading more when needed.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<(int Start, int Length)> ReadLineAsync(Http1Connection connection, PipeWriter client, TimeSpan idle)
    {
        while (true)
        {
            int lf = connection.Unread.IndexOf((byte)'\n');
            if (lf >= 0)
            {
                int start = connection.Start;
                int end = start + lf;
                if (lf > 0 && connection.Buffer[end - 1] == '\r') end--;
                connection.Start += lf + 1;
                return (start, end - start);
            }
            if (connection.End - connection.Start == Http1Connection.BufferSize) throw new InvalidDataException("a chunk line is too long");
            // A client that left shows up at the next write; the wait for the target need not be cut short for it.
            await client.FlushAsync();
            if (await connection.FillAsync(idle, "reading the response body") == 0)
                throw new IOException("the target closed the connection inside a chunked body");
        }
    }

    private static bool IsClientGone(FlushResult result) => result.IsCanceled || result.IsCompleted;

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
