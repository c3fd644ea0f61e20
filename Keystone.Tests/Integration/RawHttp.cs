using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Keystone.Tests.Integration;

/// <summary>
/// A deliberately dumb HTTP/1.1 client for malformed-request tests: it writes exactly the bytes it is given on a fresh
/// TCP connection to 127.0.0.1 and reports every response that comes back (HttpClient would refuse to send, or would
/// fix, most of what these tests need to send). Everything is bounded by one timeout (5 s by default). Named
/// RawHttpClient so it does not clash with the simpler well-formed-only RawHttp in ProxyRawHttp.cs.
/// </summary>
public static class RawHttpClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long the connection must stay quiet after a complete response before we stop waiting for another.</summary>
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    public static Task<RawHttpResult> SendAsync(int port, string request, TimeSpan? timeout = null) =>
        SendAsync(port, Encoding.Latin1.GetBytes(request), timeout);

    /// <summary>
    /// Connects, writes <paramref name="request"/> (concurrently with reading, so a server that answers and closes
    /// before it has read everything is still heard), then reads until the server closes, until a complete response
    /// has been followed by <see cref="Quiet"/> of silence, or until the timeout.
    /// </summary>
    public static async Task<RawHttpResult> SendAsync(int port, byte[] request, TimeSpan? timeout = null)
    {
        using var overall = new CancellationTokenSource(timeout ?? DefaultTimeout);
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, port, overall.Token);
        var stream = client.GetStream();

        var writeFailed = false;
        var write = Task.Run(async () =>
        {
            try
            {
                await stream.WriteAsync(request, overall.Token);
                await stream.FlushAsync(overall.Token);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                writeFailed = true;
            }
        });

        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        bool closed = false, reset = false, timedOut = false;
        while (true)
        {
            // Once at least one full response is in, only wait a short quiet period for a (smuggled) second one.
            var complete = Parse(received.ToArray(), out _).Complete > 0;
            using var quiet = complete ? new CancellationTokenSource(Quiet) : new CancellationTokenSource();
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(overall.Token, quiet.Token);
            int read;
            try
            {
                read = await stream.ReadAsync(buffer, linked.Token);
            }
            catch (OperationCanceledException)
            {
                timedOut = overall.IsCancellationRequested && !complete;
                break;
            }
            catch (IOException e) when (e.InnerException is SocketException)
            {
                closed = reset = true;
                break;
            }

            if (read == 0)
            {
                closed = true;
                break;
            }

            received.Write(buffer, 0, read);
        }

        overall.Cancel();
        client.Close();
        await write;
        var raw = received.ToArray();
        var responses = Parse(raw, out var trailing).Responses;
        return new RawHttpResult(responses, raw, trailing, closed, reset, timedOut, writeFailed);
    }

    /// <summary>Splits the bytes read into responses, framed by Content-Length, chunked, or the connection close.</summary>
    private static (List<RawHttpResponse> Responses, int Complete) Parse(byte[] raw, out int trailingBytes)
    {
        var responses = new List<RawHttpResponse>();
        int complete = 0, pos = 0;
        trailingBytes = 0;
        while (pos < raw.Length)
        {
            int headEnd = IndexOf(raw, "\r\n\r\n"u8, pos);
            if (headEnd < 0) break;
            var head = Encoding.Latin1.GetString(raw, pos, headEnd - pos).Split("\r\n");
            var statusLine = head[0].Split(' ', 3);
            if (statusLine.Length < 2 || !statusLine[0].StartsWith("HTTP/", StringComparison.Ordinal) || !int.TryParse(statusLine[1], out var status))
                break;
            var headers = new List<KeyValuePair<string, string>>();
            foreach (var line in head.Skip(1))
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0) headers.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
            }

            string? Header(string name) => headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;
            int bodyStart = headEnd + 4;
            byte[] body;
            bool isComplete;
            if (status is 204 or 304 || status < 200)
            {
                body = [];
                pos = bodyStart;
                isComplete = true;
            }
            else if (Header("Transfer-Encoding") is { } te && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                isComplete = TryDechunk(raw, bodyStart, out body, out pos);
            }
            else if (Header("Content-Length") is { } cl && long.TryParse(cl, out var length))
            {
                isComplete = raw.Length - bodyStart >= length;
                body = raw.AsSpan(bodyStart, (int)Math.Min(length, raw.Length - bodyStart)).ToArray();
                pos = bodyStart + body.Length;
            }
            else
            {
                // Delimited by the close: complete only once the connection has closed (decided by the caller).
                body = raw.AsSpan(bodyStart).ToArray();
                pos = raw.Length;
                isComplete = false;
            }

            responses.Add(new RawHttpResponse(status, statusLine.Length > 2 ? statusLine[2] : "", headers, body));
            if (!isComplete) break;
            complete++;
        }

        trailingBytes = raw.Length - pos;
        return (responses, complete);
    }

    private static bool TryDechunk(byte[] raw, int start, out byte[] body, out int end)
    {
        var output = new MemoryStream();
        int pos = start;
        while (true)
        {
            int lineEnd = IndexOf(raw, "\r\n"u8, pos);
            if (lineEnd < 0) break;
            var sizeText = Encoding.Latin1.GetString(raw, pos, lineEnd - pos).Split(';')[0].Trim();
            if (!int.TryParse(sizeText, System.Globalization.NumberStyles.HexNumber, null, out var size)) break;
            pos = lineEnd + 2;
            if (size == 0)
            {
                int trailerEnd = IndexOf(raw, "\r\n"u8, pos);
                while (trailerEnd > pos) { pos = trailerEnd + 2; trailerEnd = IndexOf(raw, "\r\n"u8, pos); }
                if (trailerEnd < 0) break;
                body = output.ToArray();
                end = trailerEnd + 2;
                return true;
            }

            if (raw.Length < pos + size + 2) break;
            output.Write(raw, pos, size);
            pos += size + 2;
        }

        body = output.ToArray();
        end = raw.Length;
        return false;
    }

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle, int from)
    {
        int i = haystack.AsSpan(from).IndexOf(needle);
        return i < 0 ? -1 : from + i;
    }
}

/// <summary>One HTTP response as it came off the wire.</summary>
public sealed record RawHttpResponse(int Status, string Reason, List<KeyValuePair<string, string>> Headers, byte[] Body)
{
    public string? Header(string name) =>
        Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public string BodyText => Encoding.UTF8.GetString(Body);
}

/// <summary>What one raw exchange produced: zero or more responses, and how the connection ended.</summary>
/// <param name="Closed">The server closed (FIN or RST) the connection.</param>
/// <param name="TimedOut">Nothing complete arrived and the connection stayed open for the whole timeout.</param>
/// <param name="TrailingBytes">Bytes after the last parsable response (garbage, or a truncated response).</param>
public sealed record RawHttpResult(
    List<RawHttpResponse> Responses, byte[] Raw, int TrailingBytes, bool Closed, bool Reset, bool TimedOut, bool WriteFailed)
{
    public RawHttpResponse? First => Responses.Count > 0 ? Responses[0] : null;

    /// <summary>For assertion messages: the statuses, how the connection ended, and the start of the raw bytes.</summary>
    public string Describe()
    {
        var text = Encoding.Latin1.GetString(Raw, 0, Math.Min(Raw.Length, 600)).Replace("\r", "\\r").Replace("\n", "\\n\n    ");
        return $"responses=[{string.Join(", ", Responses.Select(r => r.Status))}] closed={Closed} reset={Reset} timedOut={TimedOut} "
            + $"writeFailed={WriteFailed} trailing={TrailingBytes}\n    {text}";
    }
}
