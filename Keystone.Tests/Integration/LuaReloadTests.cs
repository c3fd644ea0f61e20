using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Keystone.Scripting;
using Microsoft.Extensions.Logging;

namespace Keystone.Tests.Integration;

/// <summary>
/// Script and config changes on disk reach a running Keystone through its file watcher, with no call to the reloader:
/// each test edits files in its own folder and polls until the gateway answers the new way. SIGHUP is not tested here:
/// in this process it would signal the test host itself.
/// Serial: the leak check counts Lua states process-wide, and the syntax-error test swaps the process-wide script log.
/// </summary>
[Collection(ProxySerialCollection.Name)]
public sealed class LuaReloadTests
{
    /// <summary>The promise: a saved change serves within this time.</summary>
    private static readonly TimeSpan Promised = TimeSpan.FromSeconds(2);

    /// <summary>How long a poll waits before giving up; longer than the promise, so a slow reload fails on the measured time.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    private const string HelloV1 = "function handle(req)\n  return \"v1\"\nend\n";
    private const string HelloRoute = "  - { name: hello, path: /hello, handler: hello }\n";

    [Fact]
    public async Task Changing_a_handler_script_is_served_within_two_seconds()
    {
        using var folder = new ScriptFolder();
        folder.Write("hello", HelloV1);
        await using var keystone = await folder.StartAsync(HelloRoute);
        Assert.Equal((200, "v1"), await GetAsync(keystone, "/hello"));

        folder.Write("hello", "function handle(req)\n  return \"v2\"\nend\n");
        var elapsed = await UntilAsync(keystone, "/hello", (200, "v2"));

        Assert.True(elapsed < Promised, $"the changed script served after {elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task A_rename_style_save_of_a_script_is_served_within_two_seconds()
    {
        using var folder = new ScriptFolder();
        folder.Write("hello", HelloV1);
        await using var keystone = await folder.StartAsync(HelloRoute);
        Assert.Equal((200, "v1"), await GetAsync(keystone, "/hello"));

        var temporary = Path.Combine(folder.Root, "hello.lua.new");   // outside scripts/, as some editors do
        await File.WriteAllTextAsync(temporary, "function handle(req)\n  return \"renamed\"\nend\n");
        File.Move(temporary, Path.Combine(folder.ScriptsDir, "hello.lua"), overwrite: true);
        var elapsed = await UntilAsync(keystone, "/hello", (200, "renamed"));

        Assert.True(elapsed < Promised, $"the renamed script served after {elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task Changing_a_library_module_is_served_within_two_seconds()
    {
        using var folder = new ScriptFolder();
        folder.Write("hello", "local greet = require(\"text.greet\")\nfunction handle(req)\n  return greet.word\nend\n");
        folder.Write("lib/text/greet", "return { word = \"hi\" }\n");
        await using var keystone = await folder.StartAsync(HelloRoute);
        Assert.Equal((200, "hi"), await GetAsync(keystone, "/hello"));

        folder.Write("lib/text/greet", "return { word = \"hello again\" }\n");
        var elapsed = await UntilAsync(keystone, "/hello", (200, "hello again"));

        Assert.True(elapsed < Promised, $"the changed module served after {elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task A_new_script_route_answers_within_two_seconds_and_404s_again_once_the_file_is_deleted()
    {
        using var folder = new ScriptFolder();
        folder.Write("hello", HelloV1);
        await using var keystone = await folder.StartAsync(HelloRoute);
        Assert.Equal(404, (await GetAsync(keystone, "/added")).Status);

        folder.Write("added", """
            routes = {
              ["GET /added"] = function(req) return "added" end,
            }
            """);
        var elapsed = await UntilAsync(keystone, "/added", (200, "added"));
        Assert.True(elapsed < Promised, $"the new script route answered after {elapsed.TotalMilliseconds:F0} ms");

        folder.Delete("added");
        await UntilAsync(keystone, "/added", (404, null));
        Assert.Equal((200, "v1"), await GetAsync(keystone, "/hello"));
        Assert.Empty(keystone.Host.Reloader.LastErrors);
    }

    [Fact]
    public async Task Deleting_a_script_the_config_uses_is_rejected_and_the_previous_scripts_keep_serving()
    {
        using var folder = new ScriptFolder();
        folder.Write("hello", HelloV1);
        folder.Write("other", "function handle(req) return 'other' end\n");
        await using var keystone = await folder.StartAsync(HelloRoute);
        using var admin = keystone.CreateAdminClient();

        folder.Delete("hello");
        await UntilAsync(() => keystone.Host.Reloader.LastErrors.Count > 0, "the reload to be rejected");

        var error = Assert.Single(keystone.Host.Reloader.LastErrors).ToString();
        Assert.Contains("unknown script 'hello': there is no hello.lua in the scripts folder", error);
        Assert.StartsWith(keystone.ConfigPath + ":", error);
        Assert.Equal((200, "v1"), await GetAsync(keystone, "/hello"));
        var routes = JsonDocument.Parse(await admin.GetStringAsync("/admin/routes")).RootElement;
        Assert.Equal(error, Assert.Single(routes.GetProperty("last_reload_errors").EnumerateArray()).GetString());

        // Putting it back is a good reload again.
        folder.Write("hello", "function handle(req)\n  return \"back\"\nend\n");
        await UntilAsync(keystone, "/hello", (200, "back"));
        Assert.Empty(keystone.Host.Reloader.LastErrors);
    }

    [Fact]
    public async Task A_syntax_error_in_a_serving_script_is_logged_and_the_previous_version_keeps_serving_until_fixed()
    {
        using var folder = new ScriptFolder();
        folder.Write("hello", HelloV1);
        await using var keystone = await folder.StartAsync(HelloRoute);
        var log = new LogLines();
        var previousLogger = ScriptLog.Logger;
        ScriptLog.Logger = log;   // GatewayHost.Build set it; this process's tests that swap it run one at a time
        try
        {
            folder.Write("hello", "function handle(req)\n  return \"v2\"\nend\nend\n");

            // The broken version never serves, while the watcher surely had time to act on it.
            var watched = Stopwatch.StartNew();
            while (watched.Elapsed < TimeSpan.FromSeconds(3))
            {
                Assert.Equal((200, "v1"), await GetAsync(keystone, "/hello"));
                await Task.Delay(50);
            }
            var logged = log.Lines.Where(l => l.Level == LogLevel.Error && l.Message.Contains("hello.lua", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(logged);
            var display = Path.Combine(folder.ScriptsDir, "hello.lua");
            Assert.All(logged, l => Assert.StartsWith($"{display}:4:", l.Message));
            Assert.All(logged, l => Assert.Contains("keeps serving", l.Message));
            Assert.Empty(keystone.Host.Reloader.LastErrors);

            folder.Write("hello", "function handle(req)\n  return \"v3\"\nend\n");
            var elapsed = await UntilAsync(keystone, "/hello", (200, "v3"));
            Assert.True(elapsed < Promised, $"the fixed script served after {elapsed.TotalMilliseconds:F0} ms");
        }
        finally
        {
            ScriptLog.Logger = previousLogger;
        }
    }

    [Fact]
    public async Task A_new_script_with_a_syntax_error_rejects_the_reload_and_says_where()
    {
        using var folder = new ScriptFolder();
        folder.Write("hello", HelloV1);
        await using var keystone = await folder.StartAsync(HelloRoute);
        using var admin = keystone.CreateAdminClient();
        double failuresBefore = ReloadFailures(await admin.GetStringAsync("/metrics"));

        // No previous version to fall back on: the whole reload is refused, so the new route does not appear either.
        folder.Write("added", "routes = {\n  [\"GET /added\"] = function(req) return 'added' end\n\n");
        await UntilAsync(() => keystone.Host.Reloader.LastErrors.Count > 0, "the reload to be rejected");

        var display = Path.Combine(folder.ScriptsDir, "added.lua");
        var error = Assert.Single(keystone.Host.Reloader.LastErrors);
        Assert.Equal(display, error.Location.File);
        Assert.Equal(4, error.Location.Line);
        Assert.Equal((200, "v1"), await GetAsync(keystone, "/hello"));
        Assert.Equal(404, (await GetAsync(keystone, "/added")).Status);
        Assert.True(ReloadFailures(await admin.GetStringAsync("/metrics")) > failuresBefore);
        var routes = JsonDocument.Parse(await admin.GetStringAsync("/admin/routes")).RootElement;
        Assert.StartsWith(display + ":4:1: ", Assert.Single(routes.GetProperty("last_reload_errors").EnumerateArray()).GetString());

        folder.Write("added", "routes = {\n  [\"GET /added\"] = function(req) return 'added' end\n}\n");
        await UntilAsync(keystone, "/added", (200, "added"));
        Assert.Empty(keystone.Host.Reloader.LastErrors);
    }

    private static double ReloadFailures(string metrics)
    {
        foreach (var line in metrics.Split('\n'))
            if (line.StartsWith("keystone_config_reloads_total{result=\"failure\"} ", StringComparison.Ordinal))
                return double.Parse(line[(line.IndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Fail("no keystone_config_reloads_total{result=\"failure\"} in /metrics");
        return 0;
    }

    [Fact]
    public async Task A_rename_style_save_of_the_config_file_adding_a_route_is_picked_up_within_two_seconds()
    {
        using var folder = new ScriptFolder();
        folder.Write("hello", HelloV1);
        await using var keystone = await folder.StartAsync(HelloRoute);
        Assert.Equal(404, (await GetAsync(keystone, "/extra")).Status);

        // What editors do: write a new file next to the config, then rename it over the config.
        var temporary = keystone.ConfigPath + ".tmp";
        await File.WriteAllTextAsync(temporary, folder.Yaml(HelloRoute + "  - { name: extra, path: /extra, respond: { status: 200, body: extra } }\n"));
        File.Move(temporary, keystone.ConfigPath, overwrite: true);
        var elapsed = await UntilAsync(keystone, "/extra", (200, "extra"));

        Assert.True(elapsed < Promised, $"the renamed config served after {elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal((200, "v1"), await GetAsync(keystone, "/hello"));
    }

    [Fact]
    public async Task Twenty_script_reloads_leave_no_more_lua_states_open_than_one_pool()
    {
        const int states = 2;
        using var folder = new ScriptFolder(states);
        folder.Write("hello", "function handle(req)\n  return \"v0\"\nend\n");
        folder.Write("hook", "function on_request(req) req.ctx.seen = true end\n");
        await using var keystone = await folder.StartAsync("""
              - { name: hello, path: /hello, handler: hello, hooks: [hook] }
            """ + "\n");
        Assert.Equal((200, "v0"), await GetAsync(keystone, "/hello"));
        int baseline = LiveAfterCollecting();

        for (int i = 1; i <= 20; i++)
        {
            folder.Write("hello", $"function handle(req)\n  return \"v{i}\"\nend\n");
            await UntilAsync(keystone, "/hello", (200, $"v{i}"));
        }
        Assert.Empty(keystone.Host.Reloader.LastErrors);

        int live = LiveAfterCollecting();
        Assert.True(live <= baseline + states, $"{live} Lua states open after 20 reloads; {baseline} after the first start, pool of {states}");
    }

    [Fact]
    public async Task Reloads_close_their_lua_states_without_leaving_any_to_the_finalizer()
    {
        // A Lua state's memory is native: the GC does not feel it, so a state left for the finalizer may hold
        // up to lua.memory for a long time. Each warmed pool must own exactly the states it made.
        const int states = 2;
        using var folder = new ScriptFolder(states);
        folder.Write("hello", "function handle(req)\n  return \"v0\"\nend\n");
        await using var keystone = await folder.StartAsync(HelloRoute);
        Assert.Equal((200, "v0"), await GetAsync(keystone, "/hello"));
        int baseline = LiveAfterCollecting();

        for (int i = 1; i <= 10; i++)
        {
            folder.Write("hello", $"function handle(req)\n  return \"v{i}\"\nend\n");
            await UntilAsync(keystone, "/hello", (200, $"v{i}"));
        }

        int live = LuaState.Live;   // not collected first: only disposed states count as closed
        Assert.True(live <= baseline + states, $"{live} Lua states open after 10 reloads; {baseline} after the first start, pool of {states}");
    }

    private static int LiveAfterCollecting()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return LuaState.Live;
    }

    // ---- harness -------------------------------------------------------------------------------

    private static async Task<(int Status, string Body)> GetAsync(KeystoneInstance keystone, string path)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var response = await keystone.Client.GetAsync(path, cts.Token);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(cts.Token));
    }

    /// <summary>Polls every 50 ms until the path answers <paramref name="expected"/> (a null body matches any); returns how long that took.</summary>
    private static async Task<TimeSpan> UntilAsync(KeystoneInstance keystone, string path, (int Status, string? Body) expected)
    {
        var clock = Stopwatch.StartNew();
        (int Status, string Body) last = default;
        while (clock.Elapsed < Patience)
        {
            last = await GetAsync(keystone, path);
            if (last.Status == expected.Status && (expected.Body is null || last.Body == expected.Body)) return clock.Elapsed;
            await Task.Delay(50);
        }
        Assert.Fail($"{path} still answered {last.Status} {last.Body} after {Patience.TotalSeconds} s; expected {expected.Status} {expected.Body}");
        return clock.Elapsed;
    }

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > Patience) Assert.Fail($"waited {Patience.TotalSeconds} s for {what}");
            await Task.Delay(50);
        }
    }

    /// <summary>A temp folder with <c>scripts/</c> and the config file of one test; deleted afterwards.</summary>
    private sealed class ScriptFolder(int states = 2) : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("keystone-lua-reload-").FullName;
        public string ScriptsDir => Path.Combine(Root, "scripts");
        public string ConfigPath => Path.Combine(Root, "keystone.yaml");

        /// <summary>Writes <c>scripts/&lt;name&gt;.lua</c>; a name may hold folders (<c>lib/a/b</c>).</summary>
        public void Write(string name, string source)
        {
            var path = Path.Combine(ScriptsDir, name + ".lua");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, source);
        }

        public void Delete(string name) => File.Delete(Path.Combine(ScriptsDir, name + ".lua"));

        /// <summary>The whole config file as written on disk: test listeners, then <see cref="Config"/>.</summary>
        public string Yaml(string routes) => KeystoneInstance.WithTestDefaults(Config(routes));

        public Task<KeystoneInstance> StartAsync(string routes) => KeystoneInstance.StartAsync(Config(routes), ConfigPath);

        /// <summary>The lua section naming this folder's scripts, and <paramref name="routes"/> (indented list items).</summary>
        private string Config(string routes) => $"""
            lua:
              scripts_dir: {JsonSerializer.Serialize(ScriptsDir)}
              budget: 250ms
              states: {states}
            routes:

            """ + routes;

        public void Dispose()
        {
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        }
    }

    private sealed class LogLines : ILogger
    {
        private readonly ConcurrentQueue<(LogLevel Level, string Message)> _lines = new();

        public IReadOnlyCollection<(LogLevel Level, string Message)> Lines => _lines;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue((logLevel, formatter(state, exception)));
    }
}
