using System.Text;
using BenchmarkDotNet.Attributes;
using Keystone.Configuration;
using Keystone.Proxy;
using Keystone.Routing;
using Keystone.Scripting;
using Microsoft.AspNetCore.Http;

namespace Keystone.Benchmarks.Scripting;

/// <summary>
/// One request's Lua request phase in process, as the gateway runs it: rent a state, run the route's
/// on_request hook on a fresh req userdata, record the duration metric, give the state back. The
/// HttpContext and ScriptCall are reused, so what is measured is the hook path itself.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class LuaHookBenchmarks
{
    private const string Scripts = """
        function on_request(req)
        end
        """;

    private const string Header = """
        function on_request(req)
          if req.headers["x-api-key"] ~= "k-123" then return { status = 401 } end
          req.headers["x-consumer"] = "alice"
        end
        """;

    private const string Json = """
        function on_request(req)
          local doc = keystone.json.decode(req.ctx.doc or DOC)
        end
        """;

    private RouteScripts _noop = null!, _header = null!, _json = null!;
    private ScriptCall _call = null!;
    private LuaStatePool _pool = null!;

    [GlobalSetup]
    public void Setup()
    {
        var doc = OneKilobyteJson();
        var sources = new List<ScriptSource>
        {
            Source("noop", Scripts),
            Source("header", Header),
            Source("json", "local DOC = [[" + doc + "]]\n" + Json),
        };
        var settings = new ScriptSettings(TimeSpan.FromMilliseconds(1), 10 << 20, new Dictionary<string, string?>(), 1 << 20);
        var errors = new List<ConfigError>();
        var set = ScriptSet.Compile(settings, sources, [], null, errors, new SharedDictionary(1 << 20))
            ?? throw new InvalidOperationException(string.Join("; ", errors));
        _pool = new LuaStatePool(set);
        _pool.Warm(4);
        _noop = new RouteScripts(_pool) { OnRequest = [new HookRef(0, false)] };
        _header = new RouteScripts(_pool) { OnRequest = [new HookRef(1, false)] };
        _json = new RouteScripts(_pool) { OnRequest = [new HookRef(2, false)] };

        var config = new RouteConfig("bench", null, [], "/api/{*rest}", MethodSet.All, "app", null, null, null, [], [], default);
        var upstream = new Upstream(new UpstreamConfig("app", [new TargetConfig(new Uri("http://127.0.0.1:1"), 1, default)], false, TimeSpan.FromSeconds(30), default));
        var route = new Route(config, upstream);
        var routes = new RouteTable<Route>();
        routes.Add(null, config.Path, MethodSet.All, route, "bench");
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = "/api/users/42";
        context.Request.Headers["X-Api-Key"] = "k-123";
        context.Request.Headers["Accept"] = "application/json";
        _call = new ScriptCall(context, routes, new Dictionary<string, Upstream> { ["app"] = upstream }, route, "bench-1");
        if (ScriptStage.RunRequest(_call, _json, out var failure) != ScriptVerdict.Continue) throw new InvalidOperationException(failure);
    }

    private static ScriptSource Source(string name, string text) => new(name, name + ".lua", "scripts/" + name + ".lua", Encoding.UTF8.GetBytes(text));

    private static string OneKilobyteJson()
    {
        var sb = new StringBuilder("{\"items\":[");
        for (int i = 0; sb.Length < 980; i++)
            sb.Append(i == 0 ? "" : ",").Append("{\"id\":").Append(i).Append(",\"name\":\"item-").Append(i).Append("\",\"ok\":true}");
        return sb.Append("]}").ToString();
    }

    [Benchmark(Baseline = true)]
    public int NoOpHook() => (int)ScriptStage.RunRequest(_call, _noop, out _);

    [Benchmark]
    public int ReadOneHeaderSetAnother() => (int)ScriptStage.RunRequest(_call, _header, out _);

    [Benchmark]
    public int JsonDecode1KB() => (int)ScriptStage.RunRequest(_call, _json, out _);

    [Benchmark]
    public void PoolRentReturn()
    {
        var state = _pool.Rent();
        _pool.Return(state);
    }

    /// <summary>Two threads renting and returning at once, 10,000 times each: the pool under contention on both cores.</summary>
    [Benchmark(OperationsPerInvoke = 20_000)]
    public void PoolRentReturnTwoThreadsContended()
    {
        Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, _ =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                var state = _pool.Rent();
                _pool.Return(state);
            }
        });
    }
}
