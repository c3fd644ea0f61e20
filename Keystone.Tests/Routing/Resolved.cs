using Keystone.Routing;

namespace Keystone.Tests.Routing;

/// <summary>A lookup result with parameter values cut out of the path, so tests compare plain values.</summary>
internal sealed record Resolved(MatchKind Kind, string? Value, Dictionary<string, string> Params, MethodSet Allowed)
{
    public static Resolved From(RouteMatch<string> match, string path, ReadOnlySpan<Range> ranges)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        Assert.Equal(match.ParamNames.Length, match.ParamCount);
        for (int i = 0; i < match.ParamCount; i++)
        {
            values[match.ParamNames[i]] = path[ranges[i]];
        }

        return new Resolved(match.Kind, match.Value, values, match.Allowed);
    }

    public static Resolved Lookup(RadixTree<string> tree, string path, MethodSet method)
    {
        Span<Range> ranges = stackalloc Range[16];
        return From(tree.Lookup(path, method, ranges), path, ranges);
    }

    public static Resolved Match(RouteTable<string> table, string host, string path, MethodSet method = MethodSet.Get)
    {
        Span<Range> ranges = stackalloc Range[16];
        return From(table.Match(host, path, method, ranges), path, ranges);
    }

    /// <summary>A tree whose route values are their names; fails the test if any route is rejected.</summary>
    public static RadixTree<string> Tree(params (string Name, string Pattern, MethodSet Methods)[] routes)
    {
        var tree = new RadixTree<string>();
        foreach (var (name, pattern, methods) in routes)
        {
            Assert.Null(tree.Add(pattern, methods, name, name));
        }

        return tree;
    }
}
