using System.Text;
using Keystone.Configuration;
using Keystone.Proxy;
using Keystone.Routing;

namespace Keystone.Scripting;

/// <summary>
/// Runs one request through every native function once, when the first scripts load. The first call of
/// each compiles its .NET code, which takes milliseconds: without this, the first requests of a fresh
/// process would overrun a 1 ms budget through no fault of their scripts.
/// </summary>
internal static class ScriptWarmup
{
    private static int _done;

    private const string Script = """
        function on_request(req)
          local h = req.headers
          local t = { h["x-warm"], h["missing"], req.method, req.path, req.query_string, req.host, req.scheme,
            req.client_ip, req.id, req.route, req.upstream, req.body }
          for k, v in pairs(h) do t[#t + 1] = k end
          for k, v in pairs(req.query) do t[#t + 1] = v end
          for k, v in pairs(req.params) do t[#t + 1] = v end
          h["x-warm"] = "1"; h["x-warm"] = nil
          req.ctx.n = 1
          req.path = "/warm"; req.query_string = "a=1"; req.body = "x"
          local j = keystone.json.decode(keystone.json.encode({ a = { 1, 2, "x" }, b = true }))
          keystone.base64.decode(keystone.base64.encode("abc")); keystone.base64url.decode(keystone.base64url.encode("abc"))
          keystone.sha256("a"); keystone.hmac_sha256("k", "a"); keystone.now(); keystone.env("HOME")
          keystone.shared.set("keystone-warmup", 1); keystone.shared.incr("keystone-warmup", 1)
          keystone.shared.get("keystone-warmup"); keystone.shared.delete("keystone-warmup")
          keystone.jwt.verify("a.b.c", { secret = "s" })
          keystone.log("debug", "warm")
          string.find("abcabc", "b(c)"); string.match("k=v", "(%w+)=(%w+)"); string.gsub("abc", "%w", "%0%0")
          for w in string.gmatch("a b", "%a") do t[#t + 1] = w end
          pcall(string.rep); pcall(function() req.nope = 1 end)
        end
        function on_response(req, res)
          res.status = res.status; res.headers["x-warm"] = "1"; local _ = res.body
        end
        function handle(req)
          return { status = 200, headers = { ["x-warm"] = "1" }, body = "ok" }
        end
        """;

    public static void Run()
    {
        if (Interlocked.Exchange(ref _done, 1) == 1) return;
        try
        {
            var settings = new ScriptSettings(TimeSpan.FromSeconds(5), 4 << 20, new Dictionary<string, string?>(), 1 << 20);
            var source = new ScriptSource("warmup", "warmup.lua", "warmup.lua", Encoding.UTF8.GetBytes(Script));
            var errors = new List<ConfigError>();
            var set = ScriptSet.Compile(settings, [source], [], null, errors, new SharedDictionary(1 << 20));
            if (set is null) throw new InvalidOperationException(string.Join("; ", errors));
            var pool = new LuaStatePool(set);
            var config = new RouteConfig("warmup", null, [], "/warm/{id}", MethodSet.All, null, null, null, null, [], [], default) { Handler = "warmup" };
            var hooks = new[] { new HookRef(0, false) };
            var scripts = new RouteScripts(pool) { OnRequest = hooks, OnResponse = hooks, HandlerScript = 0 };
            var route = new Route(config, null) { Scripts = scripts };
            var routes = new RouteTable<Route>();
            routes.Add(null, config.Path, MethodSet.All, route, "warmup");
            for (int i = 0; i < 3; i++)
            {
                var context = new DefaultHttpContext();
                context.Request.Method = "GET";
                context.Request.Path = "/warm/1";
                context.Request.QueryString = new QueryString("?q=1");
                context.Request.Headers["X-Warm"] = "1";
                var call = new ScriptCall(context, routes, new Dictionary<string, Upstream>(), route, "warmup");
                ScriptStage.RunRequest(call, scripts, out _);
            }
            pool.Retire();
        }
        catch (Exception e)
        {
            ScriptLog.Logger.LogWarning(e, "Lua warm-up failed; the first requests may run slow");
        }
    }
}
