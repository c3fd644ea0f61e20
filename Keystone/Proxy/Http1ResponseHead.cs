using System.Buffers;
using System.Buffers.Text;
using System.Text;
using Microsoft.Net.Http.Headers;

namespace Keystone.Proxy;

/// <summary>How the body of an upstream response ends (RFC 9112 §6.3).</summary>
internal enum BodyFraming { None, Length, Chunked, UntilClose }

/// <summary>
/// The status line and headers of an upstream response, parsed from bytes. Strict where leniency would let a
/// target smuggle or split: no space before a colon, no folded lines, no control characters, one Content-Length.
/// Header lines may end in LF alone, as nginx and SocketsHttpHandler accept.
/// </summary>
internal struct Http1ResponseHead
{
    public int Status;
    public BodyFraming Framing;
    public long ContentLength;
    public bool KeepAlive;

    /// <summary>Connection-level headers a proxy never passes on, in either direction (YARP drops the same ones).</summary>
    internal static readonly string[] HopByHop =
    [
        HeaderNames.Connection, HeaderNames.KeepAlive, HeaderNames.ProxyConnection, HeaderNames.TransferEncoding,
        HeaderNames.Upgrade, HeaderNames.Trailer, HeaderNames.TE, HeaderNames.ProxyAuthenticate, HeaderNames.ProxyAuthorization,
        "Proxy-Authentication-Info", "Proxy-Features", "Proxy-Instruction", "Security-Scheme", "ALPN", "Close", "HTTP2-Settings",
    ];

    /// <summary>Names most responses carry, so that copying them allocates no string.</summary>
    private static readonly string[] CommonNames =
    [
        HeaderNames.ContentType, HeaderNames.ContentLength, HeaderNames.Date, HeaderNames.Server, HeaderNames.CacheControl,
        HeaderNames.ETag, HeaderNames.LastModified, HeaderNames.Location, HeaderNames.SetCookie, HeaderNames.Vary,
        HeaderNames.ContentEncoding, HeaderNames.Expires, HeaderNames.AcceptRanges, HeaderNames.Age,
        HeaderNames.AccessControlAllowOrigin, Observability.RequestId.Header,
    ];

    private static readonly SearchValues<byte> TokenBytes = SearchValues.Create(Encoding.ASCII.GetBytes(Configuration.Names.TokenCharacters));

    /// <summary>What a field value may hold as Kestrel will write it: tab and visible ASCII (space included).</summary>
    private static readonly SearchValues<byte> FieldValueBytes = SearchValues.Create(FieldValueAlphabet());

    /// <summary>Length of the head (up to and including its blank line) at the start of <paramref name="data"/>; -1 while incomplete.</summary>
    public static int Find(ReadOnlySpan<byte> data)
    {
        int offset = 0;
        while (true)
        {
            int lf = data[offset..].IndexOf((byte)'\n');
            if (lf < 0) return -1;
            bool blank = lf == 0 || (lf == 1 && data[offset] == '\r');
            // A blank first line is not the end of a head: Parse refuses it as a status line.
            if (blank && offset > 0) return offset + lf + 1;
            offset += lf + 1;
        }
    }

    /// <summary>
    /// Parses <paramref name="head"/> (as found by <see cref="Find"/>) and, for a final (not 1xx) response, copies its
    /// end-to-end headers to <paramref name="copyTo"/>. Returns what is wrong with it, or null; headers before the
    /// fault may have been copied by then.
    /// </summary>
    public static string? Parse(ReadOnlySpan<byte> head, bool headRequest, HttpResponse copyTo, out Http1ResponseHead parsed)
    {
        parsed = default;
        var statusLine = NextLine(ref head);
        // "HTTP/1.1 200 OK": version, space, three digits, then a space and a reason, or nothing.
        if (statusLine.Length < 12 || !statusLine.StartsWith("HTTP/1."u8) || statusLine[7] is not ((byte)'0' or (byte)'1')
            || statusLine[8] != ' ' || !Utf8Parser.TryParse(statusLine.Slice(9, 3), out int status, out int used) || used != 3
            || status < 100 || (statusLine.Length > 12 && statusLine[12] != ' '))
            return "the status line is not HTTP/1.x";
        parsed.Status = status;
        parsed.KeepAlive = statusLine[7] == '1';
        parsed.ContentLength = -1;
        bool chunked = false, transferEncoding = false, copy = status >= 200;

        while (true)
        {
            var line = NextLine(ref head);
            if (line.IsEmpty) break;
            if (line[0] is (byte)' ' or (byte)'\t') return "a header line is folded";
            int colon = line.IndexOf((byte)':');
            if (colon <= 0 || line[..colon].ContainsAnyExcept(TokenBytes)) return "a header name is not a token";
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(" \t"u8);
            if (!IsFieldValue(value)) return "a header value holds a control or non-ASCII character";

            if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                if (!Utf8Parser.TryParse(value, out long length, out int digits) || digits != value.Length || length < 0 || value[0] == '+')
                    return "Content-Length is not a number";
                if (parsed.ContentLength >= 0)
                {
                    if (parsed.ContentLength != length) return "Content-Length is given twice, differently";
                    continue; // the same value twice is one Content-Length, and the client gets one
                }
                parsed.ContentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                transferEncoding = true;
                chunked = Ascii.EqualsIgnoreCase(LastToken(value), "chunked"u8);
            }
            else if (Ascii.EqualsIgnoreCase(name, "Connection"u8) && HasToken(value, "close"u8))
            {
                parsed.KeepAlive = false;
            }
            if (copy && !IsHopByHop(name) && !(status == 204 && Ascii.EqualsIgnoreCase(name, "Content-Length"u8)))
                copyTo.Headers.Append(NameOf(name), Encoding.Latin1.GetString(value));
        }

        if (headRequest || status is < 200 or 204 or 304)
        {
            parsed.Framing = BodyFraming.None;
        }
        else if (transferEncoding)
        {
            // Transfer-Encoding wins over Content-Length (which the client must not get: Kestrel would hold the body
            // to it), and a message that carried both does not share its connection.
            parsed.Framing = chunked ? BodyFraming.Chunked : BodyFraming.UntilClose;
            if (parsed.ContentLength >= 0 || !chunked) parsed.KeepAlive = false;
            if (copy) copyTo.Headers.ContentLength = null;
        }
        else
        {
            parsed.Framing = parsed.ContentLength >= 0 ? BodyFraming.Length : BodyFraming.UntilClose;
            if (parsed.Framing == BodyFraming.UntilClose) parsed.KeepAlive = false;
        }
        return null;
    }

    /// <summary>The next line without its line ending; the head always ends in one, so every line has one.</summary>
    private static ReadOnlySpan<byte> NextLine(ref ReadOnlySpan<byte> rest)
    {
        int lf = rest.IndexOf((byte)'\n');
        var line = rest[..lf];
        rest = rest[(lf + 1)..];
        return line.Length > 0 && line[^1] == '\r' ? line[..^1] : line;
    }

    private static bool IsFieldValue(ReadOnlySpan<byte> value) => !value.ContainsAnyExcept(FieldValueBytes);

    private static byte[] FieldValueAlphabet()
    {
        var bytes = new byte[1 + 0x7F - 0x20];
        bytes[0] = (byte)'\t';
        for (int b = 0x20; b < 0x7F; b++) bytes[1 + b - 0x20] = (byte)b;
        return bytes;
    }

    private static bool IsHopByHop(ReadOnlySpan<byte> name)
    {
        foreach (var hop in HopByHop)
            if (name.Length == hop.Length && Ascii.EqualsIgnoreCase(name, hop)) return true;
        return false;
    }

    private static string NameOf(ReadOnlySpan<byte> name)
    {
        foreach (var common in CommonNames)
            if (name.Length == common.Length && Ascii.EqualsIgnoreCase(name, common)) return common;
        return Encoding.ASCII.GetString(name);
    }

    private static ReadOnlySpan<byte> LastToken(ReadOnlySpan<byte> list) => list[(list.LastIndexOf((byte)',') + 1)..].Trim(" \t"u8);

    private static bool HasToken(ReadOnlySpan<byte> list, ReadOnlySpan<byte> token)
    {
        foreach (var range in list.Split((byte)','))
            if (Ascii.EqualsIgnoreCase(list[range].Trim(" \t"u8), token)) return true;
        return false;
    }
}
