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
    // Runs once: whoever comes first runs it, and a caller that comes meanwhile waits for it to finish.
    private static readonly Lazy<bool> Warmed = new(Warm, LazyThreadSafetyMode.ExecutionAndPublication);

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
          keystone.jwt.verify("a.b.c", { secret = "s" }); keystone.jwt.verify(keystone.env("WARM_JWT"), { secret = "warm-secret" })
          keystone.json.decode("{bad"); keystone.json.decode('"\\ud800"'); keystone.base64url.decode("a")
          keystone.log("debug", "warm")
          string.find("abcabc", "b(c)"); string.match("k=v", "(%w+)=(%w+)"); string.gsub("abc", "%w", "%0%0")
          for w in string.gmatch("a b", "%a") do t[#t + 1] = w end
          pcall(string.rep); pcall(function() req.nope = 1 end)
        end
        function on_response(req, res)
          res.status = res.status; res.headers["x-warm"] = "1"; res.headers["server"] = nil
          local _ = res.headers["content-type"]; res.body = res.body
        end
        function handle(req)
          return { status = 200, headers = { ["x-warm"] = "1" }, body = "ok" }
        end
        """;

    /// <summary>
    /// Starts the warm-up on the thread pool: <c>serve</c> calls it first thing, so that on a second core it runs
    /// while the config is read, instead of after it.
    /// </summary>
    public static void Start() => ThreadPool.UnsafeQueueUserWorkItem(static _ => Run(), null);

    /// <summary>Returns once the warm-up has run (at once after the first time).</summary>
    public static void Run() => _ = Warmed.Value;

    private static bool Warm()
    {
        try
        {
            // Native AOT has no JIT: nothing to prepare, and the reflection below is what trimming cannot follow.
            if (System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeCompiled) Compile(typeof(ScriptWarmup).Assembly, "Keystone.Scripting");
            var env = new Dictionary<string, string?> { ["WARM_JWT"] = WarmToken() };
            var settings = new ScriptSettings(TimeSpan.FromSeconds(5), 4 << 20, env, 1 << 20);
            var source = new ScriptSource("warmup", "warmup.lua", "warmup.lua", Encoding.UTF8.GetBytes(Script));
            var errors = new List<ConfigError>();
            var set = ScriptSet.Compile(settings, [source], [], null, errors, new SharedDictionary(1 << 20), exported: false);
            if (set is null) throw new InvalidOperationException(string.Join("; ", errors));
            var pool = new LuaStatePool(set);
            var config = new RouteConfig("warmup", null, [], "/warm/{id}", MethodSet.All, null, null, null, null, [], [], default) { Handler = "warmup" };
            var hooks = new[] { new HookRef(0, false) };
            var scripts = new RouteScripts(pool) { OnRequest = hooks, OnResponse = hooks, HandlerScript = 0, BufferResponse = true };
            var route = new Route(config, null) { Scripts = scripts };
            var routes = new RouteTable<Route>();
            routes.Add(null, config.Path, MethodSet.All, route, "warmup");
            for (int i = 0; i < 3; i++)
            {
                var context = new DefaultHttpContext();
                context.Request.Method = "GET";
                context.Request.Path = "/warm/1";
                context.Request.QueryString = new QueryString("?q=1&q=2&r=3");
                context.Request.Headers["X-Warm"] = "1";
                var call = new ScriptCall(context, routes, new Dictionary<string, Upstream>(), route, "warmup");
                ScriptStage.RunRequest(call, scripts, out _);
                // The response phase of a proxied route, as the forwarder's transform would run it.
                var proxied = new RouteScripts(pool) { OnResponse = hooks, BufferResponse = true };
                using var upstream = new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent("warm") };
                context.Response.Body = new MemoryStream();
                ScriptStage.RunResponseAsync(call, proxied, upstream, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            pool.Retire();
        }
        catch (Exception e)
        {
            ScriptLog.Logger.LogWarning(e, "Lua warm-up failed; the first requests may run slow");
        }
        return true;
    }

    /// <summary>Compiles every method of the namespace up front (a no-op for ReadyToRun code).</summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Only prepares methods that exist; a trimmed-away method needs no JIT. Skipped under Native AOT.")]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "As above.")]
    private static void Compile(System.Reflection.Assembly assembly, string ns)
    {
        const System.Reflection.BindingFlags All = System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic
            | System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.DeclaredOnly;
        foreach (var type in assembly.GetTypes())
        {
            if (type.Namespace != ns || type.ContainsGenericParameters) continue;
            foreach (var method in type.GetMethods(All))
            {
                if (method.IsAbstract || method.ContainsGenericParameters) continue;
                try
                {
                    System.Runtime.CompilerServices.RuntimeHelpers.PrepareMethod(method.MethodHandle);
                }
                catch (Exception)
                {
                    // Some methods cannot be prepared on their own (UnmanagedCallersOnly); the run below reaches them.
                }
            }
        }
    }

    /// <summary>A valid HS256 token, so the warm-up reaches the signature check and not only the parser.</summary>
    private static string WarmToken()
    {
        static string Part(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
        var head = Part(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}")) + "." + Part(Encoding.UTF8.GetBytes("{\"sub\":\"warm\"}"));
        var signature = System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes("warm-secret"), Encoding.UTF8.GetBytes(head));
        return head + "." + Part(signature);
    }
}
