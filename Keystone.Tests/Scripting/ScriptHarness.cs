using System.Diagnostics;
using System.Text;
using Keystone.Configuration;
using Keystone.Proxy;
using Keystone.Routing;
using Keystone.Scripting;
using Microsoft.AspNetCore.Http;

namespace Keystone.Tests.Scripting;

/// <summary>
/// Runs scripts in process, the way the gateway does (same pool, stage and bindings), against a
/// DefaultHttpContext: fast enough for hundreds of API and hostile-script cases without a socket.
/// The script under test is script 0; it runs as hook and/or handler depending on what it defines.
/// </summary>
internal sealed class ScriptHarness
{
    private ScriptHarness(ScriptSet set, LuaStatePool pool, RouteScripts scripts, Route route, RouteTable<Route> routes, Dictionary<string, Upstream> upstreams)
    {
        Set = set;
        Pool = pool;
        Scripts = scripts;
        Route = route;
        Routes = routes;
        Upstreams = upstreams;
    }

    public ScriptSet Set { get; }
    public LuaStatePool Pool { get; }
    public RouteScripts Scripts { get; }
    public Route Route { get; }
    public RouteTable<Route> Routes { get; }
    public Dictionary<string, Upstream> Upstreams { get; }

    public static readonly SharedDictionary Shared = new(8 << 20);

    /// <summary>API tests get a roomy budget: this shared 2-core box stalls for milliseconds under parallel tests. Budget tests pass their own.</summary>
    public static readonly TimeSpan DefaultBudget = TimeSpan.FromMilliseconds(250);

    /// <summary>Compiles <paramref name="script"/> (plus optional extra scripts and lib modules); throws with the load errors.</summary>
    public static ScriptHarness Create(string script, TimeSpan? budget = null, long memory = 4 << 20, bool continueOnError = false,
        (string Name, string Source)[]? libs = null, Dictionary<string, string?>? env = null, bool bufferResponse = false, long maxBody = 1 << 20)
    {
        var errors = new List<ConfigError>();
        var set = TryCompile(script, errors, budget, memory, libs, env, maxBody)
            ?? throw new InvalidOperationException(string.Join("\n", errors));
        var pool = new LuaStatePool(set);
        var first = set.FirstState!;
        var hooks = new List<HookRef>();
        bool onRequest = first.HasFunction(0, ScriptFunction.OnRequest);
        bool onResponse = first.HasFunction(0, ScriptFunction.OnResponse);
        bool handler = first.HasFunction(0, ScriptFunction.Handle);
        var scripts = new RouteScripts(pool)
        {
            OnRequest = onRequest ? [new HookRef(0, continueOnError)] : [],
            OnResponse = onResponse ? [new HookRef(0, continueOnError)] : [],
            HandlerScript = handler ? 0 : -1,
            BufferResponse = bufferResponse,
        };
        var upstreams = new Dictionary<string, Upstream>
        {
            ["main"] = MakeUpstream("main"),
            ["canary"] = MakeUpstream("canary"),
        };
        var config = new RouteConfig("test-route", null, [], "/items/{id}/{*rest}", MethodSet.All, handler ? null : "main", null, null, null, [], [], default)
        {
            Handler = handler ? "script" : null,
        };
        var route = new Route(config, handler ? null : upstreams["main"]) { Scripts = scripts };
        var routes = new RouteTable<Route>();
        routes.Add(null, config.Path, MethodSet.All, route, config.Name);
        return new ScriptHarness(set, pool, scripts, route, routes, upstreams);
    }

    public static ScriptSet? TryCompile(string script, List<ConfigError> errors, TimeSpan? budget = null, long memory = 4 << 20,
        (string Name, string Source)[]? libs = null, Dictionary<string, string?>? env = null, long maxBody = 1 << 20)
    {
        var settings = new ScriptSettings(budget ?? DefaultBudget, memory, env ?? new Dictionary<string, string?>(), maxBody);
        var sources = new List<ScriptSource> { new("script", "script.lua", "scripts/script.lua", Encoding.UTF8.GetBytes(script)) };
        var libraries = new List<KeyValuePair<string, byte[]>>();
        foreach (var (name, source) in libs ?? []) libraries.Add(new(name, Encoding.UTF8.GetBytes(source)));
        return ScriptSet.Compile(settings, sources, libraries, null, errors, Shared);
    }

    private static Upstream MakeUpstream(string name) =>
        new(new UpstreamConfig(name, [new TargetConfig(new Uri("http://127.0.0.1:1"), 1, default)], false, TimeSpan.FromSeconds(30), default));

    public static DefaultHttpContext Request(string method = "GET", string path = "/items/7/a/b", string query = "?x=1&y=2&y=3",
        Dictionary<string, string>? headers = null, string? body = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = method;
        context.Request.Path = path;
        context.Request.QueryString = new QueryString(query);
        context.Request.Host = new HostString("example.test", 8080);
        context.Request.Scheme = "http";
        context.Connection.RemoteIpAddress = System.Net.IPAddress.Loopback;
        foreach (var (name, value) in headers ?? []) context.Request.Headers[name] = value;
        if (body is not null)
        {
            var bytes = Encoding.UTF8.GetBytes(body);
            context.Request.Body = new MemoryStream(bytes);
            context.Request.ContentLength = bytes.Length;
        }
        context.Response.Body = new MemoryStream();
        return context;
    }

    /// <summary>Runs the request phase (hooks, then the handler if any) on <paramref name="context"/>.</summary>
    public RunResult Run(DefaultHttpContext? context = null)
    {
        context ??= Request();
        var call = new ScriptCall(context, Routes, Upstreams, Route, "req-1");
        if (!ScriptStage.ReadBodyAsync(call, Set.Settings.MaxBody).AsTask().GetAwaiter().GetResult())
            return new RunResult(ScriptVerdict.Failed, "413", call, context, TimeSpan.Zero);
        long started = Stopwatch.GetTimestamp();
        var verdict = ScriptStage.RunRequest(call, Scripts, out var failure);
        return new RunResult(verdict, failure, call, context, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>Runs the response phase of a proxied request as if the upstream answered with <paramref name="status"/> and <paramref name="body"/>.</summary>
    public (bool CopyBody, string ResponseBody) RunResponse(RunResult request, int status = 200, string body = "upstream body")
    {
        var context = request.Context;
        context.Response.StatusCode = status;
        using var upstream = new HttpResponseMessage((System.Net.HttpStatusCode)status) { Content = new StringContent(body) };
        var copy = ScriptStage.RunResponseAsync(request.Call, Scripts, upstream, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        return (copy, Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray()));
    }
}

internal sealed record RunResult(ScriptVerdict Verdict, string? Failure, ScriptCall Call, DefaultHttpContext Context, TimeSpan Elapsed)
{
    public int Status => Context.Response.StatusCode;
    public string Body => Call.ResponseBody is { } b ? Encoding.UTF8.GetString(b.Span) : "";
    public string? ResponseHeader(string name) => Context.Response.Headers.TryGetValue(name, out var v) ? v.ToString() : null;
    public string? RequestHeader(string name) => Context.Request.Headers.TryGetValue(name, out var v) ? v.ToString() : null;
}
