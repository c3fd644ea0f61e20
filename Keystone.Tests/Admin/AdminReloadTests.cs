using System.Net;
using System.Text.RegularExpressions;
using Keystone.Tests.Integration;
using Keystone.Tests.Observability;
using Microsoft.AspNetCore.Http;

namespace Keystone.Tests.Admin;

/// <summary>
/// POST /admin/reload re-reads KeystoneInstance.ConfigPath: a good file is applied whole, a bad one changes nothing and
/// says where it is wrong, and settings bound at start are reported, not applied. In the serial collection because
/// keystone_config_reloads_total has no per-instance label: exact deltas need no other reload running meanwhile.
/// </summary>
[Collection(MetricsSerialCollection.Name)]
public sealed class AdminReloadTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(20));

    public void Dispose() => _timeout.Dispose();

    private CancellationToken Cancel => _timeout.Token;

    private static string Routes(params string[] names) =>
        "routes:\n" + string.Concat(names.Select(n => $"  - {{ name: {n}, path: /{n}, respond: {{ status: 200, body: {n} }} }}\n"));

    [Fact]
    public async Task Reload_applies_a_route_added_to_the_file()
    {
        string old = AdminHttp.Unique("old"), added = AdminHttp.Unique("added");
        await using var keystone = await KeystoneInstance.StartAsync(Routes(old));
        using var admin = keystone.CreateAdminClient();
        Assert.Equal(HttpStatusCode.NotFound, (await keystone.Client.GetAsync("/" + added, Cancel)).StatusCode);
        var before = await PromExposition.CurrentAsync(Cancel);

        await File.WriteAllTextAsync(keystone.ConfigPath, KeystoneInstance.WithTestDefaults(Routes(old, added)), Cancel);
        var reload = await AdminHttp.SendJsonAsync(admin, HttpMethod.Post, "/admin/reload", Cancel);

        Assert.True(reload.Status == 200, reload.Text);
        Assert.Equal("success", reload.Body.GetProperty("result").GetString());
        Assert.Empty(reload.Body.GetProperty("errors").EnumerateArray());
        Assert.Empty(reload.Body.GetProperty("restart_required").EnumerateArray());
        Assert.Equal(added, await keystone.Client.GetStringAsync("/" + added, Cancel));
        Assert.Equal(old, await keystone.Client.GetStringAsync("/" + old, Cancel));
        var routes = await AdminHttp.GetJsonAsync(admin, "/admin/routes", Cancel);
        Assert.Equal([old, added], routes.Body.GetProperty("routes").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
        var after = await PromExposition.CurrentAsync(Cancel);
        // The config watcher may apply the same write once more when this test outlasts its 300 ms settle time.
        Assert.True(PromExposition.Delta(before, after, "keystone_config_reloads_total", ("result", "success")) >= 1);
        Assert.Equal(0, PromExposition.Delta(before, after, "keystone_config_reloads_total", ("result", "failure")));
    }

    [Fact]
    public async Task Invalid_file_is_refused_with_locations_and_the_old_routes_keep_serving()
    {
        string old = AdminHttp.Unique("kept"), bad = AdminHttp.Unique("bad");
        await using var keystone = await KeystoneInstance.StartAsync(Routes(old));
        using var admin = keystone.CreateAdminClient();
        var (before, _) = await PromExposition.ScrapeAsync(admin, Cancel);

        await File.WriteAllTextAsync(keystone.ConfigPath, KeystoneInstance.WithTestDefaults(Routes(old) + $$"""
              - { name: {{bad}}, path: /{{bad}}, upstream: nowhere }
              - { name: typo, pathh: /typo, respond: { status: 200 } }

            """), Cancel);
        var reload = await AdminHttp.SendJsonAsync(admin, HttpMethod.Post, "/admin/reload", Cancel);

        Assert.True(reload.Status == 422, reload.Text);
        Assert.Equal("failure", reload.Body.GetProperty("result").GetString());
        var errors = reload.Body.GetProperty("errors").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.True(errors.Count >= 2, reload.Text);
        var located = new Regex($"^{Regex.Escape(keystone.ConfigPath)}:\\d+:\\d+: .+");
        Assert.All(errors, e => Assert.Matches(located, e));
        Assert.Contains(errors, e => e.Contains("nowhere", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("pathh", StringComparison.Ordinal));

        // Nothing of the bad file is applied; the old config serves on.
        Assert.Equal(old, await keystone.Client.GetStringAsync("/" + old, Cancel));
        Assert.Equal(HttpStatusCode.NotFound, (await keystone.Client.GetAsync("/" + bad, Cancel)).StatusCode);
        var routes = await AdminHttp.GetJsonAsync(admin, "/admin/routes", Cancel);
        Assert.Equal([old], routes.Body.GetProperty("routes").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
        Assert.Equal(errors, routes.Body.GetProperty("last_reload_errors").EnumerateArray().Select(e => e.GetString()!));
        var (after, _) = await PromExposition.ScrapeAsync(admin, Cancel);
        // The config watcher sees the same write and, when this test is slower than its 300 ms settle time
        // (a busy CI box), refuses the same file once or twice more: each refusal counts.
        Assert.True(PromExposition.Delta(before, after, "keystone_config_reloads_total", ("result", "failure")) >= 1);
        Assert.Equal(0, PromExposition.Delta(before, after, "keystone_config_reloads_total", ("result", "success")));
        Assert.Equal(before.Find("keystone_config_last_reload_timestamp_seconds"), after.Find("keystone_config_last_reload_timestamp_seconds"));

        // Broken YAML is refused the same way, with where it broke.
        await File.WriteAllTextAsync(keystone.ConfigPath, KeystoneInstance.WithTestDefaults("routes:\n  - { name: x, path: /x\n"), Cancel);
        var broken = await AdminHttp.SendJsonAsync(admin, HttpMethod.Post, "/admin/reload", Cancel);
        Assert.True(broken.Status == 422, broken.Text);
        Assert.Matches(located, Assert.Single(broken.Body.GetProperty("errors").EnumerateArray()).GetString());
        Assert.Equal(old, await keystone.Client.GetStringAsync("/" + old, Cancel));

        // Fixed again: applied, and the errors are gone from /admin/routes.
        await File.WriteAllTextAsync(keystone.ConfigPath, KeystoneInstance.WithTestDefaults(Routes(old)), Cancel);
        var fixedReload = await AdminHttp.SendJsonAsync(admin, HttpMethod.Post, "/admin/reload", Cancel);
        Assert.True(fixedReload.Status == 200, fixedReload.Text);
        routes = await AdminHttp.GetJsonAsync(admin, "/admin/routes", Cancel);
        Assert.Empty(routes.Body.GetProperty("last_reload_errors").EnumerateArray());
    }

    [Fact]
    public async Task A_changed_listen_is_reported_as_restart_required_and_not_applied()
    {
        string old = AdminHttp.Unique("stay"), added = AdminHttp.Unique("new");
        await using var keystone = await KeystoneInstance.StartAsync(Routes(old));
        using var admin = keystone.CreateAdminClient();
        var runningListen = keystone.Gateway.Current.Config.Listen.ToList();
        int otherPort = Ports.Closed();

        var text = await File.ReadAllTextAsync(keystone.ConfigPath, Cancel);
        Assert.StartsWith("listen: [http://127.0.0.1:0]\n", text);
        text = text.Replace("listen: [http://127.0.0.1:0]\n", $"listen: [http://127.0.0.1:{otherPort}]\n") + Routes(added)["routes:\n".Length..];
        await File.WriteAllTextAsync(keystone.ConfigPath, text, Cancel);
        var reload = await AdminHttp.SendJsonAsync(admin, HttpMethod.Post, "/admin/reload", Cancel);

        Assert.True(reload.Status == 200, reload.Text);
        Assert.Equal(["listen"], reload.Body.GetProperty("restart_required").EnumerateArray().Select(e => e.GetString()));
        // The rest of the file is applied; the listeners are not.
        Assert.Equal(added, await keystone.Client.GetStringAsync("/" + added, Cancel));
        Assert.Equal(old, await keystone.Client.GetStringAsync("/" + old, Cancel));
        Assert.Equal(runningListen, keystone.Gateway.Current.Config.Listen);
        Assert.DoesNotContain(keystone.Host.TrafficAddresses, a => a.Contains($":{otherPort}", StringComparison.Ordinal));
        using var probe = new System.Net.Sockets.TcpClient();
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(async () => await probe.ConnectAsync(IPAddress.Loopback, otherPort, Cancel));
    }

    private const string FastHealth = "{ interval: 200ms, timeout: 150ms, healthy_threshold: 1, unhealthy_threshold: 1 }";

    /// <summary>An upstream with a live target and a dead one (health-checked), its route, and the gauge of the dead one at 0.</summary>
    private async Task<(KeystoneInstance Keystone, TestBackend Live, string Upstream, string DeadTarget)> StartWithDeadTargetAsync()
    {
        var live = await TestBackend.StartAsync(static context => context.Response.WriteAsync("ok"));
        int dead = Ports.Closed();
        string up = AdminHttp.Unique("pool");
        var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              {{up}}:
                targets: ["{{live.Url}}", "http://127.0.0.1:{{dead}}"]
                health: {{FastHealth}}
            routes:
              - { name: {{AdminHttp.Unique("pool")}}, path: "/p/{*rest}", upstream: {{up}} }
            """);
        string deadTarget = $"127.0.0.1:{dead}";
        using var admin = keystone.CreateAdminClient();
        var metrics = await AdminHttp.ScrapeUntilAsync(admin, m => m.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", deadTarget)) == 0, Cancel);
        Assert.Equal(0, metrics.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", deadTarget)));
        return (keystone, live, up, deadTarget);
    }

    [Fact]
    public async Task A_refused_reload_changes_no_target_health_series()
    {
        var (keystone, live, up, deadTarget) = await StartWithDeadTargetAsync();
        await using var _ = keystone;
        await using var __ = live;
        using var admin = keystone.CreateAdminClient();

        // Valid YAML, but two routes conflict: only building the snapshot finds that. The file also adds a target.
        var text = await File.ReadAllTextAsync(keystone.ConfigPath, Cancel);
        string phantom = $"127.0.0.1:{Ports.Closed()}";
        Assert.Contains($"\"http://{deadTarget}\"]", text);
        text = text.Replace($"\"http://{deadTarget}\"]", $"\"http://{deadTarget}\", \"http://{phantom}\"]");
        await File.WriteAllTextAsync(keystone.ConfigPath,
            text.TrimEnd('\n') + "\n"
                 + $"  - {{ name: {AdminHttp.Unique("c1")}, path: /same, respond: {{ status: 204 }} }}\n"
                 + $"  - {{ name: {AdminHttp.Unique("c2")}, path: /same, respond: {{ status: 204 }} }}\n", Cancel);
        var reload = await AdminHttp.SendJsonAsync(admin, HttpMethod.Post, "/admin/reload", Cancel);
        Assert.True(reload.Status == 422, reload.Text);
        Assert.Contains("conflicts", reload.Text);

        // The running snapshot's dead target is still out of rotation; the gauge must keep saying so.
        await Task.Delay(500, Cancel); // a few health intervals: no flip will come to correct it
        var upstreams = await AdminHttp.GetJsonAsync(admin, "/admin/upstreams", Cancel);
        Assert.Contains("\"healthy\": false", upstreams.Text);
        var (metrics, _) = await PromExposition.ScrapeAsync(admin, Cancel);
        Assert.True(metrics.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", deadTarget)) == 0,
            "a refused reload set keystone_upstream_target_healthy of a target that is out of rotation back to 1: "
            + "Snapshot.Build constructs Targets (whose constructor sets the shared gauge child to 1) before it knows the snapshot is valid");
        // Nor may the refused file's new target appear in the exposition: the running config has no such target.
        Assert.True(metrics.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", phantom)) is null,
            $"a target only the refused file has is exported: keystone_upstream_target_healthy{{upstream=\"{up}\",target=\"{phantom}\"}} "
            + metrics.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", phantom)));
        Assert.DoesNotContain(phantom, upstreams.Text);
    }

    [Fact]
    public async Task A_target_removed_by_reload_leaves_no_health_series_behind()
    {
        var (keystone, live, up, deadTarget) = await StartWithDeadTargetAsync();
        await using var _ = keystone;
        await using var __ = live;
        using var admin = keystone.CreateAdminClient();

        // The operator removes the dead target.
        var text = await File.ReadAllTextAsync(keystone.ConfigPath, Cancel);
        Assert.Contains($", \"http://{deadTarget}\"", text);
        await File.WriteAllTextAsync(keystone.ConfigPath, text.Replace($", \"http://{deadTarget}\"", ""), Cancel);
        var reload = await AdminHttp.SendJsonAsync(admin, HttpMethod.Post, "/admin/reload", Cancel);
        Assert.True(reload.Status == 200, reload.Text);

        var (metrics, _) = await PromExposition.ScrapeAsync(admin, Cancel);
        Assert.Equal(1, metrics.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", $"127.0.0.1:{live.Port}")));
        // Left at 0, an alert on keystone_upstream_target_healthy == 0 would fire forever for a target that no longer exists.
        Assert.True(metrics.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", deadTarget)) is null,
            $"removed target still exported: keystone_upstream_target_healthy{{upstream=\"{up}\",target=\"{deadTarget}\"}} "
            + metrics.Find("keystone_upstream_target_healthy", ("upstream", up), ("target", deadTarget)));
    }

    [Fact]
    public async Task Reload_is_post_only()
    {
        await using var keystone = await KeystoneInstance.StartAsync(Routes(AdminHttp.Unique("get")));
        using var admin = keystone.CreateAdminClient();
        var before = await PromExposition.CurrentAsync(Cancel);

        var answer = await AdminHttp.GetJsonAsync(admin, "/admin/reload", Cancel);

        Assert.Equal(405, answer.Status);
        Assert.Equal(["POST"], answer.Response.Content.Headers.Allow);
        var after = await PromExposition.CurrentAsync(Cancel);
        Assert.Equal(0, PromExposition.Delta(before, after, "keystone_config_reloads_total", ("result", "success")));
    }
}
