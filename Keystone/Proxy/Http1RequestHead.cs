using System.Buffers;
using System.Text;
using Keystone.Configuration;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace Keystone.Proxy;

/// <summary>
/// Writes the request line and headers sent upstream as bytes, in one buffer, with the same edits the
/// <see cref="UpstreamRequestTransformer"/> makes on YARP's path: hop-by-hop headers dropped, Host, the
/// X-Forwarded-* trio, the request id and the route's header edits.
/// </summary>
internal static class Http1RequestHead
{
    /// <summary>Headers about this hop, and those the gateway writes itself.</summary>
    private static readonly string[] Skipped =
    [
        .. Http1ResponseHead.HopByHop, HeaderNames.Host, UpstreamRequestTransformer.XForwardedFor,
        UpstreamRequestTransformer.XForwardedProto, UpstreamRequestTransformer.XForwardedHost, Observability.RequestId.Header,
    ];

    /// <summary>What may not appear in a request target: space would end it, control characters corrupt it.</summary>
    private static readonly SearchValues<char> NotInTarget = SearchValues.Create(ControlsAndSpace());

    /// <summary>The head in a rented buffer (return it to <see cref="ArrayPool{T}.Shared"/>); null when a value would break the framing.</summary>
    public static byte[]? Write(HttpContext context, Upstream upstream, Target target, string path, string? query, string requestId,
        UpstreamRequestTransformer edits, out int length)
    {
        var request = context.Request;
        // The gateway and scripts hand over encoded paths; this is the last line of defence before the wire.
        if (path.AsSpan().IndexOfAny(NotInTarget) >= 0 || query.AsSpan().IndexOfAny(NotInTarget) >= 0 || target.BasePath.AsSpan().IndexOfAny(NotInTarget) >= 0)
        {
            length = 0;
            return null;
        }
        var writer = new HeadWriter(ArrayPool<byte>.Shared.Rent(4096));
        writer.Ascii(request.Method);
        writer.Byte((byte)' ');
        writer.Text(target.BasePath);
        writer.Text(path);
        if (!string.IsNullOrEmpty(query)) writer.Text(query);
        writer.Ascii(" HTTP/1.1\r\n");

        var host = upstream.PreserveHost && request.Host.HasValue ? request.Host.Value : target.Authority;
        bool safe = writer.Header(HeaderNames.Host, host);
        foreach (var header in request.Headers)
        {
            if (IsSkipped(header.Key, header.Value, edits)) continue;
            foreach (var value in header.Value) safe &= writer.Header(header.Key, value);
        }
        // The route's remove_headers and set_headers apply to these too, as on YARP's path.
        if (!IsEdited(UpstreamRequestTransformer.XForwardedFor, edits) && UpstreamRequestTransformer.ForwardedFor(context) is { } forwardedFor)
            safe &= writer.Header(UpstreamRequestTransformer.XForwardedFor, forwardedFor);
        if (!IsEdited(UpstreamRequestTransformer.XForwardedProto, edits))
            safe &= writer.Header(UpstreamRequestTransformer.XForwardedProto, request.Scheme);
        if (request.Host.HasValue && !IsEdited(UpstreamRequestTransformer.XForwardedHost, edits))
            safe &= writer.Header(UpstreamRequestTransformer.XForwardedHost, request.Host.Value);
        if (!IsEdited(Observability.RequestId.Header, edits)) safe &= writer.Header(Observability.RequestId.Header, requestId);
        foreach (var (name, value) in edits.SetHeaders) safe &= writer.Header(name, value);
        writer.Ascii("\r\n");

        length = writer.Length;
        if (safe) return writer.Buffer;
        ArrayPool<byte>.Shared.Return(writer.Buffer);
        return null;
    }

    private static bool IsSkipped(string name, StringValues value, UpstreamRequestTransformer edits)
    {
        foreach (var skipped in Skipped)
            if (name.Equals(skipped, StringComparison.OrdinalIgnoreCase))
                // gRPC needs "TE: trailers" end to end; every other TE value is about this hop.
                return !(skipped == HeaderNames.TE && value.Count == 1 && string.Equals(value[0], "trailers", StringComparison.OrdinalIgnoreCase));
        return IsEdited(name, edits);
    }

    /// <summary>Removed by the route, or replaced by its value.</summary>
    private static bool IsEdited(string name, UpstreamRequestTransformer edits)
    {
        foreach (var removed in edits.RemoveHeaders)
            if (name.Equals(removed, StringComparison.OrdinalIgnoreCase)) return true;
        foreach (var (set, _) in edits.SetHeaders)
            if (name.Equals(set, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    private static string ControlsAndSpace()
    {
        var chars = new char[0x22];
        for (int c = 0; c <= 0x20; c++) chars[c] = (char)c;
        chars[0x21] = '\u007f';
        return new string(chars);
    }

    /// <summary>Appends to a rented buffer, trading it for a larger one when full.</summary>
    private struct HeadWriter(byte[] buffer)
    {
        public byte[] Buffer = buffer;
        public int Length;

        public bool Header(string name, string? value)
        {
            if (value is null) return true;
            // A CR, LF or NUL would end the line early and smuggle a header or a request.
            if (!Names.IsSafeHeaderValue(name) || !Names.IsSafeHeaderValue(value)) return false;
            Ascii(name);
            Ascii(": ");
            Text(value);
            Ascii("\r\n");
            return true;
        }

        public void Ascii(string text)
        {
            Reserve(text.Length);
            Length += Encoding.Latin1.GetBytes(text, Buffer.AsSpan(Length));
        }

        /// <summary>Paths and values as UTF-8: what Kestrel decoded from UTF-8 goes back as the same bytes.</summary>
        public void Text(string text)
        {
            Reserve(Encoding.UTF8.GetMaxByteCount(text.Length));
            Length += Encoding.UTF8.GetBytes(text, Buffer.AsSpan(Length));
        }

        public void Byte(byte b)
        {
            Reserve(1);
            Buffer[Length++] = b;
        }

        private void Reserve(int count)
        {
            if (Length + count <= Buffer.Length) return;
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(Buffer.Length * 2, Length + count));
            Buffer.AsSpan(0, Length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(Buffer);
            Buffer = larger;
        }
    }
}
