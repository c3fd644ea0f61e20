using Keystone.Routing;

namespace Keystone.Tests.Routing;

internal enum SegmentKind
{
    Static,
    Param,
    CatchAll,
}

internal sealed record Segment(SegmentKind Kind, string Text)
{
    public override string ToString() => Kind switch
    {
        SegmentKind.Static => Text,
        SegmentKind.Param => "{" + Text + "}",
        _ => Text == "*" ? "*" : "{*" + Text + "}",
    };
}

internal sealed record RouteSpec(Segment[] Segments, MethodSet Methods)
{
    public string Pattern => "/" + string.Join("/", Segments.Select(s => s.ToString()));

    // Two routes have the same shape when only their parameter names differ.
    public string Shape => string.Join("/", Segments.Select(s => s.Kind switch
    {
        SegmentKind.Static => "=" + s.Text,
        SegmentKind.Param => "{}",
        _ => "{*}",
    }));

    public override string ToString() => $"{Methods} {Pattern}";
}

/// <summary>
/// The obvious, slow router the radix tree must agree with: try every route, rank the ones whose path matches
/// segment by segment (static &lt; parameter &lt; catch-all, a pattern that ends beats one that goes on), pick the best.
/// </summary>
internal static class ReferenceRouter
{
    public static bool Accepts(IEnumerable<RouteSpec> accepted, RouteSpec route)
    {
        var names = route.Segments.Where(s => s.Kind != SegmentKind.Static).Select(s => s.Text).ToList();
        if (names.Count != names.Distinct().Count())
        {
            return false;
        }

        return !accepted.Any(other => other.Shape == route.Shape && (other.Methods & route.Methods) != 0);
    }

    public static Resolved Match(IReadOnlyList<(string Name, RouteSpec Spec)> routes, string path, MethodSet method)
    {
        string[] segments = path[1..].Split('/');
        (string Name, int[] Rank, int How, Dictionary<string, string> Params)? best = null;
        var allowed = MethodSet.None;
        foreach (var (name, spec) in routes)
        {
            if (!TryMatch(spec, segments, out var rank, out var values))
            {
                continue;
            }

            // HEAD served by a GET route ranks after an explicit HEAD route of the same shape.
            int how = Accepts(spec.Methods, method);
            if (how < 0)
            {
                allowed |= spec.Methods | ((spec.Methods & MethodSet.Get) != 0 ? MethodSet.Head : 0);
                continue;
            }

            int order = best is null ? -1 : Compare(rank, best.Value.Rank);
            if (order < 0 || (order == 0 && how < best!.Value.How))
            {
                best = (name, rank, how, values);
            }
        }

        if (best is { } found)
        {
            return new Resolved(MatchKind.Found, found.Name, found.Params, MethodSet.None);
        }

        return allowed != MethodSet.None
            ? new Resolved(MatchKind.MethodNotAllowed, null, [], allowed)
            : new Resolved(MatchKind.NotFound, null, [], MethodSet.None);
    }

    // 0: the route names the method; 1: HEAD through GET; -1: not accepted.
    private static int Accepts(MethodSet methods, MethodSet method)
    {
        if (method == MethodSet.None)
        {
            return methods == MethodSet.All ? 0 : -1;
        }

        if ((methods & method) != 0)
        {
            return 0;
        }

        return method == MethodSet.Head && (methods & MethodSet.Get) != 0 ? 1 : -1;
    }

    private static bool TryMatch(RouteSpec spec, string[] segments, out int[] rank, out Dictionary<string, string> values)
    {
        var pattern = spec.Segments;
        bool catchAll = pattern[^1].Kind == SegmentKind.CatchAll;
        int fixedCount = catchAll ? pattern.Length - 1 : pattern.Length;
        rank = new int[pattern.Length];
        values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (catchAll ? segments.Length < fixedCount : segments.Length != fixedCount)
        {
            return false;
        }

        for (int i = 0; i < fixedCount; i++)
        {
            if (pattern[i].Kind == SegmentKind.Static)
            {
                if (segments[i] != pattern[i].Text)
                {
                    return false;
                }
            }
            else if (segments[i].Length == 0)
            {
                return false;
            }
            else
            {
                rank[i] = 1;
                values[pattern[i].Text] = segments[i];
            }
        }

        if (catchAll)
        {
            rank[^1] = 2;
            values[pattern[^1].Text] = string.Join("/", segments[fixedCount..]);
        }

        return true;
    }

    // Lexicographic; when one rank is a prefix of the other, the shorter (a pattern that ended) is better.
    private static int Compare(int[] a, int[] b)
    {
        for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
        {
            if (a[i] != b[i])
            {
                return a[i].CompareTo(b[i]);
            }
        }

        return a.Length.CompareTo(b.Length);
    }
}
