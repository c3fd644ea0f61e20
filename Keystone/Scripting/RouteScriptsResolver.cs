using Keystone.Configuration;
using Keystone.Routing;

namespace Keystone.Scripting;

/// <summary>
/// Turns a route's <c>hooks:</c> and <c>handler:</c> into <see cref="RouteScripts"/> when the snapshot is
/// built, and adds the routes scripts declare: every reference is checked against the loaded scripts, so
/// a missing script or function is a config error, never a request failure.
/// </summary>
internal static class RouteScriptsResolver
{
    /// <summary>Resolves <c>lua.global_hooks</c> once per snapshot, so their errors are reported once.</summary>
    public static GlobalHooks Global(IReadOnlyList<HookConfig> hooks, LuaStatePool? pool, List<ConfigError> errors)
    {
        var (onRequest, onResponse) = Hooks(hooks, pool, errors);
        return new GlobalHooks(onRequest, onResponse);
    }

    public static RouteScripts? Resolve(RouteConfig rc, GlobalHooks global, LuaStatePool? pool, List<ConfigError> errors)
    {
        if (global.IsEmpty && rc.Hooks.Count == 0 && rc.Handler is null && !rc.BufferResponse) return null;
        if (rc.BufferResponse && rc.Upstream is null)
            errors.Add(new ConfigError(rc.Location, $"route '{rc.Name}': buffer_response only applies to routes with an upstream"));
        int handler = -1;
        if (rc.Handler is { } name)
        {
            handler = Find(name, rc.Location, pool, errors);
            if (handler >= 0 && !pool!.Scripts.Defines(handler, ScriptFunction.Handle))
            {
                errors.Add(new ConfigError(rc.Location, $"route '{rc.Name}': script '{name}' has no handle(req) function"));
                handler = -1;
            }
        }
        var (onRequest, onResponse) = Hooks(rc.Hooks, pool, errors);
        if (pool is null) return null;
        return new RouteScripts(pool)
        {
            OnRequest = [.. global.OnRequest, .. onRequest],
            OnResponse = [.. global.OnResponse, .. onResponse],
            HandlerScript = handler,
            BufferResponse = rc.BufferResponse,
        };
    }

    /// <summary>Script routes (a script's <c>routes</c> table) answer on any host, after the global hooks.</summary>
    public static void AddScriptRoutes(RouteTable<Route> table, LuaStatePool pool, GlobalHooks global, List<ConfigError> errors)
    {
        var scripts = pool.Scripts;
        for (int i = 0; i < scripts.Routes.Count; i++)
        {
            var declared = scripts.Routes[i];
            var source = scripts.Scripts[declared.Script];
            var name = $"{source.Name}:{declared.Key}";
            var location = new SourceLocation(source.DisplayPath, 1, 1);
            var config = new RouteConfig(name, null, [], declared.Path, declared.Methods, null, null, null, null, [], [], location) { Handler = source.Name };
            var route = new Route(config, null) { Scripts = new RouteScripts(pool) { OnRequest = global.OnRequest, OnResponse = global.OnResponse, HandlerRoute = i } };
            if (table.Add(null, declared.Path, declared.Methods, route, name) is { } conflict)
                errors.Add(new ConfigError(location, conflict));
        }
    }

    private static (HookRef[] OnRequest, HookRef[] OnResponse) Hooks(IReadOnlyList<HookConfig> hooks, LuaStatePool? pool, List<ConfigError> errors)
    {
        var onRequest = new List<HookRef>();
        var onResponse = new List<HookRef>();
        {
            foreach (var hook in hooks)
            {
                int script = Find(hook.Script, hook.Location, pool, errors);
                if (script < 0) continue;
                bool request = pool!.Scripts.Defines(script, ScriptFunction.OnRequest);
                bool response = pool.Scripts.Defines(script, ScriptFunction.OnResponse);
                if (!request && !response)
                    errors.Add(new ConfigError(hook.Location, $"script '{hook.Script}' defines neither on_request nor on_response, so it cannot be a hook"));
                if (request) onRequest.Add(new HookRef(script, hook.ContinueOnError));
                if (response) onResponse.Add(new HookRef(script, hook.ContinueOnError));
            }
        }
        return ([.. onRequest], [.. onResponse]);
    }

    private static int Find(string name, SourceLocation location, LuaStatePool? pool, List<ConfigError> errors)
    {
        int index = pool?.Scripts.IndexOf(name) ?? -1;
        if (index < 0) errors.Add(new ConfigError(location, $"unknown script '{name}': there is no {name}.lua in the scripts folder"));
        return index;
    }
}

/// <summary><c>lua.global_hooks</c>, resolved: they run first on every route, script routes included.</summary>
internal sealed record GlobalHooks(HookRef[] OnRequest, HookRef[] OnResponse)
{
    public bool IsEmpty => OnRequest.Length == 0 && OnResponse.Length == 0;
}
