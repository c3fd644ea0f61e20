using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Forwarder;

namespace Keystone.Proxy;

/// <summary>
/// Copies an upstream response body, as the target framed it (Content-Length, chunked, or until close), into the
/// client's output buffer; Kestrel frames it again. Malformed framing throws, and the caller aborts the client.
/// </summary>
internal static class Http1ResponseBody
{
    /// <summary>
    /// The response body, in whatever framing the target chose, to the client; Kestrel frames it again. What was
    /// written is flushed before every wait on the target, so a slow body streams instead of piling up.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<ForwarderError> CopyAsync(Http1Connection connection, PipeWriter client, Http1ResponseHead head, TimeSpan idle)
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
            if (connection.IsFull) throw new InvalidDataException("a chunk line is too long");
            // A client that left shows up at the next write; the wait for the target need not be cut short for it.
            await client.FlushAsync();
            if (await connection.FillAsync(idle, "reading the response body") == 0)
                throw new IOException("the target closed the connection inside a chunked body");
        }
    }

    private static bool IsClientGone(FlushResult result) => result.IsCanceled || result.IsCompleted;
}
