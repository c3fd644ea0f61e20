using System.Text.Json;
using Keystone.Configuration;
using Keystone.Tests.Configuration;
using Keystone.Scripting;

namespace Keystone.Tests.Integration;

/// <summary>
/// A refused config (a bad reload, a failed validate) compiles its scripts before its routes are checked;
/// the Lua state it compiled must be closed at once, not left to the finalizer with up to lua.memory held.
/// Serial, because it counts the process's open Lua states.
/// </summary>
[Collection(ProxySerialCollection.Name)]
public sealed class RefusedBuildTests : IDisposable
{
    private readonly string _scripts = Directory.CreateTempSubdirectory("keystone-refused-").FullName;

    public void Dispose() => Directory.Delete(_scripts, recursive: true);

    [Fact]
    public void A_build_refused_for_a_route_conflict_closes_its_Lua_state()
    {
        File.WriteAllText(Path.Combine(_scripts, "auth.lua"), "function on_request(req) end\n");

        AssertNoStateLeftOpen("""
            routes:
              - { name: a, path: /same, respond: {}, hooks: [auth] }
              - { name: b, path: /same, respond: {} }
            """);
    }

    [Fact]
    public void A_build_refused_for_a_bad_script_route_closes_its_Lua_state()
    {
        File.WriteAllText(Path.Combine(_scripts, "api.lua"), "routes = { [\"GET nope\"] = function(req) return 'x' end }\n");

        AssertNoStateLeftOpen("routes:\n  - { name: a, path: /a, respond: {} }\n");
    }

    private void AssertNoStateLeftOpen(string routes)
    {
        var yaml = $"lua:\n  scripts_dir: {JsonSerializer.Serialize(_scripts)}\n" + routes;
        var config = TestConfig.Valid(yaml);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int before = LuaState.Live;

        var errors = new List<ConfigError>();
        var snapshot = Snapshot.Build(config, errors);

        Assert.Null(snapshot);
        Assert.NotEmpty(errors);
        Assert.Equal(before, LuaState.Live); // counted without a GC: only closed states are gone
    }
}
