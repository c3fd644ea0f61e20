using System.Text.Json;
using Keystone.Configuration;
using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>
/// The <c>lua:</c> section, and the script references routes make, checked the way the gateway checks them: the YAML
/// through the loader, the scripts folder when the snapshot is built. Each test has its own scripts folder.
/// </summary>
public sealed class LuaConfigTests : IDisposable
{
    private readonly string _scripts = Directory.CreateTempSubdirectory("keystone-lua-config-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_scripts, recursive: true); } catch (IOException) { }
    }

    /// <summary>The first lines of every config here; a test's own YAML starts on line 3.</summary>
    private string LuaSection => $"lua:\n  scripts_dir: {JsonSerializer.Serialize(_scripts)}\n";

    private const string Upstream = "upstreams:\n  app: { targets: [\"http://127.0.0.1:9001\"] }\n";

    private void Script(string name, string source) => File.WriteAllText(Path.Combine(_scripts, name + ".lua"), source);

    private string ScriptPath(string name) => Path.Combine(_scripts, name + ".lua");

    /// <summary>Loads the YAML (which must be valid) and builds the snapshot; returns the errors the build reports.</summary>
    private static List<ConfigError> Build(string yaml)
    {
        var config = Valid(yaml);
        var errors = new List<ConfigError>();
        var snapshot = Snapshot.Build(config, errors);
        Assert.Equal(errors.Count == 0, snapshot is not null);
        snapshot?.Pool?.Retire();
        return errors;
    }

    private static ConfigError SingleBuildError(string yaml)
    {
        var errors = Build(yaml);
        Assert.True(errors.Count == 1, $"expected exactly one error, got {errors.Count}:\n" + string.Join("\n", errors));
        return errors[0];
    }

    // ---- script references ---------------------------------------------------------------------

    [Fact]
    public void Unknown_hook_script_is_reported_at_the_hook()
    {
        Script("auth", "function on_request(req) end\n");

        var error = SingleBuildError(LuaSection + Upstream + """
            routes:
              - name: api
                path: /api
                upstream: app
                hooks: [auth, missing]
            """);

        Assert.Equal(At(9, 19) + "unknown script 'missing': there is no missing.lua in the scripts folder", error.ToString());
    }

    [Fact]
    public void Unknown_hook_script_in_a_mapping_entry_is_reported_at_the_entry()
    {
        Script("auth", "function on_request(req) end\n");

        var error = SingleBuildError(LuaSection + Upstream + """
            routes:
              - name: api
                path: /api
                upstream: app
                hooks:
                  - auth
                  - { script: missng, on_error: continue }
            """);

        Assert.Equal(At(11, 9) + "unknown script 'missng': there is no missng.lua in the scripts folder", error.ToString());
    }

    [Fact]
    public void Unknown_global_hook_is_reported_once_at_the_hook()
    {
        Script("auth", "function on_request(req) end\n");

        var error = SingleBuildError($"lua:\n  scripts_dir: {JsonSerializer.Serialize(_scripts)}\n  global_hooks: [reqid]\n" + Upstream + """
            routes:
              - { name: a, path: /a, upstream: app }
              - { name: b, path: /b, upstream: app }
            """);

        Assert.Equal(At(3, 18) + "unknown script 'reqid': there is no reqid.lua in the scripts folder", error.ToString());
    }

    [Fact]
    public void Hook_naming_a_script_while_the_scripts_folder_is_missing_is_an_unknown_script()
    {
        Directory.Delete(_scripts);

        var error = SingleBuildError(LuaSection + Upstream + """
            routes:
              - { name: api, path: /api, upstream: app, hooks: [auth] }
            """);

        Assert.Equal("unknown script 'auth': there is no auth.lua in the scripts folder", error.Message);
        Assert.Equal(6, error.Location.Line);
    }

    [Fact]
    public void Handler_script_without_handle_is_reported_at_the_route()
    {
        Script("hello", "function on_request(req) end\n");

        var error = SingleBuildError(LuaSection + """
            routes:
              - name: hello
                path: /hello
                handler: hello
            """);

        Assert.Equal(At(4, 5) + "route 'hello': script 'hello' has no handle(req) function", error.ToString());
    }

    [Fact]
    public void Hook_script_with_neither_on_request_nor_on_response_is_rejected_at_the_hook()
    {
        Script("helpers", "local function helper() return 1 end\nfunction handle(req) return helper() end\n");

        var error = SingleBuildError(LuaSection + Upstream + """
            routes:
              - name: api
                path: /api
                upstream: app
                hooks: [helpers]
            """);

        Assert.Equal(At(9, 13) + "script 'helpers' defines neither on_request nor on_response, so it cannot be a hook", error.ToString());
    }

    [Fact]
    public void Syntax_error_is_reported_at_the_scripts_line()
    {
        Script("ok", "function handle(req) return 'ok' end\n");
        Script("x", "function handle(req)\n  return 'x'\nend\nend\n");

        var error = SingleBuildError(LuaSection + """
            routes:
              - { name: ok, path: /ok, handler: ok }
            """);

        var path = ScriptPath("x");
        Assert.Equal(new SourceLocation(path, 4, 1), error.Location);
        Assert.Equal($"{path}:4:1: {path}:4: <eof> expected near 'end'", error.ToString());
    }

    [Fact]
    public void Syntax_errors_in_two_scripts_are_both_reported()
    {
        Script("a", "function on_request(req)\n  if then end\nend\n");
        Script("b", "local x = = 1\n");

        var errors = Build(LuaSection + "routes: []\n");

        Assert.Equal([(ScriptPath("a"), 2), (ScriptPath("b"), 1)], errors.Select(e => (e.Location.File, e.Location.Line)).Order().ToList());
    }

    [Fact]
    public void Runtime_error_in_a_scripts_main_chunk_is_reported_with_its_line()
    {
        Script("boom", "local x = 1\nerror('boom at load')\n");

        var error = SingleBuildError(LuaSection + "routes: []\n");

        Assert.Equal(new SourceLocation(ScriptPath("boom"), 2, 1), error.Location);
        Assert.Contains("boom at load", error.Message);
    }

    // ---- script routes -------------------------------------------------------------------------

    [Fact]
    public void Script_routes_that_conflict_with_yaml_routes_are_reported_naming_both_routes()
    {
        Script("a", "routes = { [\"GET /users\"] = function(req) return 'a' end }\n");
        Script("b", "routes = { [\"/orders/{id}\"] = function(req) return 'b' end }\n");

        var errors = Build(LuaSection + """
            routes:
              - { name: users, path: /users, respond: {} }
              - { name: orders, path: "/orders/{id}", methods: [POST], respond: {} }
            """).OrderBy(e => e.Location.File, StringComparer.Ordinal).ToList();

        Assert.Equal(2, errors.Count);
        Assert.Equal(new SourceLocation(ScriptPath("a"), 1, 1), errors[0].Location);
        Assert.Contains("'users'", errors[0].Message);
        Assert.Contains("'a:GET /users'", errors[0].Message);
        Assert.Contains("conflict", errors[0].Message);
        Assert.Equal(new SourceLocation(ScriptPath("b"), 1, 1), errors[1].Location);
        Assert.Contains("'orders'", errors[1].Message);
        Assert.Contains("'b:/orders/{id}'", errors[1].Message);
    }

    [Fact]
    public void Two_scripts_declaring_the_same_route_are_reported_naming_both()
    {
        Script("a", "routes = { [\"GET /hello\"] = function(req) return 'a' end }\n");
        Script("b", "routes = { [\"GET,POST /hello\"] = function(req) return 'b' end }\n");

        var error = SingleBuildError(LuaSection + "routes: []\n");

        Assert.Equal(new SourceLocation(ScriptPath("b"), 1, 1), error.Location);
        Assert.Contains("'a:GET /hello'", error.Message);
        Assert.Contains("'b:GET,POST /hello'", error.Message);
    }

    [Fact]
    public void Script_routes_with_other_methods_than_a_yaml_route_on_the_same_path_do_not_conflict()
    {
        Script("a", "routes = { [\"POST /users\"] = function(req) return 'a' end }\n");

        Assert.Empty(Build(LuaSection + """
            routes:
              - { name: users, path: /users, methods: [GET], respond: {} }
            """));
    }

    [Fact]
    public void Script_route_keys_with_an_unknown_method_or_a_relative_path_are_rejected()
    {
        Script("a", "routes = { [\"FETCH /x\"] = function(req) end, [\"GET y\"] = function(req) end }\n");

        var errors = Build(LuaSection + "routes: []\n").Select(e => e.ToString()).ToList();

        Assert.Contains($"{ScriptPath("a")}:1:1: routes[\"FETCH /x\"]: unknown method 'FETCH'", errors);
        Assert.Contains($"{ScriptPath("a")}:1:1: routes[\"GET y\"]: the path must start with '/'", errors);
    }

    // ---- lua: values ---------------------------------------------------------------------------

    [Theory]
    [InlineData("budget: 0ms", 2, 11, "lua budget must be more than 0 and at most 10s")]
    [InlineData("budget: 0", 2, 11, "lua budget must be more than 0 and at most 10s")]
    [InlineData("budget: 11s", 2, 11, "lua budget must be more than 0 and at most 10s")]
    [InlineData("memory: 10KB", 2, 11, "lua memory must be a size such as 512KB, 10MB or 1GB (at least 1048576 bytes), not '10KB'")]
    [InlineData("memory: lots", 2, 11, "lua memory must be a size such as 512KB, 10MB or 1GB (at least 1048576 bytes), not 'lots'")]
    [InlineData("states: 0", 2, 11, "states must be a whole number from 1 to 1024, not '0'")]
    [InlineData("states: 1025", 2, 11, "states must be a whole number from 1 to 1024, not '1025'")]
    [InlineData("max_body: 10", 2, 13, "lua max_body must be a size such as 512KB, 10MB or 1GB (at least 1024 bytes), not '10'")]
    public void Bad_lua_values_are_reported_at_the_value(string line, int atLine, int atColumn, string message)
    {
        var error = SingleError("lua:\n  " + line + "\n");

        Assert.Equal(At(atLine, atColumn) + message, error);
    }

    [Fact]
    public void Unknown_key_in_lua_is_rejected_with_a_suggestion()
    {
        var error = SingleError("lua:\n  budgt: 5ms\n");

        Assert.Equal(At(2, 3) + "unknown key 'budgt' in lua — did you mean 'budget'?", error);
    }

    [Fact]
    public void Unknown_key_in_lua_without_a_close_match_lists_the_keys()
    {
        var error = SingleError("lua:\n  coroutines: true\n");

        Assert.Equal(At(2, 3) + "unknown key 'coroutines' in lua (expected one of: scripts_dir, budget, memory, states, env, max_body, shared_memory, global_hooks)", error);
    }

    [Fact]
    public void Bad_on_error_value_is_reported_at_the_value()
    {
        var error = SingleError(Upstream + """
            routes:
              - name: api
                path: /api
                upstream: app
                hooks: [{ script: auth, on_error: ignore }]
            """);

        Assert.Equal(At(7, 39) + "on_error must be fail or continue, not 'ignore'", error);
    }

    [Fact]
    public void Buffer_response_on_a_respond_route_is_rejected()
    {
        var error = SingleBuildError(LuaSection + """
            routes:
              - name: fixed
                path: /fixed
                respond: { status: 200, body: hi }
                buffer_response: true
            """);

        Assert.Equal(At(4, 5) + "route 'fixed': buffer_response only applies to routes with an upstream", error.ToString());
    }

    [Fact]
    public void Buffer_response_on_a_handler_route_is_rejected()
    {
        Script("hello", "function handle(req) return 'hi' end\n");

        var error = SingleBuildError(LuaSection + """
            routes:
              - { name: hello, path: /hello, handler: hello, buffer_response: true }
            """);

        Assert.Equal(At(4, 5) + "route 'hello': buffer_response only applies to routes with an upstream", error.ToString());
    }

    [Fact]
    public void Lua_defaults_apply_when_the_section_is_absent()
    {
        var lua = Valid("routes: []\n").Lua;

        Assert.Same(LuaConfig.Default, lua);
        Assert.Equal("scripts", lua.ScriptsDir);
        Assert.Equal(TimeSpan.FromMilliseconds(1), lua.Budget);
        Assert.Equal(10L << 20, lua.MemoryBytes);
        Assert.Equal(2 * Environment.ProcessorCount, lua.States);
        Assert.Empty(lua.Env);
        Assert.Equal(1L << 20, lua.MaxBody);
        Assert.Equal(64L << 20, lua.SharedMemoryBytes);
        Assert.Empty(lua.GlobalHooks);
    }

    [Fact]
    public void An_empty_lua_section_means_the_defaults()
    {
        Assert.Equal(LuaConfig.Default, Valid("lua:\nroutes: []\n").Lua);
    }

    [Fact]
    public void Lua_values_are_read_with_their_units()
    {
        var lua = Valid("""
            lua:
              scripts_dir: /srv/keystone/scripts
              budget: 5ms
              memory: 32MB
              states: 3
              env: [API_KEY, JWT_SECRET]
              max_body: 256KB
              shared_memory: 1GB
              global_hooks: [reqid, { script: audit, on_error: continue }]
            """).Lua;

        Assert.Equal("/srv/keystone/scripts", lua.ScriptsDir);
        Assert.Equal(TimeSpan.FromMilliseconds(5), lua.Budget);
        Assert.Equal(32L << 20, lua.MemoryBytes);
        Assert.Equal(3, lua.States);
        Assert.Equal(["API_KEY", "JWT_SECRET"], lua.Env);
        Assert.Equal(256L << 10, lua.MaxBody);
        Assert.Equal(1L << 30, lua.SharedMemoryBytes);
        Assert.Equal([("reqid", false), ("audit", true)], lua.GlobalHooks.Select(h => (h.Script, h.ContinueOnError)).ToList());
    }

    [Fact]
    public void Hook_lists_name_their_on_error_mode()
    {
        var route = Assert.Single(Valid(Upstream + """
            routes:
              - name: api
                path: /api
                upstream: app
                hooks: [auth, { script: decorate, on_error: continue }, { script: strict, on_error: fail }]
            """).Routes);

        Assert.Equal([("auth", false), ("decorate", true), ("strict", false)], route.Hooks.Select(h => (h.Script, h.ContinueOnError)).ToList());
    }

    [Fact]
    public void A_config_without_scripts_and_without_hooks_builds_with_no_lua_pool()
    {
        var config = Valid(LuaSection + "routes:\n  - { name: a, path: /a, respond: {} }\n");
        var errors = new List<ConfigError>();

        var snapshot = Snapshot.Build(config, errors);

        Assert.Empty(errors);
        Assert.NotNull(snapshot);
        Assert.Null(snapshot.Pool);
    }
}
