using System.Globalization;
using Keystone.Configuration;
using Microsoft.Net.Http.Headers;

namespace Keystone;

/// <summary>
/// What Kestrel's parser lets through but a proxy must not forward: requests that a stricter or laxer hop
/// behind us could read differently. Everything here is refused before routing.
/// </summary>
public static class RequestSanity
{
    public readonly record struct Problem(int Status, string Error, bool CloseConnection);

    private static readonly Problem Connect = new(405, "CONNECT is not supported by a reverse proxy", true);
    private static readonly Problem DoubleFraming = new(400, "both Content-Length and Transfer-Encoding", true);
    private static readonly Problem BadHost = new(400, "bad host", false);
    private static readonly Problem BadHeaderName = new(400, "bad header name", true);

    public static Problem? Check(HttpRequest request)
    {
        // Bytes after a refused CONNECT are tunnel data, not HTTP: the connection closes rather than parse them.
        if (HttpMethods.IsConnect(request.Method)) return Connect;

        // A request framed two ways is how smuggling starts (RFC 9112 §6.3). Kestrel honours Transfer-Encoding
        // and renames the Content-Length it ignored to X-Content-Length, so look for both spellings.
        var headers = request.Headers;
        if (headers.ContainsKey(HeaderNames.TransferEncoding)
            && (headers.ContainsKey(HeaderNames.ContentLength) || headers.ContainsKey("X-Content-Length")))
            return DoubleFraming;

        // HTTP/1.0 may omit Host (old health checkers do); HTTP/1.1 and later must send a usable one.
        if (!IsValidHost(request.Host.Value) && !(request.Host.Value is null or "" && HttpProtocol.IsHttp10(request.Protocol)))
            return BadHost;

        // Kestrel accepts some non-token names ("X-Bad(Name)") that the forwarder would then silently drop.
        foreach (var header in headers)
            if (!Names.IsToken(header.Key)) return BadHeaderName;
        return null;
    }

    public static Task RefuseAsync(HttpContext context, Problem problem, string requestId)
    {
        if (problem.CloseConnection) context.Response.Headers.Connection = "close";
        return ErrorResponse.WriteAsync(context, problem.Status, problem.Error, requestId);
    }

    /// <summary>A non-empty host with, if any, a port 0-65535: what a preserved Host must be to go upstream.</summary>
    private static bool IsValidHost(string? host)
    {
        if (string.IsNullOrEmpty(host)) return false;
        int colon = host.StartsWith('[') ? host.IndexOf("]:", StringComparison.Ordinal) + 1 : host.LastIndexOf(':');
        if (colon <= 0) return true;
        var port = host.AsSpan(colon + 1);
        return port.Length is > 0 and <= 5 && ushort.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out _);
    }
}
