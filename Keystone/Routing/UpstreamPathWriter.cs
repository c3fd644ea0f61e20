using System.Buffers;
using System.Text;

namespace Keystone.Routing;

/// <summary>
/// Builds the path sent upstream from Kestrel's decoded request path, percent-encoding what must be
/// encoded. An encoded slash (<c>%2F</c>, left encoded by Kestrel) stays encoded so it never becomes a
/// separator, and <see cref="ClimbsOut"/> refuses any <c>.</c> or <c>..</c> segment, so a parameter can
/// never walk out of the route's prefix on the upstream server.
/// </summary>
public struct UpstreamPathWriter
{
    private char[] _buffer;
    private int _length;

    public UpstreamPathWriter(int capacity)
    {
        _buffer = ArrayPool<char>.Shared.Rent(Math.Max(capacity, 64));
        _length = 0;
    }

    public readonly ReadOnlySpan<char> Written => _buffer.AsSpan(0, _length);

    /// <summary>Text from config: already in URI form, copied as is.</summary>
    public void AppendLiteral(ReadOnlySpan<char> text)
    {
        Ensure(text.Length);
        text.CopyTo(_buffer.AsSpan(_length));
        _length += text.Length;
    }

    /// <summary>Text from the decoded request path: encoded where the URI syntax requires.</summary>
    public void AppendDecoded(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (IsPathChar(c))
            {
                Ensure(1);
                _buffer[_length++] = c;
            }
            else if (c == '%' && i + 2 < text.Length && text[i + 1] == '2' && (text[i + 2] is 'F' or 'f'))
            {
                AppendLiteral("%2F");
                i += 2;
            }
            else if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                AppendEncoded(new Rune(c, text[i + 1]));
                i++;
            }
            else
            {
                AppendEncoded(Rune.IsValid(c) ? new Rune(c) : Rune.ReplacementChar);
            }
        }
    }

    /// <summary>
    /// True when a segment is "." or "..". Segments are split on '/', on an encoded slash and on an encoded
    /// backslash, because upstreams that decode before normalising (Windows and many file servers treat '\' as
    /// a separator) would otherwise climb out of the route's prefix.
    /// </summary>
    public readonly bool ClimbsOut()
    {
        var path = Written;
        int start = 0;
        for (int i = 0; i <= path.Length; i++)
        {
            int separator = i == path.Length || path[i] == '/' ? 1 : IsEncodedSeparator(path, i) ? 3 : 0;
            if (separator == 0) continue;
            if (path[start..i] is "." or "..") return true;
            start = i + separator;
            i += separator - 1;
        }
        return false;
    }

    private static bool IsEncodedSeparator(ReadOnlySpan<char> path, int i) =>
        path[i] == '%' && i + 2 < path.Length
        && ((path[i + 1] == '2' && path[i + 2] is 'F' or 'f') || (path[i + 1] == '5' && path[i + 2] is 'C' or 'c'));

    public override readonly string ToString() => new(Written);

    public void Dispose()
    {
        ArrayPool<char>.Shared.Return(_buffer);
        _buffer = [];
    }

    private void AppendEncoded(Rune rune)
    {
        Span<byte> utf8 = stackalloc byte[4];
        int n = rune.EncodeToUtf8(utf8);
        Ensure(n * 3);
        for (int j = 0; j < n; j++)
        {
            _buffer[_length++] = '%';
            _buffer[_length++] = "0123456789ABCDEF"[utf8[j] >> 4];
            _buffer[_length++] = "0123456789ABCDEF"[utf8[j] & 0xF];
        }
    }

    // RFC 3986 pchar minus '%', plus '/': unreserved, sub-delims, ':' and '@'.
    private static bool IsPathChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '!' or '$' or '&' or '\'' or '(' or ')'
            or '*' or '+' or ',' or ';' or '=' or ':' or '@' or '/';

    private void Ensure(int extra)
    {
        if (_length + extra <= _buffer.Length) return;
        var bigger = ArrayPool<char>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + extra));
        _buffer.AsSpan(0, _length).CopyTo(bigger);
        ArrayPool<char>.Shared.Return(_buffer);
        _buffer = bigger;
    }
}
