using System.Net;
using System.Text.Json;
using Keystone.Tests.Integration;
using Keystone.Tests.Observability;
using Microsoft.AspNetCore.Http;

namespace Keystone.Tests.Admin;

/// <summary>/health (liveness) and /ready (every used upstream has a target in rotation) on the admin listener.</summary>
public sealed class AdminHealthTests : IDisposable
{
    private const string FastHealth = "{ interval: 200ms, timeout: 150ms, healthy_threshold: 1, unhealthy_threshold: 1 }";
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(25));

    public void Dispose() => _timeout.Dispose();

    private CancellationToken Cancel => _timeout.Token;

    [Fact]
    public async Task Health_is_200_status_ok()
    {
        await using var keystone = await KeystoneInstance.StartAsync("routes:\n  - { name: h, path: /, respond: { status: 204 } }\n");
        using var admin = keystone.CreateAdminClient();

        var answer = await AdminHttp.GetJsonAsync(admin, "/health", Cancel);

        Assert.Equal(200, answer.Status);
        Assert.Equal("""{"status":"ok"}""", JsonSerializer.Serialize(answer.Body));
    }

    [Fact]
    public async Task Ready_goes_503_while_the_only_target_of_a_used_upstream_is_down_and_200_when_it_returns()
    {
        TestBackend? first = await TestBackend.StartAsync(Ok);
        FixedPortBackend? second = null;
        int port = first.Port;
        int unusedPort = Ports.Closed();
        string used = AdminHttp.Unique("used"), unused = AdminHttp.Unique("unused"), target = $"127.0.0.1:{port}";
        try
        {
            await using var keystone = await KeystoneInstance.StartAsync($$"""
                upstreams:
                  {{used}}:
                    targets: ["http://{{target}}"]
                    health: {{FastHealth}}
                  {{unused}}:
                    targets: ["http://127.0.0.1:{{unusedPort}}"]
                    health: {{FastHealth}}
                routes:
                  - { name: {{AdminHttp.Unique("r")}}, path: "/r/{*rest}", upstream: {{used}} }
                """);
            using var admin = keystone.CreateAdminClient();

            // Up: the unused upstream's only target is down (nothing listens there), which must not matter.
            var ready = await AdminHttp.EventuallyAsync(async () =>
            {
                var a = await AdminHttp.GetJsonAsync(admin, "/ready", Cancel);
                return (Upstream(a, unused).GetProperty("healthy").GetInt32() == 0 && LastCheckMs(a, used) is not null, a);
            }, TimeSpan.FromSeconds(10), "the unused upstream's target to fail its checks", Cancel);
            Assert.Equal(200, ready.Status);
            Assert.Equal("ready", ready.Body.GetProperty("status").GetString());
            AssertUpstream(ready, used, healthy: 1, total: 1, usedByRoutes: true);
            AssertUpstream(ready, unused, healthy: 0, total: 1, usedByRoutes: false);
            Assert.InRange(LastCheckMs(ready, used)!.Value, 0, 5000);
            Assert.Equal(HttpStatusCode.OK, (await keystone.Client.GetAsync("/r/x", Cancel)).StatusCode);

            // Down: the used upstream's only target dies.
            await first.DisposeAsync();
            first = null;
            var notReady = await AdminHttp.EventuallyAsync(async () =>
            {
                var a = await AdminHttp.GetJsonAsync(admin, "/ready", Cancel);
                return (a.Status == 503, a);
            }, TimeSpan.FromSeconds(10), "/ready to answer 503 after the target died", Cancel);
            Assert.Equal("not_ready", notReady.Body.GetProperty("status").GetString());
            AssertUpstream(notReady, used, healthy: 0, total: 1, usedByRoutes: true);
            var deadTarget = Upstream(notReady, used).GetProperty("targets")[0];
            Assert.Equal(target, deadTarget.GetProperty("target").GetString());
            Assert.False(deadTarget.GetProperty("healthy").GetBoolean());
            Assert.False(string.IsNullOrEmpty(deadTarget.GetProperty("last_check_error").GetString()), "an operator must see why");
            Assert.Equal(JsonValueKind.Number, deadTarget.GetProperty("last_check_ms").ValueKind);
            var (metrics, _) = await PromExposition.ScrapeAsync(admin, Cancel);
            Assert.Equal(0, metrics.Find("keystone_upstream_target_healthy", ("upstream", used), ("target", target)));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await keystone.Client.GetAsync("/r/x", Cancel)).StatusCode);

            // Back: a new server on the same port.
            second = await FixedPortBackend.StartAsync(port, Ok);
            var back = await AdminHttp.EventuallyAsync(async () =>
            {
                var a = await AdminHttp.GetJsonAsync(admin, "/ready", Cancel);
                return (a.Status == 200, a);
            }, TimeSpan.FromSeconds(10), "/ready to answer 200 after the target came back", Cancel);
            Assert.Equal("ready", back.Body.GetProperty("status").GetString());
            AssertUpstream(back, used, healthy: 1, total: 1, usedByRoutes: true);
            (metrics, _) = await PromExposition.ScrapeAsync(admin, Cancel);
            Assert.Equal(1, metrics.Find("keystone_upstream_target_healthy", ("upstream", used), ("target", target)));
            Assert.Equal(HttpStatusCode.OK, (await keystone.Client.GetAsync("/r/x", Cancel)).StatusCode);
        }
        finally
        {
            if (first is not null) await first.DisposeAsync();
            if (second is not null) await second.DisposeAsync();
        }
    }

    [Fact]
    public async Task Ready_ignores_upstreams_no_route_uses()
    {
        int closed = Ports.Closed();
        string orphan = AdminHttp.Unique("orphan");
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              {{orphan}}:
                targets: ["http://127.0.0.1:{{closed}}"]
                health: {{FastHealth}}
            routes:
              - { name: {{AdminHttp.Unique("fixed")}}, path: /, respond: { status: 204 } }
            """);
        using var admin = keystone.CreateAdminClient();

        var answer = await AdminHttp.EventuallyAsync(async () =>
        {
            var a = await AdminHttp.GetJsonAsync(admin, "/ready", Cancel);
            return (Upstream(a, orphan).GetProperty("healthy").GetInt32() == 0, a);
        }, TimeSpan.FromSeconds(10), "the orphan upstream's target to fail its checks", Cancel);

        Assert.Equal(200, answer.Status);
        AssertUpstream(answer, orphan, healthy: 0, total: 1, usedByRoutes: false);
    }

    private static Task Ok(HttpContext context) => context.Response.WriteAsync("ok");

    private static JsonElement Upstream(JsonAnswer answer, string name)
    {
        foreach (var u in answer.Body.GetProperty("upstreams").EnumerateArray())
            if (u.GetProperty("name").GetString() == name) return u;
        throw new Xunit.Sdk.XunitException($"upstream {name} is not in {answer.Text}");
    }

    private static double? LastCheckMs(JsonAnswer answer, string upstream)
    {
        var value = Upstream(answer, upstream).GetProperty("targets")[0].GetProperty("last_check_ms");
        return value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;
    }

    private static void AssertUpstream(JsonAnswer answer, string name, int healthy, int total, bool usedByRoutes)
    {
        var u = Upstream(answer, name);
        Assert.True(healthy == u.GetProperty("healthy").GetInt32(), $"{name}: expected {healthy} healthy in {answer.Text}");
        Assert.Equal(total, u.GetProperty("total").GetInt32());
        Assert.Equal(usedByRoutes, u.GetProperty("used_by_routes").GetBoolean());
        Assert.Equal(total, u.GetProperty("targets").GetArrayLength());
    }
}
