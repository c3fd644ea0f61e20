using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Keystone.Observability;
using Keystone.Scripting;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Keystone.Tests.Integration;

/// <summary>
/// Zero-downtime reload (issue 7): four keep-alive clients send requests back to back while the test performs 50 reloads
/// that add and remove routes, targets and an upstream, change retries, timeout and balancer, and swap the hook script.
/// Every response must match one of the configs active while it was in flight; none may fail or be a 5xx; an invalid
/// config or script changes nothing; afterwards managed memory and the Lua states open return to their baseline.
/// Serial: it counts Lua states and managed memory process-wide, and its timing must not compete with other tests.
/// </summary>
[Collection(ProxySerialCollection.Name)]
public sealed class ReloadUnderLoadTests(ITestOutputHelper output)
{
    private const int Reloads = 50;
    private const int Workers = 4;
    private const int BackendCount = 4;
    private const int States = 2;
    private const int DynamicRoutes = 6;
    private const long MemorySlack = 20L << 20;
    private static readonly TimeSpan LoadCap = TimeSpan.FromSeconds(22);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan SlowAnswer = TimeSpan.FromMilliseconds(50);

    /// <summary>What the load loop asks for; dynK routes come and go with the config.</summary>
    private static readonly string[] Paths =
        ["/stable/a", "/step", "/dyn0/x", "/stable/b", "/sv", "/dyn1/x", "/dyn2/x", "/stable/c", "/dyn3/x", "/dyn4/x", "/dyn5/x"];

    [Fact]
    public async Task Fifty_reloads_under_load_fail_no_request_and_leak_nothing()
    {
        var folder = Directory.CreateTempSubdirectory("keystone-reload-load-").FullName;
        var scripts = Directory.CreateDirectory(Path.Combine(folder, "scripts")).FullName;
        var backends = new TestBackend[BackendCount];
        for (int i = 0; i < BackendCount; i++)
        {
            var name = "b" + i;
            backends[i] = await TestBackend.StartAsync(async context =>
            {
                // Slow answers are still in flight when their snapshot is swapped out: on_response then runs on a retired pool.
                if (context.Request.Path.Value!.EndsWith("/slow", StringComparison.Ordinal)) await Task.Delay(SlowAnswer);
                context.Response.Headers["X-Backend"] = name;
                await context.Response.WriteAsync(name);
            });
        }
        var urls = Array.ConvertAll(backends, b => b.Url);
        var random = new Random(7);
        var timeline = new Timeline();
        var versions = new Timeline();   // Model.Version of each entry is what was written at From

        try
        {
            int step = 1, version = 1;
            SaveScript(folder, scripts, Stamp(version));
            versions.Begin(new Model(0, version, [], [], null, new bool[DynamicRoutes], ""));
            var model = NextModel(random, step, version, scripts, urls, previous: null);
            timeline.Begin(model);
            await using var keystone = await KeystoneInstance.StartAsync(model.Yaml);
            int liveAtStart = LuaState.Live;

            var clients = new HttpClient[Workers];
            var stats = new WorkerStats[Workers];
            for (int w = 0; w < Workers; w++)
            {
                clients[w] = keystone.CreateClient();
                stats[w] = new WorkerStats();
            }
            var check = new ResponseCheck(timeline, versions);

            // Warm-up: the same load without reloads, so JIT, connection pools and Kestrel are settled before the baseline.
            using (var warm = new CancellationTokenSource(TimeSpan.FromSeconds(1.5)))
                await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => WorkAsync(w, clients[w], stats[w], check, warm.Token)));
            Assert.True(check.Violations == 0 && stats.Sum(s => s.Failed) == 0, "warm-up already failed: " + check.Report());
            foreach (var s in stats) s.Reset();
            int liveBaseline = LiveAfterCollecting();
            long memoryBaseline = MemoryAfterCollecting();
            double successesBefore = GatewayMetrics.ConfigReloads.WithLabels("success").Value;
            double failuresBefore = GatewayMetrics.ConfigReloads.WithLabels("failure").Value;

            using var stop = new CancellationTokenSource(LoadCap);
            var clock = Stopwatch.StartNew();
            var load = Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(() => WorkAsync(w, clients[w], stats[w], check, stop.Token))));
            var problems = new List<string>();
            int applied = 0, refused = 0, watched = 0, scriptSwaps = 0;
            double slowestReload = 0;
            bool cappedEarly = false;
            try
            {
                for (int r = 1; r <= Reloads; r++)
                {
                    await Task.Delay(250);
                    if (r is 13 or 31)
                    {
                        // Invalid config: refused whole, the running snapshot stays the very same object.
                        await Task.Delay(800);   // lets the watcher's own reload of the last save finish first
                        var before = keystone.Gateway.Current;
                        var bad = NextModel(random, step + 1, version, scripts, urls, model);
                        if (r == 13)
                        {
                            Save(keystone.ConfigPath, KeystoneInstance.WithTestDefaults(bad.Yaml + "  - { name: bogus, path: /bogus, upstream: nowhere }\n"));
                            var result = keystone.Host.Reloader.Reload("test");
                            if (result.Ok || result.Errors.Count == 0) problems.Add($"reload {r}: a config with an unknown upstream was accepted");
                        }
                        else
                        {
                            watched++;
                            Save(keystone.ConfigPath, KeystoneInstance.WithTestDefaults(bad.Yaml + "  - { name: broken, path: /broken\n"));
                            if (!await UntilAsync(() => keystone.Host.Reloader.LastErrors.Count > 0))
                                problems.Add($"reload {r}: the watcher did not report the broken file within {Patience.TotalSeconds} s");
                        }
                        refused++;
                        if (!ReferenceEquals(before, keystone.Gateway.Current)) problems.Add($"reload {r}: an invalid config replaced the snapshot");
                        if (keystone.Host.Reloader.LastErrors.Count == 0) problems.Add($"reload {r}: no error recorded for the invalid config");
                        var names = RouteNames(keystone.Gateway.Current);
                        if (names != RouteNames(before)) problems.Add($"reload {r}: routes changed to {names}");
                        var (stepStatus, stepBody) = await GetAsync(keystone.Client, "/step");
                        if (stepStatus != 200 || stepBody != model.Step.ToString()) problems.Add($"reload {r}: /step answered {stepStatus} {stepBody}, expected {model.Step}");
                        var (stableStatus, _) = await GetAsync(keystone.Client, "/stable/after-invalid");
                        if (stableStatus != 200) problems.Add($"reload {r}: /stable answered {stableStatus} after the invalid config");
                        continue;
                    }

                    bool swapScript = r % 3 == 0 || r == 26;
                    bool brokenScript = r == 25;
                    if (swapScript)
                    {
                        // The watcher may apply the script before the config: that mix is a state requests may see too.
                        version++;
                        scriptSwaps++;
                        versions.Begin(new Model(0, version, [], [], null, new bool[DynamicRoutes], ""));
                        timeline.Begin(model with { Version = version });
                        SaveScript(folder, scripts, Stamp(version));
                    }
                    else if (brokenScript)
                    {
                        SaveScript(folder, scripts, BrokenStamp);
                    }
                    step++;
                    model = NextModel(random, step, version, scripts, urls, model);
                    timeline.Begin(model);
                    Save(keystone.ConfigPath, KeystoneInstance.WithTestDefaults(model.Yaml));
                    if (r is 8 or 19 or 37 or 46)
                    {
                        watched++;
                        if (!await UntilAsync(async () => await GetAsync(keystone.Client, "/step") == (200, step.ToString())))
                            problems.Add($"reload {r}: the watcher did not apply step {step} within {Patience.TotalSeconds} s");
                    }
                    else
                    {
                        var reloadClock = Stopwatch.StartNew();
                        var result = keystone.Host.Reloader.Reload("test");
                        slowestReload = Math.Max(slowestReload, reloadClock.Elapsed.TotalMilliseconds);
                        if (!result.Ok) problems.Add($"reload {r}: refused: {string.Join("; ", result.Errors)}");
                    }
                    timeline.EndAllButLast();
                    applied++;
                    var names2 = RouteNames(keystone.Gateway.Current);
                    if (names2 != model.RouteNames) problems.Add($"reload {r}: routes are {names2}, expected {model.RouteNames}");
                    if (brokenScript)
                    {
                        var (svStatus, svBody) = await GetAsync(keystone.Client, "/sv");
                        if (svStatus != 200 || svBody != version.ToString())
                            problems.Add($"reload {r}: after a script with a syntax error /sv answered {svStatus} {svBody}, expected the previous version {version}");
                    }
                }
                await Task.Delay(1000);
                cappedEarly = stop.IsCancellationRequested;
            }
            finally
            {
                stop.Cancel();
                await load;
            }
            var elapsed = clock.Elapsed;

            double successes = GatewayMetrics.ConfigReloads.WithLabels("success").Value - successesBefore;
            double failures = GatewayMetrics.ConfigReloads.WithLabels("failure").Value - failuresBefore;
            int liveBeforeCollecting = LuaState.Live;
            int liveAfter = LiveAfterCollecting();
            long memoryAfter = MemoryAfterCollecting();
            foreach (var client in clients) client.Dispose();

            long requests = stats.Sum(s => s.Requests), failed = stats.Sum(s => s.Failed), fives = stats.Sum(s => s.FiveXx);
            long notFound = stats.Sum(s => s.NotFound);
            output.WriteLine($"load: {requests} requests in {elapsed.TotalSeconds:F1} s ({requests / elapsed.TotalSeconds:F0}/s) by {Workers} workers{(cappedEarly ? $" (stopped by the {LoadCap.TotalSeconds} s cap before the last reload)" : "")}; "
                + $"failed {failed}, 5xx {fives}, expected 404 {notFound}, inconsistent {check.Violations}; p50 {WorkerStats.Percentile(stats, 0.50):F2} ms, "
                + $"p99 {WorkerStats.Percentile(stats, 0.99):F2} ms, max {WorkerStats.Max(stats):F1} ms");
            output.WriteLine($"reloads: {Reloads} performed ({applied} applied, {refused} invalid configs refused, {watched} through the file watcher, "
                + $"{scriptSwaps} script swaps, 1 broken script); slowest Reload() call {slowestReload:F0} ms; keystone_config_reloads_total +{successes} success "
                + $"+{failures} failure (the watcher also reloads after each save)");
            output.WriteLine($"memory: baseline {memoryBaseline / 1048576.0:F1} MB, after {memoryAfter / 1048576.0:F1} MB "
                + $"({(memoryAfter - memoryBaseline) / 1048576.0:+0.0;-0.0} MB)");
            output.WriteLine($"Lua states: {liveAtStart} right after start, baseline {liveBaseline} (after a GC), {liveBeforeCollecting} after the run before a GC, "
                + $"{liveAfter} after a GC; final pool size {States}");

            Assert.True(problems.Count == 0, string.Join("\n", problems));
            Assert.True(failed == 0, $"{failed} requests failed: {check.Report()}");
            Assert.True(fives == 0, $"{fives} responses were 5xx: {check.Report()}");
            Assert.True(check.Violations == 0, $"{check.Violations} responses matched no config active while they were in flight: {check.Report()}");
            Assert.True(memoryAfter <= memoryBaseline + MemorySlack,
                $"managed memory {memoryAfter / 1048576.0:F1} MB after the run, baseline {memoryBaseline / 1048576.0:F1} MB");
            // Every snapshot asks for the same pool size, so the final pool holds as many states as the first did.
            Assert.True(liveAfter <= liveBaseline, $"{liveAfter} Lua states open after the run and a GC; {liveBaseline} after the start");
        }
        finally
        {
            foreach (var backend in backends) await backend.DisposeAsync();
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
        }
    }

    // ---- the configs ---------------------------------------------------------------------------

    /// <summary>One config the test wrote: what a response answered by it may look like.</summary>
    /// <param name="App">Backends that are targets of 'app' (the stable route and dyn2).</param>
    /// <param name="Aux">Backends of 'aux' (dyn0).</param>
    /// <param name="Extra">Backends of 'extra' (dyn4), null while that upstream does not exist.</param>
    /// <param name="Dyn">Which dynK routes exist; odd ones answer "dynK@step" themselves.</param>
    private sealed record Model(int Step, int Version, int[] App, int[] Aux, int[]? Extra, bool[] Dyn, string Yaml)
    {
        public string RouteNames => string.Join(",", new[] { "stable", "step" }.Concat(Enumerable.Range(0, DynamicRoutes).Where(k => Dyn[k]).Select(k => "dyn" + k)));
    }

    private static readonly string[] Balancers = ["round_robin", "least_requests", "random", "hash"];

    private static Model NextModel(Random random, int step, int version, string scripts, string[] urls, Model? previous)
    {
        var dyn = new bool[DynamicRoutes];
        for (int k = 0; k < DynamicRoutes; k++) dyn[k] = random.Next(2) == 0;
        if (previous is not null && dyn.SequenceEqual(previous.Dyn)) dyn[step % DynamicRoutes] = !dyn[step % DynamicRoutes];
        int[] app = Subset(random), aux = Subset(random);
        int[]? extra = dyn[4] ? Subset(random) : null;
        var yaml = new StringBuilder($"""
            lua:
              scripts_dir: {JsonSerializer.Serialize(scripts)}
              budget: 250ms
              states: {States}
              global_hooks: [stamp]
            upstreams:

            """);
        AppendUpstream(yaml, "app", app, urls, random);
        AppendUpstream(yaml, "aux", aux, urls, random);
        if (extra is not null) AppendUpstream(yaml, "extra", extra, urls, random);
        yaml.Append("routes:\n");
        yaml.Append("  - { name: stable, path: \"/stable/{*rest}\", upstream: app }\n");
        yaml.Append($"  - {{ name: step, path: /step, respond: {{ status: 200, body: \"{step}\" }} }}\n");
        for (int k = 0; k < DynamicRoutes; k++)
        {
            if (!dyn[k]) continue;
            var answer = k switch
            {
                0 => "upstream: aux",
                2 => "upstream: app",
                4 => "upstream: extra",
                _ => $"respond: {{ status: 200, body: \"dyn{k}@{step}\" }}",
            };
            yaml.Append($"  - {{ name: dyn{k}, path: \"/dyn{k}/{{*rest}}\", {answer} }}\n");
        }
        return new Model(step, version, app, aux, extra, dyn, yaml.ToString());
    }

    private static void AppendUpstream(StringBuilder yaml, string name, int[] backends, string[] urls, Random random)
    {
        var targets = backends.Select(b => random.Next(4) == 0 ? $"{{ url: \"{urls[b]}\", weight: 2 }}" : $"\"{urls[b]}\"");
        var balancer = Balancers[random.Next(Balancers.Length)];
        yaml.Append($"  {name}:\n    targets: [{string.Join(", ", targets)}]\n");
        yaml.Append($"    retries: {random.Next(3)}\n    timeout: {(random.Next(3) + 1) * 10}s\n    balancer: {balancer}\n");
        if (balancer == "hash") yaml.Append("    hash_on: client_ip\n");
    }

    /// <summary>A non-empty random subset of the backends.</summary>
    private static int[] Subset(Random random)
    {
        int mask = random.Next(1, 1 << BackendCount);
        return [.. Enumerable.Range(0, BackendCount).Where(b => (mask & (1 << b)) != 0)];
    }

    private static string Stamp(int version) => $$"""
        -- version {{version}}
        local VERSION = "{{version}}"
        function on_response(req, res)
          res.headers["X-Script-Version"] = VERSION
        end
        routes = {
          ["GET /sv"] = function(req) return VERSION end,
        }
        """;

    /// <summary>A syntax error; its version number is never written as a valid script, so it must never be seen.</summary>
    private static readonly string BrokenStamp = Stamp(999) + "\nend\n";

    /// <summary>Saves like an editor does: a new file renamed over the old one, so no reader ever sees half of it.</summary>
    private static void Save(string path, string text)
    {
        var temporary = path + ".saving";
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>The temporary file stays outside the scripts folder: only whole *.lua files ever appear in it.</summary>
    private static void SaveScript(string folder, string scripts, string source)
    {
        var temporary = Path.Combine(folder, "stamp.saving");
        File.WriteAllText(temporary, source);
        File.Move(temporary, Path.Combine(scripts, "stamp.lua"), overwrite: true);
    }

    private static string RouteNames(Snapshot snapshot) => string.Join(",", snapshot.Config.Routes.Select(r => r.Name));

    // ---- the load ------------------------------------------------------------------------------

    private static async Task WorkAsync(int worker, HttpClient client, WorkerStats stats, ResponseCheck check, CancellationToken stop)
    {
        // Requests are never cancelled by the test: the last ones finish, so an abort is always the proxy's doing.
        for (int i = worker * 3; !stop.IsCancellationRequested; i++)
        {
            // One worker keeps a slow request in flight most of the time, so many of them straddle a swap.
            var path = worker == 0 && i % 4 == 0 ? "/stable/slow" : Paths[i % Paths.Length];
            long started = Stopwatch.GetTimestamp();
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                using var response = await client.GetAsync(path, timeout.Token);
                var body = await response.Content.ReadAsStringAsync(timeout.Token);
                long ended = Stopwatch.GetTimestamp();
                int status = (int)response.StatusCode;
                stats.Record(started, ended, status);
                check.Check(path, status, Header(response, "X-Backend"), Header(response, "X-Script-Version"), body, started, ended);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                stats.Record(started, Stopwatch.GetTimestamp(), 0);
                check.Fail($"GET {path} failed after {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms: {e.GetType().Name}: {e.Message} {e.InnerException?.Message}");
            }
        }
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;

    private static async Task<(int Status, string Body)> GetAsync(HttpClient client, string path)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var response = await client.GetAsync(path, timeout.Token);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(timeout.Token));
    }

    private static async Task<bool> UntilAsync(Func<bool> condition) => await UntilAsync(() => Task.FromResult(condition()));

    private static async Task<bool> UntilAsync(Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > Patience) return false;
            await Task.Delay(20);
        }
        return true;
    }

    private static int LiveAfterCollecting()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return LuaState.Live;
    }

    private static long MemoryAfterCollecting()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    /// <summary>
    /// The configs the test wrote, each with the time it may first have served (before its files were saved) and the
    /// time it surely stopped (once the reload that replaced it returned). Copy-on-write: workers read it lock-free.
    /// </summary>
    private sealed class Timeline
    {
        private readonly Lock _lock = new();
        private Entry[] _entries = [];

        public sealed class Entry(Model model, long from)
        {
            public Model Model { get; } = model;
            public long From { get; } = from;
            public long Until = long.MaxValue;
        }

        public void Begin(Model model)
        {
            lock (_lock) _entries = [.. _entries, new Entry(model, Stopwatch.GetTimestamp())];
        }

        public void EndAllButLast()
        {
            long now = Stopwatch.GetTimestamp();
            var entries = Volatile.Read(ref _entries);
            for (int i = 0; i < entries.Length - 1; i++)
                if (Volatile.Read(ref entries[i].Until) == long.MaxValue) Volatile.Write(ref entries[i].Until, now);
        }

        public IEnumerable<Model> ActiveDuring(long started, long ended)
        {
            foreach (var e in Volatile.Read(ref _entries))
                if (e.From <= ended && Volatile.Read(ref e.Until) >= started) yield return e.Model;
        }

        public bool WrittenBefore(int version, long moment)
        {
            foreach (var e in Volatile.Read(ref _entries))
                if (e.Model.Version == version && e.From <= moment) return true;
            return false;
        }
    }

    /// <summary>Checks each response against the configs active while it was in flight; keeps the first few mismatches.</summary>
    private sealed class ResponseCheck(Timeline timeline, Timeline versions)
    {
        private const int Kept = 15;
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _examples = new();
        private int _violations;

        public int Violations => Volatile.Read(ref _violations);

        public string Report() => Violations == 0 && _examples.IsEmpty ? "none" : "\n" + string.Join("\n", _examples);

        public void Fail(string what)
        {
            if (_examples.Count < Kept) _examples.Enqueue(what);
        }

        public void Check(string path, int status, string? backend, string? version, string body, long started, long ended)
        {
            string? problem = null;
            if (status >= 500) problem = "5xx";
            else if (version is not null && !(int.TryParse(version, out var v) && versions.WrittenBefore(v, ended)))
                problem = $"X-Script-Version {version} had not been written when the response arrived";
            else
            {
                bool any = false;
                foreach (var model in timeline.ActiveDuring(started, ended))
                {
                    any = Matches(model, path, status, backend, version, body);
                    if (any) break;
                }
                if (!any)
                    problem = "matches none of steps [" + string.Join(",", timeline.ActiveDuring(started, ended).Select(m => $"{m.Step}/v{m.Version}")) + "]";
            }
            if (problem is null) return;
            if (status < 500) Interlocked.Increment(ref _violations);
            Fail($"GET {path} -> {status} backend={backend} version={version} body={Trim(body)}: {problem} "
                + $"(in flight {Stopwatch.GetElapsedTime(started, ended).TotalMilliseconds:F1} ms)");
        }

        private static string Trim(string body) => body.Length > 200 ? body[..200] + "..." : body;

        private static bool Matches(Model m, string path, int status, string? backend, string? version, string body)
        {
            string v = m.Version.ToString();
            if (path.StartsWith("/stable/", StringComparison.Ordinal))
                return status == 200 && Served(m.App, backend) && version == v;
            if (path == "/step") return status == 200 && body == m.Step.ToString();
            if (path == "/sv") return status == 200 && body == v && version == v;
            int k = path[4] - '0';
            if (!m.Dyn[k]) return status == 404;
            if (status != 200) return false;
            return k switch
            {
                0 => Served(m.Aux, backend) && version == v,
                2 => Served(m.App, backend) && version == v,
                4 => Served(m.Extra!, backend) && version == v,
                _ => body == $"dyn{k}@{m.Step}",
            };
        }

        private static bool Served(int[] backends, string? backend) =>
            backend is not null && Array.IndexOf(backends, backend.Length == 2 ? backend[1] - '0' : -1) >= 0;
    }

    /// <summary>One worker's counts and latency histogram (100 µs buckets), allocated before the memory baseline.</summary>
    private sealed class WorkerStats
    {
        private const double BucketMs = 0.1;
        private readonly int[] _buckets = new int[100_000];

        public long Requests, Failed, FiveXx, NotFound;

        public void Reset()
        {
            Array.Clear(_buckets);
            Requests = Failed = FiveXx = NotFound = 0;
        }

        public void Record(long started, long ended, int status)
        {
            Requests++;
            if (status == 0) Failed++;
            else if (status >= 500) FiveXx++;
            else if (status == 404) NotFound++;
            double ms = Stopwatch.GetElapsedTime(started, ended).TotalMilliseconds;
            _buckets[Math.Min(_buckets.Length - 1, (int)(ms / BucketMs))]++;
        }

        public static double Percentile(WorkerStats[] all, double p)
        {
            long total = all.Sum(s => s.Requests), seen = 0, wanted = (long)Math.Ceiling(total * p);
            for (int b = 0; b < all[0]._buckets.Length; b++)
            {
                foreach (var s in all) seen += s._buckets[b];
                if (seen >= wanted && total > 0) return (b + 1) * BucketMs;
            }
            return double.NaN;
        }

        public static double Max(WorkerStats[] all)
        {
            for (int b = all[0]._buckets.Length - 1; b >= 0; b--)
                foreach (var s in all)
                    if (s._buckets[b] > 0) return (b + 1) * BucketMs;
            return 0;
        }
    }
}
