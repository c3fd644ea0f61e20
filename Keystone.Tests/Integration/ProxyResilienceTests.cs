using System.Diagnostics;
using System.Net;

namespace Keystone.Tests.Integration;

/// <summary>Passive ejection and the circuit breaker, against real backends that fail and recover.</summary>
[Collection(ProxySerialCollection.Name)] // waits on breaker cool-downs
public sealed class ProxyResilienceTests
{
    [Fact]
    public async Task Target_refusing_connections_is_ejected_and_the_survivor_takes_all()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await using var alive = await TestBackend.StartEchoAsync("alive");
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              app:
                targets: ["{{alive.Url}}", "http://127.0.0.1:{{Ports.Closed()}}"]
                eject: { consecutive_failures: 2, eject_for: 30s }
                circuit_breaker: false
                retries: 0 # let the refusals reach the client, so they can be counted
            routes:
              - { name: app, path: "/{*rest}", upstream: app }
            """);

        int failures = 0;
        for (int i = 0; i < 4; i++)
        {
            using var response = await keystone.Client.GetAsync("/x", cts.Token);
            if (response.StatusCode == HttpStatusCode.BadGateway) failures++;
        }
        Assert.Equal(2, failures); // round-robin alternates until the second refusal ejects the dead target

        for (int i = 0; i < 20; i++)
        {
            using var response = await keystone.Client.GetAsync("/x", cts.Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.True(keystone.Gateway.Current.Upstreams["app"].Targets[1].Ejection!.IsEjected);
    }

    [Fact]
    public async Task Breaker_opens_answers_503_at_once_then_half_opens_and_closes_on_success()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var failing = true;
        await using var backend = await TestBackend.StartAsync(context =>
        {
            context.Response.StatusCode = Volatile.Read(ref failing) ? 500 : 200;
            return Task.CompletedTask;
        });
        var upstream = $"breaker-{Guid.NewGuid():N}"[..20];
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              {{upstream}}:
                targets: ["{{backend.Url}}"]
                eject: { consecutive_failures: 1000, on_5xx: true }
                circuit_breaker: { failures: 3, window: 10s, open_for: 500ms, half_open_probes: 1 }
            routes:
              - { name: app, path: "/{*rest}", upstream: {{upstream}} }
            """);
        var breaker = keystone.Gateway.Current.Upstreams[upstream].Targets[0].Breaker!;

        for (int i = 0; i < 3; i++)
            Assert.Equal(500, (int)(await keystone.Client.GetAsync("/x", cts.Token)).StatusCode); // upstream 500s pass through
        Assert.Equal(Keystone.Proxy.CircuitState.Open, breaker.State);

        var clock = Stopwatch.StartNew();
        using (var refused = await keystone.Client.GetAsync("/x", cts.Token))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("\"status\":503", await refused.Content.ReadAsStringAsync(cts.Token));
        }
        Assert.True(clock.ElapsedMilliseconds < 200, $"an open circuit answered after {clock.ElapsedMilliseconds} ms");
        Assert.Contains($"keystone_upstream_circuit_state{{upstream=\"{upstream}\",target=\"{new Uri(backend.Url).Authority}\"}} 1",
            await keystone.CreateAdminClient().GetStringAsync("/metrics", cts.Token));

        // Still failing after the cool-down: the one probe fails and the circuit opens again.
        await Task.Delay(600, cts.Token);
        Assert.Equal(500, (int)(await keystone.Client.GetAsync("/x", cts.Token)).StatusCode);
        Assert.Equal(Keystone.Proxy.CircuitState.Open, breaker.State);

        // Recovered: after the next cool-down the probe succeeds and the circuit closes.
        Volatile.Write(ref failing, false);
        await Task.Delay(600, cts.Token);
        Assert.Equal(Keystone.Proxy.CircuitState.HalfOpen, breaker.State);
        Assert.Equal(200, (int)(await keystone.Client.GetAsync("/x", cts.Token)).StatusCode);
        Assert.Equal(Keystone.Proxy.CircuitState.Closed, breaker.State);
        for (int i = 0; i < 5; i++)
            Assert.Equal(200, (int)(await keystone.Client.GetAsync("/x", cts.Token)).StatusCode);
    }
}

/// <summary><c>panic: true</c>: when health checks take every target out, traffic still flows.</summary>
[Collection(ProxySerialCollection.Name)] // waits on health checks
public sealed class ProxyPanicTests
{
    [Theory]
    [InlineData(true, HttpStatusCode.OK)]
    [InlineData(false, HttpStatusCode.ServiceUnavailable)]
    public async Task All_targets_failing_checks_are_still_used_in_panic(bool panic, HttpStatusCode expected)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        // The check path fails while real traffic works: a wrong check must not take the whole site down.
        await using var backend = await TestBackend.StartAsync(context =>
        {
            context.Response.StatusCode = context.Request.Path == "/healthz" ? 500 : 200;
            return Task.CompletedTask;
        });
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              app:
                targets: ["{{backend.Url}}"]
                panic: {{(panic ? "true" : "false")}}
                health: { path: /healthz, interval: 100ms, timeout: 100ms, unhealthy_threshold: 1 }
            routes:
              - { name: app, path: "/{*rest}", upstream: app }
            """);
        var target = keystone.Gateway.Current.Upstreams["app"].Targets[0];
        while (target.Health.IsHealthy) await Task.Delay(20, cts.Token);

        using var response = await keystone.Client.GetAsync("/x", cts.Token);
        Assert.Equal(expected, response.StatusCode);
    }
}
