using BenchmarkDotNet.Attributes;
using Keystone.Routing;

namespace Keystone.Benchmarks.Routing;

/// <summary>Router lookup cost and allocations: one static and one parameterised path over a mixed table.</summary>
[MemoryDiagnoser]
public class RouterLookupBenchmarks
{
    private readonly RouteTable<string> _table = new();
    private readonly Range[] _values = new Range[16];

    [Params(100, 10_000)]
    public int Routes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < Routes; i++)
        {
            Check(_table.Add(null, $"/api/v{i % 7}/resource{i}", MethodSet.Get, $"static{i}", $"static{i}"));
            Check(_table.Add(null, $"/api/v{i % 7}/resource{i}/{{id}}/items/{{item}}", MethodSet.Get, $"param{i}", $"param{i}"));
        }
        Check(_table.Add("api.example.com", "/files/{*rest}", MethodSet.All, "files", "files"));
    }

    [Benchmark]
    public object? StaticLookup() => _table.Match("example.com", "/api/v3/resource3", MethodSet.Get, _values).Value;

    [Benchmark]
    public object? ParameterLookup() => _table.Match("example.com", "/api/v3/resource3/12345/items/abc", MethodSet.Get, _values).Value;

    [Benchmark]
    public object? WildcardHostCatchAll() => _table.Match("API.example.com:8080", "/files/a/b/c.txt", MethodSet.Get, _values).Value;

    private static void Check(string? error)
    {
        if (error is not null) throw new InvalidOperationException(error);
    }
}
