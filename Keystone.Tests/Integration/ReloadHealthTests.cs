using System.Net;

namespace Keystone.Tests.Integration;

/// <summary>A reload must not put a dead target back into rotation, nor keep reporting a removed one.</summary>
[Collection(ProxySerialCollection.Name)] // waits on health checks
public sealed class ReloadHealthTests
{
    [Fact]
    public async Task Reload_keeps_a_dead_target_out_of_rotation_and_drops_removed_targets_from_metrics()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var alive = await TestBackend.StartEchoAsync("alive");
        int deadPort = Ports.Closed();
        var upstream = $"reload-health-{Guid.NewGuid():N}"[..24];
        string Config(string extraRoute) => $$"""
            upstreams:
              {{upstream}}:
                targets: ["{{alive.Url}}", "http://127.0.0.1:{{deadPort}}"]
                health: { path: /, interval: 100ms, timeout: 100ms, unhealthy_threshold: 1, healthy_threshold: 1 }
            routes:
              - { name: app, path: "/{*rest}", upstream: {{upstream}} }
            {{extraRoute}}
            """;
        await using var keystone = await KeystoneInstance.StartAsync(Config(""));
        var target = keystone.Gateway.Current.Upstreams[upstream].Targets[1];
        while (target.Health.IsHealthy) await Task.Delay(20, cts.Token);

        await File.WriteAllTextAsync(keystone.ConfigPath, KeystoneInstance.WithTestDefaults(
            Config("  - { name: extra, path: /extra, respond: { status: 200 } }")), cts.Token);
        var result = keystone.Host.Reloader.Reload("test");
        Assert.True(result.Ok, string.Join("\n", result.Errors));

        // Straight after the swap, before any new check, the dead target is still out: every request succeeds.
        var reloaded = keystone.Gateway.Current.Upstreams[upstream].Targets[1];
        Assert.NotSame(target, reloaded);
        Assert.False(reloaded.Health.IsHealthy);
        for (int i = 0; i < 20; i++)
        {
            using var response = await keystone.Client.GetAsync("/x", cts.Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Removing the dead target removes its health series.
        await File.WriteAllTextAsync(keystone.ConfigPath, KeystoneInstance.WithTestDefaults($$"""
            upstreams:
              {{upstream}}:
                targets: ["{{alive.Url}}"]
            routes:
              - { name: app, path: "/{*rest}", upstream: {{upstream}} }
            """), cts.Token);
        Assert.True(keystone.Host.Reloader.Reload("test").Ok);
        using var admin = keystone.CreateAdminClient();
        var metrics = await admin.GetStringAsync("/metrics", cts.Token);
        Assert.Contains($"keystone_upstream_target_healthy{{upstream=\"{upstream}\",target=\"{new Uri(alive.Url).Authority}\"}} 1", metrics);
        Assert.DoesNotContain($"target=\"127.0.0.1:{deadPort}\"}} 0", metrics);
    }
}
