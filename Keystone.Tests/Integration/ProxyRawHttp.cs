using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Keystone.Tests.Integration;

/// <summary>
/// Sends one HTTP/1.1 request over a plain socket, with the request target exactly as written: HttpClient
/// normalises URIs (dot segments, some escapes), which would hide what a hostile client can really send.
/// </summary>
internal static class RawHttp
{
    /// <param name="host">The Host header; the listener's address when null.</param>
    /// <param name="extraHeaders">Further header lines, each ending in CRLF.</param>
    public static async Task<RawResponse> SendAsync(int port, string method, string target, CancellationToken cancellationToken,
        string? host = null, string extraHeaders = "")
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
        var stream = client.GetStream();
        var request = $"{method} {target} HTTP/1.1\r\nHost: {host ?? $"127.0.0.1:{port}"}\r\n{extraHeaders}Connection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
        using var all = new MemoryStream();
        await stream.CopyToAsync(all, cancellationToken);
        return RawResponse.Parse(all.ToArray());
    }
}

/// <summary>A response as it came off the wire: the body is what followed the headers (de-chunked when chunked).</summary>
internal sealed record RawResponse(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    public string BodyText => Encoding.UTF8.GetString(Body);

    public IReadOnlyList<string> Values(string name)
    {
        var values = new List<string>();
        foreach (var (key, value) in Headers)
            if (key.Equals(name, StringComparison.OrdinalIgnoreCase)) values.Add(value);
        return values;
    }

    public string? Header(string name) => Values(name) is [var first, ..] ? first : null;

    public static RawResponse Parse(byte[] bytes)
    {
        int end = bytes.AsSpan().IndexOf("\r\n\r\n"u8);
        if (end < 0) throw new InvalidDataException($"no end of headers in {bytes.Length} bytes: {Encoding.ASCII.GetString(bytes)}");
        var lines = Encoding.ASCII.GetString(bytes, 0, end).Split("\r\n");
        int status = int.Parse(lines[0].Split(' ')[1]);
        var headers = new List<KeyValuePair<string, string>>();
        foreach (var line in lines.AsSpan(1))
        {
            int colon = line.IndexOf(':');
            headers.Add(new(line[..colon], line[(colon + 1)..].Trim()));
        }
        var body = bytes.AsSpan(end + 4).ToArray();
        var response = new RawResponse(status, headers, body);
        return response.Header("Transfer-Encoding")?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true
            ? response with { Body = Dechunk(body) }
            : response;
    }

    private static byte[] Dechunk(byte[] chunked)
    {
        using var body = new MemoryStream();
        int pos = 0;
        while (true)
        {
            int lineEnd = chunked.AsSpan(pos).IndexOf("\r\n"u8) + pos;
            var sizeText = Encoding.ASCII.GetString(chunked, pos, lineEnd - pos).Split(';')[0];
            int size = Convert.ToInt32(sizeText, 16);
            if (size == 0) return body.ToArray();
            body.Write(chunked, lineEnd + 2, size);
            pos = lineEnd + 2 + size + 2;
        }
    }
}
