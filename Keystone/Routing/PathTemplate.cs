namespace Keystone.Routing;

/// <summary>
/// A <c>rewrite:</c> target such as <c>/v2/users/{id}</c>, compiled once into literal pieces and
/// indexes of the route's parameters so that rewriting a request only copies text.
/// </summary>
public sealed class PathTemplate
{
    private readonly string[] _literals;   // literal before each parameter, plus the tail
    private readonly int[] _paramIndexes;  // index into the route's parameters, in pattern order

    private PathTemplate(string[] literals, int[] paramIndexes)
    {
        _literals = literals;
        _paramIndexes = paramIndexes;
    }

    public int ParameterCount => _paramIndexes.Length;

    /// <summary>Returns null when <paramref name="template"/> is a valid rewrite for a route with <paramref name="pattern"/>.</summary>
    public static string? Validate(string template, string pattern) => TryCompile(template, pattern, out _);

    public static PathTemplate Compile(string template, string pattern) =>
        TryCompile(template, pattern, out var compiled) is { } error ? throw new ArgumentException(error) : compiled!;

    /// <summary>Names of a path pattern's parameters in order: <c>{id}</c> → id, <c>{*rest}</c> → rest, trailing <c>*</c> → *.</summary>
    public static List<string> ParameterNames(string pattern)
    {
        var names = new List<string>();
        foreach (var segment in pattern.Split('/'))
        {
            if (segment == "*") names.Add("*");
            else if (segment.Length > 2 && segment[0] == '{' && segment[^1] == '}')
                names.Add(segment[1..^1].TrimStart('*'));
        }
        return names;
    }

    /// <summary>Appends the rewritten path, reading parameter values out of <paramref name="path"/>.</summary>
    public void Write(ref UpstreamPathWriter writer, ReadOnlySpan<char> path, ReadOnlySpan<Range> values)
    {
        for (int i = 0; i < _paramIndexes.Length; i++)
        {
            writer.AppendLiteral(_literals[i]);
            writer.AppendDecoded(path[values[_paramIndexes[i]]]);
        }
        writer.AppendLiteral(_literals[^1]);
    }

    private static string? TryCompile(string template, string pattern, out PathTemplate? compiled)
    {
        compiled = null;
        if (!template.StartsWith('/')) return "must start with '/'";
        if (template.Contains('?') || template.Contains('#')) return "may not contain '?' or '#'";
        foreach (var segment in template.Split('/'))
            if (segment is "." or "..") return "may not contain '.' or '..' segments";

        var names = ParameterNames(pattern);
        var literals = new List<string>();
        var indexes = new List<int>();
        int pos = 0;
        while (true)
        {
            int open = template.IndexOf('{', pos);
            if (open < 0) break;
            int close = template.IndexOf('}', open);
            if (close < 0) return "has an unclosed '{'";
            var name = template[(open + 1)..close].TrimStart('*');
            if (name.Length == 0) name = "*"; // {*} names chi's unnamed catch-all
            int index = names.IndexOf(name);
            if (index < 0) return $"uses '{{{name}}}', which the route's path does not define";
            literals.Add(template[pos..open]);
            indexes.Add(index);
            pos = close + 1;
        }
        if (template.IndexOf('}', pos) >= 0) return "has an unmatched '}'";
        literals.Add(template[pos..]);
        compiled = new PathTemplate([.. literals], [.. indexes]);
        return null;
    }
}
