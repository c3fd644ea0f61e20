namespace Keystone.Configuration;

/// <summary>
/// Finds the known key a user probably meant: keys people bring from nginx, Caddy, Traefik and the
/// Go "Keystone Gateway", then typos within a small edit distance.
/// </summary>
internal static class KeySuggestions
{
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["upstream_url"] = "upstream",
        ["proxy_pass"] = "upstream",
        ["backend"] = "upstream",
        ["service"] = "upstream",
        ["services"] = "upstreams",
        ["backends"] = "upstreams",
        ["servers"] = "targets",
        ["server"] = "targets",
        ["url"] = "targets",
        ["urls"] = "targets",
        ["prefix"] = "path_prefix",
        ["domains"] = "hosts",
        ["domain"] = "host",
        ["method"] = "methods",
        ["listen_addr"] = "listen",
        ["address"] = "listen",
        ["headers"] = "set_headers",
        ["strip_path"] = "strip_prefix",
    };

    public static string? Closest(string key, IReadOnlyList<string> allowed)
    {
        if (Aliases.TryGetValue(key, out var alias) && Contains(allowed, alias)) return alias;

        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var candidate in allowed)
        {
            int distance = Distance(key.ToLowerInvariant(), candidate);
            if (distance < bestDistance)
            {
                bestDistance = distance;
                best = candidate;
            }
        }
        return bestDistance <= Math.Max(2, key.Length / 3) ? best : null;
    }

    private static bool Contains(IReadOnlyList<string> list, string key)
    {
        foreach (var item in list)
            if (item == key) return true;
        return false;
    }

    /// <summary>Levenshtein distance; keys are short, so the quadratic table is fine.</summary>
    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
