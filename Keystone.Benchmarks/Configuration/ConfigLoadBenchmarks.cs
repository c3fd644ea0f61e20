using BenchmarkDotNet.Attributes;
using Keystone.Configuration;

namespace Keystone.Benchmarks.Configuration;

/// <summary>
/// Loading a 1,000-route config the way `serve`, `validate` and every reload do: read the file, parse the YAML,
/// read and validate every section. The file sits in the page cache after the first call, so this is CPU cost.
/// </summary>
[MemoryDiagnoser]
public class ConfigLoadBenchmarks
{
    private string _file = "";

    [GlobalSetup]
    public void Setup()
    {
        _file = ThousandRouteConfig.Write(withLuaHook: false);
        var loaded = LoadFile();
        if (loaded.Routes.Count != ThousandRouteConfig.Routes) throw new InvalidOperationException($"{loaded.Routes.Count} routes loaded");
    }

    [GlobalCleanup]
    public void Cleanup() => ThousandRouteConfig.Delete(_file);

    [Benchmark]
    public GatewayConfig LoadFile()
    {
        var result = ConfigLoader.LoadFile(_file);
        return result.Ok ? result.Config! : throw new InvalidOperationException(string.Join("\n", result.Errors));
    }
}
