using BenchmarkDotNet.Attributes;
using Keystone.Routing;

namespace Keystone.Benchmarks.Routing;

/// <summary>Which route table a <see cref="RouterLookupBenchmarks"/> run looks up in.</summary>
public enum RouteSet
{
    /// <summary>The 203 routes of <see cref="GitHubApi"/>.</summary>
    GitHub,

    /// <summary>5,000 static routes plus 5,000 two-parameter routes under /api/v0../api/v6.</summary>
    Generated10k,
}

/// <summary>
/// Router lookup cost and allocations through <see cref="RouteTable{T}.Match"/>, the call the gateway makes per request,
/// with concrete request paths (never the templates). Both tables are host-less, as a single-site config is; host
/// matching has its own benchmark. Issue 8's targets: at most 100 ns per lookup over the GitHub table, 0 B, and the
/// 10,000-route table within 1.5x of that.
/// </summary>
[MemoryDiagnoser]
public class RouterLookupBenchmarks
{
    // Lookups per AllRoutes call: the whole GitHub table, or as many routes spread over the generated one, so that
    // OperationsPerInvoke (a constant) makes the Mean column the cost of one lookup for both tables.
    private const int Lookups = 203;
    private const string Host = "api.example.com";
    private const int GeneratedPairs = 5_000;

    private readonly RouteTable<string> _table = new();
    private readonly Range[] _values = new Range[16]; // the gateway's stackalloc holds 16 too
    private (string Path, MethodSet Method, string Expected)[] _requests = [];
    private string _staticPath = "", _paramPath = "";

    [Params(RouteSet.GitHub, RouteSet.Generated10k)]
    public RouteSet Table { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        if (Table == RouteSet.GitHub)
        {
            foreach (var (method, path) in GitHubApi.Routes)
            {
                Check(_table.Add(null, path, Methods.Parse(method), $"{method} {path}", path));
            }

            _requests = [.. GitHubApi.Routes.Select(r => (GitHubApi.RequestPath(r.Path), Methods.Parse(r.Method), $"{r.Method} {r.Path}"))];
            _staticPath = "/user/repos";
            _paramPath = "/repos/julienschmidt/httprouter/stargazers"; // both as in the Go suite's GithubStatic/GithubParam
        }
        else
        {
            for (int i = 0; i < GeneratedPairs; i++)
            {
                Check(_table.Add(null, $"/api/v{i % 7}/resource{i}", MethodSet.Get, $"static{i}", $"static{i}"));
                Check(_table.Add(null, $"/api/v{i % 7}/resource{i}/{{id}}/items/{{item}}", MethodSet.Get, $"param{i}", $"param{i}"));
            }

            // Every 24th pair, alternating its static and its parameterised route: the same mix across the whole table.
            _requests = [.. Enumerable.Range(0, Lookups).Select(k => k * (GeneratedPairs / Lookups)).Select((i, k) => k % 2 == 0
                ? ($"/api/v{i % 7}/resource{i}", MethodSet.Get, $"static{i}")
                : ($"/api/v{i % 7}/resource{i}/12345/items/abc", MethodSet.Get, $"param{i}"))];
            _staticPath = "/api/v3/resource3";
            _paramPath = "/api/v3/resource3/12345/items/abc"; // as in the issue 3 figures
        }

        // A benchmark of lookups that miss would prove nothing: every request must find its own route.
        if (_requests.Length != Lookups) throw new InvalidOperationException($"{_requests.Length} requests, expected {Lookups}");
        foreach (var (path, method, expected) in _requests)
        {
            var match = _table.Match(Host, path, method, _values);
            if (match.Value != expected) throw new InvalidOperationException($"{method} {path} matched {match.Value ?? match.Kind.ToString()}, not {expected}");
        }

        if (StaticLookup() is null || ParameterLookup() is null) throw new InvalidOperationException("the single lookups miss");
    }

    [Benchmark(OperationsPerInvoke = Lookups)]
    public int AllRoutes()
    {
        int found = 0;
        foreach (var (path, method, _) in _requests)
        {
            if (_table.Match(Host, path, method, _values).Kind == MatchKind.Found) found++;
        }

        return found;
    }

    [Benchmark]
    public object? StaticLookup() => _table.Match(Host, _staticPath, MethodSet.Get, _values).Value;

    [Benchmark]
    public object? ParameterLookup() => _table.Match(Host, _paramPath, MethodSet.Get, _values).Value;

    private static void Check(string? error)
    {
        if (error is not null) throw new InvalidOperationException(error);
    }
}
