using System.Buffers;

namespace Keystone.Configuration;

/// <summary>Rules for names and HTTP tokens written in config: names become metric labels, so they stay plain.</summary>
public static class Names
{
    public static bool IsValid(string name)
    {
        if (name.Length == 0 || name.Length > 100) return false;
        foreach (var c in name)
            if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_' && c != '.') return false;
        return true;
    }

    /// <summary>The characters of an RFC 9110 token; the upstream response parser checks header names against them too.</summary>
    public const string TokenCharacters = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    private static readonly SearchValues<char> TokenChars = SearchValues.Create(TokenCharacters);

    /// <summary>RFC 9110 token: what a header name or method may contain. Vectorised: it runs on every request header.</summary>
    public static bool IsToken(ReadOnlySpan<char> text) => !text.IsEmpty && !text.ContainsAnyExcept(TokenChars);

    /// <summary>A header value may not smuggle a second header or line: no CR, LF or NUL.</summary>
    public static bool IsSafeHeaderValue(ReadOnlySpan<char> text) => text.IndexOfAny('\r', '\n', '\0') < 0;
}
