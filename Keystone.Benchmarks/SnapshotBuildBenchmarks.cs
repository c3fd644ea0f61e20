using BenchmarkDotNet.Attributes;
using Keystone.Benchmarks.Configuration;
using Keystone.Configuration;

namespace Keystone.Benchmarks;

/// <summary>
/// Building a snapshot from a loaded 1,000-route config, as start-up and every reload do after loading (no previous
/// snapshot here, as at start). Health probers are not part of it: the Reloader starts them for a snapshot that goes
/// live, and Build never does.
/// </summary>
[MemoryDiagnoser]
public class SnapshotBuildBenchmarks
{
    private string _plainFile = "", _hookedFile = "";
    private GatewayConfig _plain = null!, _hooked = null!;

    [GlobalSetup]
    public void Setup()
    {
        _plainFile = ThousandRouteConfig.Write(withLuaHook: false);
        _hookedFile = ThousandRouteConfig.Write(withLuaHook: true);
        _plain = Load(_plainFile);
        _hooked = Load(_hookedFile);
        Build();
        BuildWithLuaHook();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        ThousandRouteConfig.Delete(_plainFile);
        ThousandRouteConfig.Delete(_hookedFile);
    }

    /// <summary>Upstreams, targets and the route table; the scripts folder is empty, so no Lua at all.</summary>
    [Benchmark(Baseline = true)]
    public Snapshot Build() => Build(_plain);

    /// <summary>
    /// The same with one hook script on every other route: reading and compiling it into the pool's first Lua state.
    /// The pool is retired at once, which closes that state (what a reload does to the snapshot it replaces), so
    /// iterations leave no native Lua states behind; that close is part of the figure.
    /// </summary>
    [Benchmark]
    public Snapshot BuildWithLuaHook()
    {
        var snapshot = Build(_hooked);
        if (snapshot.Pool is null) throw new InvalidOperationException("the hook script was not loaded");
        snapshot.Pool.Retire();
        return snapshot;
    }

    private static Snapshot Build(GatewayConfig config)
    {
        var errors = new List<ConfigError>();
        return Snapshot.Build(config, errors) ?? throw new InvalidOperationException(string.Join("\n", errors));
    }

    private static GatewayConfig Load(string file)
    {
        var result = ConfigLoader.LoadFile(file);
        return result.Ok ? result.Config! : throw new InvalidOperationException(string.Join("\n", result.Errors));
    }
}
