namespace Keystone.Routing;

/// <summary>A validated route pattern split into the pieces the radix tree inserts: static text, parameters, a catch-all.</summary>
internal sealed class RoutePattern
{
    private RoutePattern(PatternPart[] parts, string[] paramNames)
    {
        Parts = parts;
        ParamNames = paramNames;
    }

    /// <summary>Static text and parameters in order; static text never sits next to static text.</summary>
    public PatternPart[] Parts { get; }

    public string[] ParamNames { get; }

    /// <summary>Parses "/users/{id}", "/files/{*rest}" or "/files/*"; returns null with the reason when the pattern is invalid.</summary>
    public static RoutePattern? Parse(string pattern, out string? error)
    {
        error = Check(pattern);
        if (error is not null)
        {
            return null;
        }

        var parts = new List<PatternPart>();
        var names = new List<string>();
        string[] segments = pattern[1..].Split('/');
        string text = string.Empty;
        for (int i = 0; i < segments.Length; i++)
        {
            string segment = segments[i];
            bool last = i == segments.Length - 1;
            string? catchAll = segment == "*" ? "*" : segment.StartsWith("{*", StringComparison.Ordinal) ? segment[2..^1] : null;
            if (catchAll is not null)
            {
                if (!last)
                {
                    error = "a catch-all must be the last segment";
                    return null;
                }

                // The slash before a catch-all is optional in the path ("/files" matches "/files/{*rest}"),
                // so it stays out of the static text and the catch-all consumes it.
                parts.Add(new PatternPart(PartKind.Static, text));
                parts.Add(new PatternPart(PartKind.CatchAll, catchAll));
                error = AddName(names, catchAll);
                return error is null ? new RoutePattern([.. parts], [.. names]) : null;
            }

            if (segment.StartsWith('{'))
            {
                string name = segment[1..^1];
                parts.Add(new PatternPart(PartKind.Static, text + "/"));
                parts.Add(new PatternPart(PartKind.Param, name));
                text = string.Empty;
                error = AddName(names, name);
                if (error is not null)
                {
                    return null;
                }
            }
            else
            {
                text += "/" + segment;
            }
        }

        if (text.Length > 0)
        {
            parts.Add(new PatternPart(PartKind.Static, text));
        }

        return new RoutePattern([.. parts], [.. names]);
    }

    // Everything that can be rejected by looking at one segment at a time.
    private static string? Check(string pattern)
    {
        if (string.IsNullOrEmpty(pattern) || pattern[0] != '/')
        {
            return "a pattern must start with '/'";
        }

        if (pattern.AsSpan().IndexOfAny('?', '#') >= 0)
        {
            return "a pattern must not contain '?' or '#' (it matches the path only)";
        }

        foreach (string segment in pattern[1..].Split('/'))
        {
            int open = segment.IndexOf('{', StringComparison.Ordinal);
            int close = segment.IndexOf('}', StringComparison.Ordinal);
            if (open < 0 && close < 0)
            {
                if (segment.Contains('*', StringComparison.Ordinal) && segment != "*")
                {
                    return "'*' is only allowed as a whole last segment";
                }

                continue;
            }

            if (open >= 0 && close < 0)
            {
                return $"unterminated '{{' in '{segment}'";
            }

            if (open != 0 || close != segment.Length - 1 || segment.AsSpan(1, segment.Length - 2).IndexOfAny('{', '}') >= 0)
            {
                return $"a parameter must be a whole segment, got '{segment}'";
            }

            string name = segment.StartsWith("{*", StringComparison.Ordinal) ? segment[2..^1] : segment[1..^1];
            if (name.Length == 0)
            {
                return $"empty parameter name in '{segment}'";
            }

            foreach (char c in name)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c is not '_' and not '-' and not '.')
                {
                    return $"parameter name '{name}' may only contain letters, digits, '_', '-' and '.'";
                }
            }
        }

        return null;
    }

    private static string? AddName(List<string> names, string name)
    {
        if (names.Contains(name))
        {
            return $"parameter '{name}' appears twice";
        }

        names.Add(name);
        return null;
    }
}

internal enum PartKind : byte
{
    Static,
    Param,
    CatchAll,
}

/// <summary>Static text, or the name of a parameter or catch-all.</summary>
internal readonly record struct PatternPart(PartKind Kind, string Text);
