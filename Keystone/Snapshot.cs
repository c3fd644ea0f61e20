using Keystone.Configuration;
using Keystone.Proxy;
using Keystone.Routing;
using Keystone.Scripting;

namespace Keystone;

/// <summary>
/// Everything a request needs, built and validated as a whole from one config and never changed
/// afterwards; a reload builds a new one and swaps it in.
/// </summary>
public sealed class Snapshot
{
    private Snapshot(GatewayConfig config, RouteTable<Route> routes, Dictionary<string, Upstream> upstreams, LuaStatePool? pool)
    {
        Pool = pool;
        Config = config;
        Routes = routes;
        Upstreams = upstreams;
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in config.Routes)
            if (r.Upstream is not null) used.Add(r.Upstream);
        UsedUpstreams = used;
    }

    public GatewayConfig Config { get; }
    public RouteTable<Route> Routes { get; }
    public IReadOnlyDictionary<string, Upstream> Upstreams { get; }

    /// <summary>Upstreams some route forwards to: the ones readiness depends on.</summary>
    public IReadOnlySet<string> UsedUpstreams { get; }

    /// <summary>The Lua states of this snapshot's scripts; null when the scripts folder holds none.</summary>
    internal LuaStatePool? Pool { get; }

    internal ScriptSet? Scripts => Pool?.Scripts;

    /// <summary>Called once this snapshot serves traffic: starts the metrics that only live targets report.</summary>
    public void Activate()
    {
        Pool?.Warm(Config.Lua.States);
        foreach (var upstream in Upstreams.Values)
            foreach (var target in upstream.Targets)
                target.Activate();
    }

    /// <summary>Builds the runtime model; route conflicts found by the router come back as config errors.</summary>
    /// <param name="previous">The snapshot being replaced, if any: targets that stay keep their health state.</param>
    public static Snapshot? Build(GatewayConfig config, List<ConfigError> errors, Snapshot? previous = null)
    {
        var upstreams = new Dictionary<string, Upstream>(StringComparer.Ordinal);
        foreach (var u in config.Upstreams)
        {
            Upstream? before = null;
            previous?.Upstreams.TryGetValue(u.Name, out before);
            upstreams[u.Name] = new Upstream(u, before);
        }

        int errorsBefore = errors.Count;
        var scripts = ScriptSet.Load(config.Lua, previous?.Scripts, errors);
        // Scripts that do not load would make every hook "unknown"; their own errors say it all.
        if (errors.Count > errorsBefore)
        {
            scripts?.FirstState?.Dispose(); // compiled, but no pool will ever hand it out
            return null;
        }
        var pool = scripts is null ? null : new LuaStatePool(scripts);
        var table = new RouteTable<Route>();
        var globalHooks = RouteScriptsResolver.Global(config.Lua.GlobalHooks, pool, errors);
        foreach (var rc in config.Routes)
        {
            Upstream? upstream = null;
            if (rc.Upstream is not null && !upstreams.TryGetValue(rc.Upstream, out upstream))
            {
                errors.Add(new ConfigError(rc.Location, $"route '{rc.Name}' uses unknown upstream '{rc.Upstream}'"));
                continue;
            }
            var route = new Route(rc, upstream) { Scripts = RouteScriptsResolver.Resolve(rc, globalHooks, pool, errors) };
            if (rc.Hosts.Count == 0)
                AddOrReport(table, null, rc, route, errors);
            foreach (var host in rc.Hosts)
                AddOrReport(table, host, rc, route, errors);
        }
        if (pool is not null) RouteScriptsResolver.AddScriptRoutes(table, pool, globalHooks, errors);
        if (errors.Count == 0) return new Snapshot(config, table, upstreams, pool);
        // A refused build closes the state it compiled now, not whenever the finalizer gets to it.
        pool?.Retire();
        return null;
    }

    private static void AddOrReport(RouteTable<Route> table, string? host, RouteConfig rc, Route route, List<ConfigError> errors)
    {
        var error = table.Add(host, rc.Path, rc.Methods, route, rc.Name);
        if (error is not null) errors.Add(new ConfigError(rc.Location, error));
    }

    /// <summary>Loads, validates and builds in one step: what `serve`, `validate` and reload all do.</summary>
    public static (Snapshot? Snapshot, IReadOnlyList<ConfigError> Errors) Load(string path)
    {
        var loaded = ConfigLoader.LoadFile(path);
        if (!loaded.Ok) return (null, loaded.Errors);
        var errors = new List<ConfigError>();
        var snapshot = Build(loaded.Config!, errors);
        return (snapshot, errors);
    }
}
