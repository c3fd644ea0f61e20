using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Keystone.Routing;

namespace Keystone.Tests.Routing;

public sealed class RoutingPropertyTests
{
    // A small alphabet so that routes share prefixes, collide, shadow each other and conflict.
    private static readonly string[] StaticTexts = ["a", "b", "ab", "", "a%2Fb"];
    private static readonly string[] PathTexts = ["a", "b", "ab", "", "a%2Fb", "abc", "c"];
    private static readonly string[] CatchAllTails = ["", "/", "/a", "/a/b", "/ab/", "//c"];

    private static readonly MethodSet[] SingleMethods =
    [
        MethodSet.Get, MethodSet.Head, MethodSet.Post, MethodSet.Put,
        MethodSet.Delete, MethodSet.Patch, MethodSet.Options, MethodSet.Trace,
    ];

    private static readonly MethodSet[] RequestMethods = [.. SingleMethods, MethodSet.None];

    [Property(MaxTest = 500)]
    public Property Tree_agrees_with_a_naive_reference_matcher() =>
        Prop.ForAll(Arb.From(Scenarios(), Shrink), (Action<Scenario>)Check);

    private static void Check(Scenario scenario)
    {
        var tree = new RadixTree<string>();
        var accepted = new List<(string Name, RouteSpec Spec)>();
        for (int i = 0; i < scenario.Routes.Length; i++)
        {
            var spec = scenario.Routes[i];
            string name = "r" + i;
            bool expected = ReferenceRouter.Accepts(accepted.Select(r => r.Spec), spec);
            string? error = tree.Add(spec.Pattern, spec.Methods, name, name);
            Assert.True(expected == (error is null), $"Add({spec}): reference accepts={expected}, tree said {error ?? "ok"}");
            if (error is null)
            {
                accepted.Add((name, spec));
            }
        }

        // Priority must not depend on declaration order.
        var reversed = new RadixTree<string>();
        for (int i = accepted.Count - 1; i >= 0; i--)
        {
            Assert.Null(reversed.Add(accepted[i].Spec.Pattern, accepted[i].Spec.Methods, accepted[i].Name, accepted[i].Name));
        }

        foreach (var (path, method) in scenario.Requests)
        {
            string expected = Describe(ReferenceRouter.Match(accepted, path, method));
            string actual = Describe(Resolved.Lookup(tree, path, method));
            string actualReversed = Describe(Resolved.Lookup(reversed, path, method));
            if (expected != actual || expected != actualReversed)
            {
                Assert.Fail($"{method} {path}: reference {expected}, tree {actual}, tree built in reverse {actualReversed}");
            }
        }
    }

    private static string Describe(Resolved r) => r.Kind switch
    {
        MatchKind.Found => $"Found {r.Value} {{{string.Join(", ", r.Params.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}"))}}}",
        MatchKind.MethodNotAllowed => $"405 Allow: {Methods.AllowHeader(r.Allowed)}",
        _ => "404",
    };

    private static Gen<Scenario> Scenarios() =>
        from routes in Gen.Choose(1, 8).SelectMany(n => Gen.ArrayOf(Routes(), n))
        from requests in Gen.ArrayOf(Requests(routes), 12)
        select new Scenario(routes, requests);

    private static Gen<RouteSpec> Routes() =>
        from count in Gen.Choose(1, 3)
        from leading in Gen.ArrayOf(SegmentGen(last: false), count - 1)
        from last in SegmentGen(last: true)
        from methods in Gen.Frequency(
            (1, Gen.Constant(MethodSet.All)),
            (3, Gen.Elements(SingleMethods)),
            (2, Gen.Choose(1, 255).Select(m => (MethodSet)m)))
        select new RouteSpec([.. leading, last], methods);

    private static Gen<Segment> SegmentGen(bool last)
    {
        var text = Gen.Elements(StaticTexts).Select(t => new Segment(SegmentKind.Static, t));
        var param = Gen.Elements("x", "y").Select(n => new Segment(SegmentKind.Param, n));
        var catchAll = Gen.Elements("rest", "*").Select(n => new Segment(SegmentKind.CatchAll, n));
        return last ? Gen.Frequency((5, text), (3, param), (2, catchAll)) : Gen.Frequency((5, text), (3, param));
    }

    // Half the paths are random, half are built from a route so that most lookups hit something.
    private static Gen<(string Path, MethodSet Method)> Requests(RouteSpec[] routes) =>
        from path in Gen.Frequency((1, RandomPath()), (1, Gen.Elements(routes).SelectMany(PathFor)))
        from method in Gen.Elements(RequestMethods)
        select (path, method);

    private static Gen<string> RandomPath() =>
        from count in Gen.Choose(1, 4)
        from segments in Gen.ArrayOf(Gen.Elements(PathTexts), count)
        select "/" + string.Join("/", segments);

    private static Gen<string> PathFor(RouteSpec route) =>
        from paramValues in Gen.ArrayOf(Gen.Elements(PathTexts), route.Segments.Length)
        from tail in Gen.Elements(CatchAllTails)
        select Build(route, paramValues, tail);

    private static string Build(RouteSpec route, string[] paramValues, string tail)
    {
        var path = new System.Text.StringBuilder();
        for (int i = 0; i < route.Segments.Length; i++)
        {
            var segment = route.Segments[i];
            if (segment.Kind == SegmentKind.CatchAll)
            {
                path.Append(tail);
            }
            else
            {
                path.Append('/').Append(segment.Kind == SegmentKind.Static ? segment.Text : paramValues[i]);
            }
        }

        return path.Length == 0 ? "/" : path.ToString();
    }

    private static IEnumerable<Scenario> Shrink(Scenario scenario)
    {
        for (int i = 0; i < scenario.Routes.Length && scenario.Routes.Length > 1; i++)
        {
            yield return scenario with { Routes = [.. scenario.Routes[..i], .. scenario.Routes[(i + 1)..]] };
        }

        for (int i = 0; i < scenario.Requests.Length && scenario.Requests.Length > 1; i++)
        {
            yield return scenario with { Requests = [.. scenario.Requests[..i], .. scenario.Requests[(i + 1)..]] };
        }
    }

    internal sealed record Scenario(RouteSpec[] Routes, (string Path, MethodSet Method)[] Requests)
    {
        public override string ToString() =>
            $"routes [{string.Join("; ", Routes.Select((r, i) => $"r{i}: {r}"))}] requests [{string.Join("; ", Requests.Select(r => $"{r.Method} {r.Path}"))}]";
    }
}
