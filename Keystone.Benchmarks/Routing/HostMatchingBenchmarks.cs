using BenchmarkDotNet.Attributes;
using Keystone.Routing;

namespace Keystone.Benchmarks.Routing;

/// <summary>
/// Host matching with 1,000 hosts, as an agency hosting many sites configures them: 900 exact hosts and 100
/// "*.tenant" wildcards, each with its own two routes, plus a host-less catch-all for every other host. The three
/// lookups take the three ways through <see cref="RouteTable{T}.Match"/>: exact, wildcard, and no host of its own.
/// </summary>
[MemoryDiagnoser]
public class HostMatchingBenchmarks
{
    private const int ExactHosts = 900;
    private const int WildcardHosts = 100;
    private const string Path = "/api/orders/7";

    private readonly RouteTable<string> _table = new();
    private readonly Range[] _values = new Range[16];

    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < ExactHosts; i++)
        {
            AddSite($"site{i}.example.com", $"exact{i}");
        }

        for (int i = 0; i < WildcardHosts; i++)
        {
            AddSite($"*.tenant{i}.example.net", $"wildcard{i}");
        }

        Check(_table.Add(null, "/{*rest}", MethodSet.All, "fallback", "fallback"));

        // Each lookup must land where its name says, or the figures would describe another path through Match.
        Expect(ExactHost(), "exact500 api");
        Expect(WildcardHost(), "wildcard50 api");
        Expect(UnknownHostFallsBack(), "fallback");
    }

    // The exact table is probed once; this host is in it.
    [Benchmark(Baseline = true)]
    public object? ExactHost() => _table.Match("site500.example.com", Path, MethodSet.Get, _values).Value;

    // Exact miss, then the wildcard table probed from the longest suffix: ".tenant50.example.net" hits first.
    [Benchmark]
    public object? WildcardHost() => _table.Match("shop.tenant50.example.net", Path, MethodSet.Get, _values).Value;

    // Exact miss, wildcard misses for ".example.org" and ".org", then the host-less routes.
    [Benchmark]
    public object? UnknownHostFallsBack() => _table.Match("unknown.example.org", Path, MethodSet.Get, _values).Value;

    private void AddSite(string host, string name)
    {
        Check(_table.Add(host, "/", MethodSet.Get, $"{name} home", $"{name}-home"));
        Check(_table.Add(host, "/api/{*rest}", MethodSet.All, $"{name} api", $"{name}-api"));
    }

    private static void Expect(object? actual, string expected)
    {
        if (!Equals(actual, expected)) throw new InvalidOperationException($"matched {actual ?? "nothing"}, expected {expected}");
    }

    private static void Check(string? error)
    {
        if (error is not null) throw new InvalidOperationException(error);
    }
}
