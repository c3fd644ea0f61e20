using System.Diagnostics;
using System.Net;
using System.Text;
using Keystone.Configuration;
using Keystone.Observability;
using Keystone.Tests.Admin;
using Keystone.Tests.Integration;
using Xunit.Abstractions;
using static Keystone.Tests.Observability.PromExposition;

namespace Keystone.Tests.Observability;

/// <summary>
/// Tests that assert exact counts on label sets every Keystone shares (route="_none", config reloads) run here:
/// after the parallel tests and one at a time, so no other test's traffic moves those counters meanwhile.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetricsSerialCollection
{
    public const string Name = "Metrics exact counts";
}

/// <summary>Parses /metrics (never greps it) after known traffic and checks DESIGN.md §6 names, types, labels and values.</summary>
[Collection(MetricsSerialCollection.Name)]
public sealed class MetricsExpositionTests : IDisposable
{
    /// <summary>DESIGN.md §6 (and issue 5's access-log counter): every family with its type and label names.</summary>
    private static readonly (string Name, string Type, string[] Labels)[] DesignMetrics =
    [
        ("keystone_requests_total", "counter", ["route", "method", "status"]),
        ("keystone_request_duration_seconds", "histogram", ["route"]),
        ("keystone_upstream_requests_total", "counter", ["upstream", "target", "outcome"]),
        ("keystone_upstream_duration_seconds", "histogram", ["upstream"]),
        ("keystone_upstream_target_healthy", "gauge", ["upstream", "target"]),
        ("keystone_lua_execution_duration_seconds", "histogram", ["script", "phase"]),
        ("keystone_lua_failures_total", "counter", ["script", "reason"]),
        ("keystone_lua_pool_states", "gauge", ["state"]),
        ("keystone_config_reloads_total", "counter", ["result"]),
        ("keystone_config_last_reload_timestamp_seconds", "gauge", []),
        ("keystone_rate_limited_total", "counter", ["route"]),
        ("keystone_cache_requests_total", "counter", ["route", "result"]),
        ("keystone_access_log_dropped_total", "counter", []),
    ];

    private static readonly HashSet<string> MethodLabels = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "OTHER"];

    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(25));
    private readonly ITestOutputHelper _output;

    public MetricsExpositionTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => _timeout.Dispose();

    private CancellationToken Cancel => _timeout.Token;

    [Fact]
    public async Task Metrics_record_no_exemplars_even_inside_a_trace()
    {
        // prometheus-net attaches the current trace to every Inc and Observe unless told not to; that lookup
        // is a per-request cost Keystone does not want, and there is no trace per request to attach anyway.
        var route = $"exemplar-{Guid.NewGuid():N}"[..20];
        using (var activity = new Activity("traced").SetIdFormat(ActivityIdFormat.W3C).Start())
        {
            activity.ActivityTraceFlags = ActivityTraceFlags.Recorded;
            GatewayMetrics.Requests.WithLabels(route, "GET", "200").Inc();
            GatewayMetrics.RequestDuration.WithLabels(route).Observe(0.01);
        }

        using var stream = new MemoryStream();
        await Prometheus.Metrics.DefaultRegistry.CollectAndExportAsTextAsync(stream, Prometheus.ExpositionFormat.OpenMetricsText, Cancel);
        var text = Encoding.UTF8.GetString(stream.ToArray());

        Assert.Contains(route, text);
        Assert.DoesNotContain("trace_id", text);
    }

    [Fact]
    public async Task Known_traffic_shows_up_as_exact_counts_histograms_and_upstream_outcomes()
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        string routeA = $"a-{id}", routeP = $"p-{id}", routeD = $"d-{id}", up = $"up-{id}", down = $"down-{id}";
        await using var backend = await TestBackend.StartEchoAsync();
        int closedPort = Ports.Closed();
        string upTarget = $"127.0.0.1:{backend.Port}", downTarget = $"127.0.0.1:{closedPort}";

        var before = await CurrentAsync(Cancel);
        double startedUnix = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              {{up}}: { targets: ["{{backend.Url}}"] }
              {{down}}: { targets: ["http://{{downTarget}}"] }
            routes:
              - { name: {{routeA}}, path: /a, methods: [GET], respond: { status: 200, body: hi } }
              - { name: {{routeP}}, path: "/p/{*rest}", upstream: {{up}} }
              - { name: {{routeD}}, path: "/d/{*rest}", upstream: {{down}} }
            """);
        var client = keystone.Client;
        for (int i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/a", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await client.PostAsync("/a", new StringContent("x"), Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/nowhere-1", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/nowhere/2", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/p/x", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.BadGateway, (await client.GetAsync("/d/x", Cancel)).StatusCode);

        using var admin = keystone.CreateAdminClient();
        var after = await AdminHttp.ScrapeUntilAsync(admin, m =>
            m.Value("keystone_request_duration_seconds_count", ("route", routeA)) >= 3
            && m.Value("keystone_requests_total", ("route", routeD), ("method", "GET"), ("status", "502")) >= 1
            && Delta(before, m, "keystone_requests_total", ("route", GatewayMetrics.NoRoute), ("method", "GET"), ("status", "404")) >= 2, Cancel);

        // keystone_requests_total{route,method,status}: exact, and nothing else on these routes.
        Assert.Equal(3, after.Value("keystone_requests_total", ("route", routeA), ("method", "GET"), ("status", "200")));
        Assert.Equal(1, after.Value("keystone_requests_total", ("route", routeP), ("method", "GET"), ("status", "200")));
        Assert.Equal(1, after.Value("keystone_requests_total", ("route", routeD), ("method", "GET"), ("status", "502")));
        Assert.Equal(5, after.Series("keystone_requests_total", s => s.Label("route").EndsWith(id, StringComparison.Ordinal)).Sum(s => s.Value));
        // No route matched: route="_none". A 405 is a path some route has, but no route took the request, so it is _none too.
        Assert.Equal(2, Delta(before, after, "keystone_requests_total", ("route", "_none"), ("method", "GET"), ("status", "404")));
        Assert.Equal(1, Delta(before, after, "keystone_requests_total", ("route", "_none"), ("method", "POST"), ("status", "405")));
        Assert.Equal(0, Delta(before, after, "keystone_requests_total", ("route", routeA), ("method", "POST"), ("status", "405")));

        // keystone_request_duration_seconds{route}: buckets from 100 us to past 10 s, cumulative, +Inf = _count.
        var buckets = after.Series("keystone_request_duration_seconds_bucket", s => s.Label("route") == routeA)
            .Select(s => (Le: ParseFloat(s.Label("le")) ?? throw new FormatException($"bad le in {s}"), s.Value))
            .ToList();
        Assert.Contains(after.Series("keystone_request_duration_seconds_bucket", s => s.Label("route") == routeA), s => s.Label("le") == "0.0001");
        Assert.Contains(after.Series("keystone_request_duration_seconds_bucket", s => s.Label("route") == routeA), s => s.Label("le") == "+Inf");
        Assert.True(buckets.Where(b => !double.IsInfinity(b.Le)).Max(b => b.Le) >= 10, "the largest finite bucket must resolve 10 s");
        Assert.Equal(buckets.OrderBy(b => b.Le).Select(b => b.Le), buckets.Select(b => b.Le)); // le ascending, as written
        for (int i = 1; i < buckets.Count; i++)
            Assert.True(buckets[i].Value >= buckets[i - 1].Value, $"buckets not cumulative at le={buckets[i].Le}");
        Assert.Equal(3, buckets[^1].Value);
        Assert.Equal(3, after.Value("keystone_request_duration_seconds_count", ("route", routeA)));
        var sum = after.Value("keystone_request_duration_seconds_sum", ("route", routeA));
        Assert.InRange(sum, double.Epsilon, 30);

        // keystone_upstream_requests_total{upstream,target,outcome}: the live target succeeded once, the closed port failed once.
        Assert.Equal(1, after.Value("keystone_upstream_requests_total", ("upstream", up), ("target", upTarget), ("outcome", "success")));
        Assert.Equal(0, after.Value("keystone_upstream_requests_total", ("upstream", up), ("target", upTarget), ("outcome", "error")));
        Assert.Equal(1, after.Value("keystone_upstream_requests_total", ("upstream", down), ("target", downTarget), ("outcome", "error")));
        Assert.Equal(0, after.Value("keystone_upstream_requests_total", ("upstream", down), ("target", downTarget), ("outcome", "success")));
        Assert.Equal(0, after.Value("keystone_upstream_requests_total", ("upstream", down), ("target", downTarget), ("outcome", "timeout")));
        Assert.Equal(1, after.Value("keystone_upstream_duration_seconds_count", ("upstream", up)));
        Assert.Equal(1, after.Value("keystone_upstream_duration_seconds_count", ("upstream", down)));
        Assert.Equal(1, after.Value("keystone_upstream_duration_seconds_bucket", ("upstream", up), ("le", "+Inf")));
        Assert.True(after.Value("keystone_upstream_duration_seconds_sum", ("upstream", up)) > 0);
        Assert.Equal(1, after.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", upTarget)));
        Assert.Equal(1, after.Find("keystone_upstream_target_healthy", ("upstream", down), ("target", downTarget)));

        // Config loads: starting this instance is one successful load, stamped now.
        Assert.Equal(1, Delta(before, after, "keystone_config_reloads_total", ("result", "success")));
        Assert.Equal(0, Delta(before, after, "keystone_config_reloads_total", ("result", "failure")));
        var stamp = after.Find("keystone_config_last_reload_timestamp_seconds");
        Assert.NotNull(stamp);
        Assert.InRange(stamp.Value, startedUnix - 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0 + 1);
    }

    [Fact]
    public async Task Every_design_metric_has_a_type_line_of_its_type_and_its_labels_plus_process_metrics()
    {
        await using var keystone = await KeystoneInstance.StartAsync("routes:\n  - { name: types, path: /, respond: { status: 204 } }\n");
        await keystone.Client.GetAsync("/", Cancel);
        using var admin = keystone.CreateAdminClient();
        var (metrics, _) = await ScrapeAsync(admin, Cancel);

        foreach (var (name, type, labels) in DesignMetrics)
        {
            Assert.True(metrics.Families.TryGetValue(name, out var family), $"no # TYPE/# HELP for {name}");
            Assert.True(family.HasTypeLine, $"{name} has no # TYPE line");
            Assert.Equal((name, type), (name, family.Type));
            Assert.False(string.IsNullOrWhiteSpace(family.Help), $"{name} has no # HELP text");
            foreach (var sample in family.Samples)
            {
                string[] expected = sample.Name.EndsWith("_bucket", StringComparison.Ordinal) ? [.. labels, "le"] : labels;
                Assert.True(expected.Order().SequenceEqual(sample.Labels.Keys.Order()),
                    $"line {sample.Line}: {sample} has labels [{string.Join(",", sample.Labels.Keys)}], expected [{string.Join(",", expected)}]");
            }
        }

        // Process and .NET runtime metrics come along.
        foreach (var (name, type) in ((string, string)[])[
            ("process_cpu_seconds_total", "counter"), ("process_start_time_seconds", "gauge"),
            ("process_num_threads", "gauge"), ("process_working_set_bytes", "gauge"),
            ("dotnet_total_memory_bytes", "gauge"), ("dotnet_collection_count_total", "counter")])
        {
            Assert.True(metrics.Families.TryGetValue(name, out var family), $"no {name}");
            Assert.Equal((name, type), (name, family.Type));
            Assert.NotEmpty(family.Samples);
        }
        Assert.True(metrics.Value("process_cpu_seconds_total") > 0);
        Assert.True(metrics.Value("process_start_time_seconds") > 1_600_000_000);
    }

    [Fact]
    public async Task Label_values_are_config_names_whatever_paths_and_methods_clients_send()
    {
        var route = AdminHttp.Unique("card");
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            routes:
              - { name: {{route}}, path: "/c/{*rest}", methods: [GET], respond: { status: 200 } }
            """);
        using var admin = keystone.CreateAdminClient();
        var (before, _) = await ScrapeAsync(admin, Cancel);

        // Odd targets straight on the wire: query strings, NUL, encoded climbs, quotes, newline escapes, a bare '*'.
        string[] odd =
        [
            "/x?y", "/x?route=evil\"label", "/%00", "/%00%00/../", "/c/%00", "/%2e%2e/%2e%2e/etc/passwd", "/c/%22quoted%22%5C",
            "/a%0Ab", "/%ZZ", "/c/{route=\"x\"}", "//double//slash", "/c/" + new string('x', 2000), "*",
        ];
        foreach (var target in odd)
        {
            var result = await RawHttpClient.SendAsync(keystone.Port, $"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            _output.WriteLine($"{target[..Math.Min(target.Length, 40)]} -> {result.First?.Status.ToString() ?? "no answer"}");
        }

        // 1,000 random paths and methods, eight connections at a time.
        int sent = 0;
        await Parallel.ForAsync(0, 8, Cancel, async (worker, cancel) =>
        {
            var random = new Random(worker);
            using var client = keystone.CreateClient();
            for (int i = 0; i < 125; i++)
            {
                var path = (random.Next(2) == 0 ? "/c/" : "/") + RandomSegment(random) + "/" + RandomSegment(random) + "?q=" + RandomSegment(random);
                var method = random.Next(6) switch
                {
                    0 => HttpMethod.Post,
                    1 => HttpMethod.Delete,
                    2 => new HttpMethod("X" + RandomToken(random)),
                    _ => HttpMethod.Get,
                };
                using var response = await client.SendAsync(new HttpRequestMessage(method, path), cancel);
                Interlocked.Increment(ref sent);
            }
        });
        Assert.Equal(1000, sent);

        var after = await AdminHttp.ScrapeUntilAsync(admin, m =>
            m.Series("keystone_requests_total").Sum(s => s.Value) - before.Series("keystone_requests_total").Sum(s => s.Value) >= 1000, Cancel);

        Assert.True(after.Series("keystone_requests_total").Sum(s => s.Value) - before.Series("keystone_requests_total").Sum(s => s.Value) >= 1000,
            "every request that reached Keystone is counted");
        var configNames = new HashSet<string>(keystone.Gateway.Current.Config.Routes.Select(r => r.Name)) { GatewayMetrics.NoRoute };
        var beforeKeys = before.Series("keystone_requests_total").Select(s => s.ToString().Split(' ')[0]).ToHashSet();
        var added = after.Series("keystone_requests_total").Where(s => !beforeKeys.Contains(s.ToString().Split(' ')[0])).ToList();
        foreach (var s in added) _output.WriteLine($"new series: {s}");
        Assert.True(added.Count <= 3 * MethodLabels.Count, $"{added.Count} new keystone_requests_total series from 1,000 random requests");
        foreach (var s in added)
        {
            Assert.True(configNames.Contains(s.Label("route")) || IsScriptRoute(s.Label("route")), s.Label("route"));
            Assert.Contains(s.Label("method"), MethodLabels);
            Assert.Matches("^[1-5][0-9][0-9]$", s.Label("status"));
        }
        Assert.True(Delta(before, after, "keystone_requests_total", ("route", route), ("method", "GET"), ("status", "200")) > 100);

        // Nowhere in Keystone's own families may a label value carry request text.
        foreach (var s in after.Samples.Where(s => s.Name.StartsWith("keystone_", StringComparison.Ordinal)))
            foreach (var (key, value) in s.Labels)
            {
                if (key is "le" or "target") continue; // a bucket bound; host:port of a configured target
                // Config names: plain names, or "tenant/route" for a tenant's routes; a request path would start with '/'.
                Assert.True(value == GatewayMetrics.NoRoute || value.Split('/').All(Names.IsValid) || (key == "route" && IsScriptRoute(value)),
                    $"line {s.Line}: label {key}=\"{value}\" is not a config name");
            }
        var durationSeries = after.Series("keystone_request_duration_seconds_count").Count();
        Assert.True(durationSeries - before.Series("keystone_request_duration_seconds_count").Count() <= 0,
            "duration series are per configured route only; the route's series exists from start");
    }

    /// <summary>
    /// A route a script declares is named "script:METHOD /template" after the script and its routes-table key
    /// (another test's instance in this process may have one): a declared name, never request text.
    /// </summary>
    private static bool IsScriptRoute(string value)
    {
        int colon = value.IndexOf(':');
        return colon > 0 && Names.IsValid(value[..colon]) && value.IndexOf('/', colon) > colon && !value.Contains('?');
    }

    [Fact]
    public async Task Exposition_passes_promtool_check_metrics()
    {
        var promtool = FindOnPath("promtool");
        Assert.True(promtool is not null,
            "promtool is not on PATH. `make test` installs it (make test-deps: Debian's `prometheus` package); "
            + "or run `apt-get install -y prometheus` (and stop the prometheus server it may start).");

        await using var backend = await TestBackend.StartEchoAsync();
        var up = AdminHttp.Unique("promup");
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              {{up}}: { targets: ["{{backend.Url}}"] }
            routes:
              - { name: {{AdminHttp.Unique("prom")}}, path: "/p/{*rest}", upstream: {{up}} }
            """);
        await keystone.Client.GetAsync("/p/x", Cancel);
        await keystone.Client.GetAsync("/nothing", Cancel);
        using var admin = keystone.CreateAdminClient();
        var (_, text) = await ScrapeAsync(admin, Cancel);

        var start = new ProcessStartInfo(promtool!, ["check", "metrics"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Cancel);
        var stderr = process.StandardError.ReadToEndAsync(Cancel);
        await process.StandardInput.WriteAsync(text.AsMemory(), Cancel);
        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync(Cancel);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }
        var output = (await stdout) + (await stderr);
        _output.WriteLine(output);
        Assert.True(process.ExitCode == 0, $"promtool check metrics exited {process.ExitCode}:\n{output}");
    }

    [Fact]
    public async Task Metrics_on_traffic_serves_the_exposition_on_the_traffic_port()
    {
        await using var keystone = await KeystoneInstance.StartAsync("""
            admin: { listen: http://127.0.0.1:0, metrics_on_traffic: true }
            routes:
              - { name: traffic-metrics, path: "/x", respond: { status: 204 } }
            """);

        var (metrics, _) = await ScrapeAsync(keystone.Client, Cancel);
        Assert.Equal("counter", metrics.Families["keystone_requests_total"].Type);
        Assert.True(metrics.Families.ContainsKey("process_cpu_seconds_total"));
        // Still on the admin listener too.
        using var admin = keystone.CreateAdminClient();
        var (adminMetrics, _) = await ScrapeAsync(admin, Cancel);
        Assert.Equal("counter", adminMetrics.Families["keystone_requests_total"].Type);
    }

    [Fact]
    public async Task Metrics_are_not_on_the_traffic_port_by_default()
    {
        await using var keystone = await KeystoneInstance.StartAsync("routes:\n  - { name: no-traffic-metrics, path: /x, respond: { status: 204 } }\n");

        var answer = await AdminHttp.GetJsonAsync(keystone.Client, "/metrics", Cancel);
        Assert.Equal(404, answer.Status);
        Assert.Equal("no route", answer.Body.GetProperty("error").GetString());
        using var admin = keystone.CreateAdminClient();
        await ScrapeAsync(admin, Cancel);
    }

    [Fact]
    public async Task Metrics_false_counts_nothing_for_its_routes_and_upstreams()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        string route = AdminHttp.Unique("quiet"), up = AdminHttp.Unique("quietup");
        string target = $"127.0.0.1:{backend.Port}";
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            metrics: false
            upstreams:
              {{up}}: { targets: ["{{backend.Url}}"] }
            routes:
              - { name: {{route}}, path: "/q/{*rest}", upstream: {{up}} }
            """);
        using var admin = keystone.CreateAdminClient();
        var (before, _) = await ScrapeAsync(admin, Cancel);

        for (int i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await keystone.Client.GetAsync("/q/x", Cancel)).StatusCode);
        await Task.Delay(200, Cancel);
        var (after, _) = await ScrapeAsync(admin, Cancel);

        Assert.Empty(after.Series("keystone_requests_total", s => s.Label("route") == route));
        Assert.Equal(0, Delta(before, after, "keystone_request_duration_seconds_count", ("route", route)));
        Assert.Equal(0, Delta(before, after, "keystone_upstream_requests_total", ("upstream", up), ("target", target), ("outcome", "success")));
        Assert.Equal(0, Delta(before, after, "keystone_upstream_duration_seconds_count", ("upstream", up)));
    }

    [Fact]
    public void Parser_reads_escapes_special_values_and_refuses_malformed_lines()
    {
        var parsed = Parse("""
            # HELP m_total A help with a \\ backslash\nand a newline.
            # TYPE m_total counter
            m_total{a="quote \" here",b="back\\slash",c="new\nline",d=""} 1.5e3
            m_total{a="x"} +Inf 1712345678000
            # TYPE h histogram
            h_bucket{le="0.0001"} 0
            h_bucket{le="+Inf"} 2
            h_sum 0.5
            h_count 2
            # a plain comment
            untyped_one NaN
            """.Replace("\r\n", "\n"));

        Assert.Equal("A help with a \\ backslash\nand a newline.", parsed.Families["m_total"].Help);
        var first = parsed.Families["m_total"].Samples[0];
        Assert.Equal("quote \" here", first.Labels["a"]);
        Assert.Equal("back\\slash", first.Labels["b"]);
        Assert.Equal("new\nline", first.Labels["c"]);
        Assert.Equal("", first.Labels["d"]);
        Assert.Equal(1500, first.Value);
        Assert.Equal(double.PositiveInfinity, parsed.Find("m_total", ("a", "x")));
        Assert.Equal(1712345678000, parsed.Families["m_total"].Samples[1].Timestamp);
        Assert.Equal(4, parsed.Families["h"].Samples.Count);
        Assert.Equal("untyped", parsed.Families["untyped_one"].Type);
        Assert.True(double.IsNaN(parsed.Value("untyped_one")));

        foreach (var bad in (string[])[
            "m{a=\"x} 1", "m{a=\"\\x\"} 1", "m{a=\"x\",a=\"y\"} 1", "m{1a=\"x\"} 1", "m 1 2 3", "m abc", "m{a=\"x\"}1",
            "m 1\nm 1", "m 1\n# TYPE m counter", "# TYPE m kounter", "# TYPE m counter\n# TYPE m gauge", "9m 1",
        ])
            Assert.Throws<FormatException>(() => Parse(bad));
    }

    private static string RandomSegment(Random random)
    {
        var sb = new StringBuilder();
        int length = random.Next(1, 24);
        for (int i = 0; i < length; i++)
        {
            if (random.Next(8) == 0) sb.Append('%').Append(random.Next(1, 256).ToString("X2"));
            else sb.Append((char)(random.Next(2) == 0 ? 'a' + random.Next(26) : '0' + random.Next(10)));
        }
        return sb.ToString();
    }

    private static string RandomToken(Random random) =>
        new([.. Enumerable.Range(0, random.Next(1, 10)).Select(_ => (char)('A' + random.Next(26)))]);

    private static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);
}
