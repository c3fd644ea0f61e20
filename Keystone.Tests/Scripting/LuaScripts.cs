using System.Text;
using System.Text.RegularExpressions;
using Keystone.Configuration;
using Keystone.Proxy;
using Keystone.Routing;
using Keystone.Scripting;
using Microsoft.AspNetCore.Http;

namespace Keystone.Tests.Scripting;

/// <summary>
/// Shortcuts for the Lua API tests: run a handler and take its answer, evaluate expressions and print their values
/// the same way in Keystone and in plain Lua, take the message of an error a statement raises.
/// </summary>
internal static partial class LuaScripts
{
    /// <summary>
    /// Defines <c>show(...)</c>: values printed with spaces between them, strings quoted, everything else through
    /// tostring (so 1 and 1.0 differ); and <c>each(s, p, init)</c>: every gmatch result, shown and joined with ",".
    /// Uses no pattern function, so it can print the results of the pattern functions under test.
    /// </summary>
    public const string Prelude = """
        local function show(...)
          local out = {}
          for i = 1, select("#", ...) do
            local v = select(i, ...)
            if type(v) == "string" then out[i] = "'" .. v .. "'" else out[i] = tostring(v) end
          end
          return table.concat(out, " ")
        end
        local function each(s, p, init)
          local out, next_match = {}, string.gmatch(s, p, init)
          while true do
            local r = table.pack(next_match())
            if r[1] == nil then break end
            out[#out + 1] = show(table.unpack(r, 1, r.n))
          end
          return table.concat(out, ",")
        end

        """;

    /// <summary>Runs the script's <c>handle(req)</c> and returns the body it answered with; fails the test if it did not answer.</summary>
    public static string Answer(string script, DefaultHttpContext? request = null, Dictionary<string, string?>? env = null,
        (string Name, string Source)[]? libs = null, long maxBody = 1 << 20)
    {
        var harness = ScriptHarness.Create(script, env: env, libs: libs, maxBody: maxBody);
        var result = harness.Run(request);
        Assert.True(result.Verdict == ScriptVerdict.Answered, $"{result.Verdict}: {result.Failure}");
        return result.Body;
    }

    /// <summary>The values of a Lua expression list, evaluated inside <c>handle(req)</c>, as <c>show</c> prints them.</summary>
    public static string Eval(string expressions, DefaultHttpContext? request = null, Dictionary<string, string?>? env = null,
        long maxBody = 1 << 20) =>
        Answer(Prelude + "function handle(req)\n  return show(" + expressions + ")\nend\n", request, env, maxBody: maxBody);

    /// <summary>The message of the error the statements raise inside <c>handle(req)</c>, without its "file:line: " prefix; "no error" when they raise none.</summary>
    public static string ErrorOf(string statements, DefaultHttpContext? request = null, long maxBody = 1 << 20)
    {
        var body = Answer("function handle(req)\n  local ok, e = pcall(function()\n" + statements
            + "\n  end)\n  if ok then return 'no error' end\n  return type(e) == 'string' and e or ('a ' .. type(e))\nend\n", request, maxBody: maxBody);
        return WithoutLocation(body);
    }

    /// <summary>Strips the "chunk:line: " Lua puts in front of a message raised from Lua code.</summary>
    public static string WithoutLocation(string message) => Location().Replace(message, "", 1);

    [GeneratedRegex("""^(scripts/[\w./]+\.lua|\[string "[^"]*"\]):\d+: """)]
    private static partial Regex Location();

    /// <summary>Evaluates the body of a function (it must return a string) in plain Lua 5.4 through KeraLua, after the same prelude.</summary>
    public static string Native(string functionBody)
    {
        using var lua = new KeraLua.Lua();
        lua.OpenLibs();
        var chunk = Prelude + "return (function()\n" + functionBody + "\nend)()\n";
        Assert.Equal(KeraLua.LuaStatus.OK, lua.LoadString(chunk));
        var status = lua.PCall(0, 1, 0);
        var text = Encoding.UTF8.GetString(lua.ToBuffer(-1) ?? []);
        Assert.True(status == KeraLua.LuaStatus.OK, text);
        return text;
    }

    /// <summary>The same function body run as <c>handle(req)</c> in Keystone.</summary>
    public static string InKeystone(string functionBody) => Answer(Prelude + "function handle(req)\n" + functionBody + "\nend\n");

    /// <summary>Compiles several scripts into one set, the way the gateway loads a scripts folder.</summary>
    public static ScriptSet CompileSet(params (string Name, string Source)[] scripts) => CompileSet(scripts, []);

    public static ScriptSet CompileSet((string Name, string Source)[] scripts, (string Name, string Source)[] libs)
    {
        var settings = new ScriptSettings(ScriptHarness.DefaultBudget, 4 << 20, new Dictionary<string, string?>(), 1 << 20);
        var sources = new List<ScriptSource>();
        foreach (var (name, source) in scripts)
            sources.Add(new ScriptSource(name, name + ".lua", "scripts/" + name + ".lua", Encoding.UTF8.GetBytes(source)));
        var libraries = new List<KeyValuePair<string, byte[]>>();
        foreach (var (name, source) in libs) libraries.Add(new(name, Encoding.UTF8.GetBytes(source)));
        var errors = new List<ConfigError>();
        return ScriptSet.Compile(settings, sources, libraries, null, errors, ScriptHarness.Shared)
            ?? throw new InvalidOperationException(string.Join("\n", errors));
    }

    /// <summary>Runs the on_request hooks of every script of <paramref name="set"/>, in order, on one request (a proxied route).</summary>
    public static (ScriptVerdict Verdict, string? Failure, ScriptCall Call) RunHooks(ScriptSet set, DefaultHttpContext? request = null)
    {
        var pool = new LuaStatePool(set);
        var hooks = new List<HookRef>();
        for (int i = 0; i < set.Scripts.Count; i++)
            if (set.FirstState!.HasFunction(i, ScriptFunction.OnRequest)) hooks.Add(new HookRef(i, false));
        var scripts = new RouteScripts(pool) { OnRequest = [.. hooks] };
        var main = new Upstream(new UpstreamConfig("main", [new TargetConfig(new Uri("http://127.0.0.1:1"), 1, default)], false, TimeSpan.FromSeconds(30), default));
        var config = new RouteConfig("set-route", null, [], "/items/{id}/{*rest}", MethodSet.All, "main", null, null, null, [], [], default);
        var route = new Route(config, main) { Scripts = scripts };
        var routes = new RouteTable<Route>();
        routes.Add(null, config.Path, MethodSet.All, route, config.Name);
        var call = new ScriptCall(request ?? ScriptHarness.Request(), routes, new Dictionary<string, Upstream> { ["main"] = main }, route, "req-set");
        var verdict = ScriptStage.RunRequest(call, scripts, out var failure);
        return (verdict, failure, call);
    }

    /// <summary>The body a hook answered with.</summary>
    public static string BodyOf(ScriptCall call) => call.ResponseBody is { } body ? Encoding.UTF8.GetString(body.Span) : "";
}
