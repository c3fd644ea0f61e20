namespace Keystone.Routing;

/// <summary>All routes of a snapshot: picks the host's trees, then the route within them.</summary>
/// <remarks>
/// Hosts: exact name, then wildcards ("*.example.com" matches any depth of subdomain but not example.com), most
/// specific first, then routes without a host. The first tree that finds a route wins, so a host-less route still
/// serves a host whose own routes lack that path (as in Traefik and Kong). Build from one thread, then share read-only.
/// </remarks>
public sealed class RouteTable<T>
    where T : class
{
    private readonly Dictionary<string, RadixTree<T>> _exact = new(StringComparer.OrdinalIgnoreCase);

    // Keyed by the suffix with its dot (".example.com") so a request host is probed label by label, never scanned.
    private readonly Dictionary<string, RadixTree<T>> _wildcard = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, RadixTree<T>>.AlternateLookup<ReadOnlySpan<char>> _exactBySpan;
    private readonly Dictionary<string, RadixTree<T>>.AlternateLookup<ReadOnlySpan<char>> _wildcardBySpan;
    private RadixTree<T>? _any;

    public RouteTable()
    {
        _exactBySpan = _exact.GetAlternateLookup<ReadOnlySpan<char>>();
        _wildcardBySpan = _wildcard.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Number of routes added (a route added for two hosts counts twice).</summary>
    public int Count { get; private set; }

    /// <summary>Adds a route for <paramref name="host"/> (null or empty: any host); returns null, or the error to report.</summary>
    public string? Add(string? host, string pattern, MethodSet methods, T value, string routeName)
    {
        if (string.IsNullOrEmpty(host))
        {
            return Added((_any ??= new RadixTree<T>()).Add(pattern, methods, value, routeName));
        }

        if (CheckHost(host, out string key, out bool wildcard) is { } invalid)
        {
            return $"route '{routeName}' has an invalid host '{host}': {invalid}";
        }

        var trees = wildcard ? _wildcard : _exact;
        if (trees.TryGetValue(key, out var tree))
        {
            return Added(tree.Add(pattern, methods, value, routeName));
        }

        // The tree joins the table only with its first route, so a rejected route leaves nothing behind.
        tree = new RadixTree<T>();
        string? error = Added(tree.Add(pattern, methods, value, routeName));
        if (error is null)
        {
            trees.Add(key, tree);
        }

        return error;
    }

    /// <summary>Finds the route for a request; <paramref name="host"/> is the Host header as sent (port and case do not matter).</summary>
    /// <param name="paramValues">Receives parameter value ranges inside <paramref name="path"/>; see <see cref="RadixTree{T}.Lookup"/>.</param>
    public RouteMatch<T> Match(ReadOnlySpan<char> host, ReadOnlySpan<char> path, MethodSet method, Span<Range> paramValues)
    {
        host = HostName(host);
        var allowed = MethodSet.None;
        RouteMatch<T> match;
        if (host.Length > 0)
        {
            if (_exact.Count > 0 && _exactBySpan.TryGetValue(host, out var exact)
                && Found(match = exact.Lookup(path, method, paramValues), ref allowed))
            {
                return match;
            }

            if (_wildcard.Count > 0 && host[0] != '[')
            {
                // Leftmost dot first gives the longest suffix, i.e. the most specific wildcard; index 0 is skipped
                // so "*.example.com" needs at least one label in front of ".example.com".
                for (int dot = host.IndexOf('.'); dot > 0; dot = NextDot(host, dot))
                {
                    if (_wildcardBySpan.TryGetValue(host[dot..], out var wildcard)
                        && Found(match = wildcard.Lookup(path, method, paramValues), ref allowed))
                    {
                        return match;
                    }
                }
            }
        }

        if (_any is not null && Found(match = _any.Lookup(path, method, paramValues), ref allowed))
        {
            return match;
        }

        return allowed != MethodSet.None ? RouteMatch<T>.MethodNotAllowed(allowed) : RouteMatch<T>.NotFound;
    }

    /// <summary>The host name of a Host header: no port, no trailing dot; an IPv6 literal keeps its brackets.</summary>
    internal static ReadOnlySpan<char> HostName(ReadOnlySpan<char> host)
    {
        if (host.Length > 0 && host[0] == '[')
        {
            int close = host.IndexOf(']');
            return close < 0 ? host : host[..(close + 1)];
        }

        // More than one colon is a bare IPv6 address (not valid in a Host header): there is no port to strip.
        int colon = host.IndexOf(':');
        if (colon >= 0 && host[(colon + 1)..].IndexOf(':') < 0)
        {
            host = host[..colon];
        }

        return host.Length > 1 && host[^1] == '.' ? host[..^1] : host;
    }

    private static int NextDot(ReadOnlySpan<char> host, int dot)
    {
        int next = host[(dot + 1)..].IndexOf('.');
        return next < 0 ? -1 : dot + 1 + next;
    }

    private static bool Found(in RouteMatch<T> match, ref MethodSet allowed)
    {
        allowed |= match.Allowed;
        return match.Kind == MatchKind.Found;
    }

    private string? Added(string? error)
    {
        if (error is null)
        {
            Count++;
        }

        return error;
    }

    // A host is a DNS name, an IPv4 address, a bracketed IPv6 literal, or "*." followed by a DNS name.
    private static string? CheckHost(string host, out string key, out bool wildcard)
    {
        key = host.Length > 1 && host[^1] == '.' ? host[..^1] : host;
        wildcard = key.StartsWith("*.", StringComparison.Ordinal);
        if (wildcard)
        {
            key = key[1..];
        }

        if (key.StartsWith('['))
        {
            bool valid = key.Length > 2 && key[^1] == ']'
                && !key.AsSpan(1, key.Length - 2).ContainsAnyExcept("0123456789abcdefABCDEF:.");
            return valid ? null : "an IPv6 address must look like '[::1]'";
        }

        if (key.Contains(':', StringComparison.Ordinal))
        {
            return "a host must not include a port (ports are ignored when matching)";
        }

        if (key.Contains('*', StringComparison.Ordinal))
        {
            return "'*' is only allowed as the whole first label, as in '*.example.com'";
        }

        foreach (string label in (wildcard ? key[1..] : key).Split('.'))
        {
            if (label.Length == 0 || label.AsSpan().ContainsAnyExcept(HostChars))
            {
                return "a host must be dot-separated labels of letters, digits, '-' and '_'";
            }
        }

        return null;
    }

    private static readonly System.Buffers.SearchValues<char> HostChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
}
