using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Primitives;

namespace Keystone.Proxy;

/// <summary>Where the key of a hashed request comes from.</summary>
public enum HashKeySource { ClientIp, Header, Cookie }

/// <summary>
/// What a consistent-hash upstream hashes, parsed once from <c>client_ip</c>, <c>header:&lt;name&gt;</c> or
/// <c>cookie:&lt;name&gt;</c>; reads the key of a request without allocating.
/// </summary>
public readonly struct HashKey
{
    /// <summary>Scratch a caller of <see cref="TryRead"/> must pass: room for any IPv6 address with a scope id.</summary>
    public const int ScratchChars = 64;

    private const string Expected = "client_ip, header:<name> or cookie:<name>";

    private HashKey(HashKeySource source, string? name)
    {
        Source = source;
        Name = name;
    }

    public HashKeySource Source { get; }

    /// <summary>The header or cookie name; null for <see cref="HashKeySource.ClientIp"/>.</summary>
    public string? Name { get; }

    public static bool TryParse(string text, out HashKey key, [NotNullWhen(false)] out string? error)
    {
        key = default;
        error = null;
        if (text == "client_ip")
        {
            key = new HashKey(HashKeySource.ClientIp, null);
            return true;
        }
        int colon = text.IndexOf(':');
        var kind = colon < 0 ? text : text[..colon];
        HashKeySource source;
        switch (kind)
        {
            case "header": source = HashKeySource.Header; break;
            case "cookie": source = HashKeySource.Cookie; break;
            default:
                error = text.Length == 0 ? $"hash_on is empty; use {Expected}" : $"hash_on '{text}' is not {Expected}";
                return false;
        }
        var name = colon < 0 ? "" : text[(colon + 1)..];
        if (name.Length == 0)
        {
            error = $"hash_on '{text}' needs a {kind} name after '{kind}:', e.g. {kind}:{(source == HashKeySource.Header ? "X-User-Id" : "session")}";
            return false;
        }
        foreach (char c in name)
        {
            if (!IsTokenChar(c))
            {
                error = $"hash_on '{text}': '{c}' cannot appear in a {kind} name";
                return false;
            }
        }
        key = new HashKey(source, name);
        return true;
    }

    /// <summary>For text the config loader already accepted; throws on anything else.</summary>
    public static HashKey Parse(string text) =>
        TryParse(text, out var key, out var error) ? key : throw new ArgumentException(error, nameof(text));

    /// <summary>
    /// The request's key: the client address formatted into <paramref name="scratch"/> (at least <see cref="ScratchChars"/>
    /// long), the first value of the header, or the cookie's value. False when the request has none or it is empty.
    /// </summary>
    public bool TryRead(HttpContext context, Span<char> scratch, out ReadOnlySpan<char> key)
    {
        key = default;
        switch (Source)
        {
            case HashKeySource.ClientIp:
                if (context.Connection.RemoteIpAddress is not { } address || !address.TryFormat(scratch, out int written)) return false;
                key = scratch[..written];
                // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; hash them as the IPv4 address they are.
                if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv4MappedToIPv6)
                    key = key[(key.LastIndexOf(':') + 1)..];
                return true;
            case HashKeySource.Header:
                var values = context.Request.Headers[Name!];
                if (values.Count == 0) return false;
                key = values[0];
                return !key.IsEmpty;
            default:
                return TryFindCookie(context.Request.Headers.Cookie, Name!, out key);
        }
    }

    /// <summary>The hash of the request's key; false when it has none.</summary>
    public bool TryHash(HttpContext context, out ulong hash)
    {
        Span<char> scratch = stackalloc char[ScratchChars];
        if (TryRead(context, scratch, out var key))
        {
            hash = Hash(key);
            return true;
        }
        hash = 0;
        return false;
    }

    /// <summary>
    /// A 64-bit hash that is the same in every process and on every machine (unlike <see cref="string.GetHashCode()"/>),
    /// so a key keeps its target across restarts and between instances: FNV-1a over the UTF-16 code units, then the
    /// murmur3 finalizer, because FNV alone leaves short, similar keys bunched on the ring.
    /// </summary>
    public static ulong Hash(ReadOnlySpan<char> text)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in text)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdUL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53UL;
        h ^= h >> 33;
        return h;
    }

    public override string ToString() => Source switch
    {
        HashKeySource.ClientIp => "client_ip",
        HashKeySource.Header => "header:" + Name,
        _ => "cookie:" + Name,
    };

    /// <summary>Scans <c>a=1; sid=xyz</c> pairs for <paramref name="name"/> (case-sensitive, as cookie names are) without building a dictionary.</summary>
    internal static bool TryFindCookie(StringValues headers, string name, out ReadOnlySpan<char> value)
    {
        // HTTP/2 clients may split cookies over several header fields.
        for (int i = 0; i < headers.Count; i++)
        {
            var rest = headers[i].AsSpan();
            while (!rest.IsEmpty)
            {
                int end = rest.IndexOf(';');
                var pair = end < 0 ? rest : rest[..end];
                rest = end < 0 ? default : rest[(end + 1)..];
                int equals = pair.IndexOf('=');
                if (equals < 0 || !pair[..equals].Trim(" \t").SequenceEqual(name)) continue;
                var found = pair[(equals + 1)..].Trim(" \t");
                if (found.Length >= 2 && found[0] == '"' && found[^1] == '"') found = found[1..^1];
                if (found.IsEmpty) continue;
                value = found;
                return true;
            }
        }
        value = default;
        return false;
    }

    // RFC 9110 tchar: what a header name (and a cookie name, RFC 6265) may be made of.
    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';
}
