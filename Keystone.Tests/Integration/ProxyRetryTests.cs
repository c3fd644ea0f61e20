using System.Net;

namespace Keystone.Tests.Integration;

/// <summary>Retries: safe requests refused by one target go to another; anything else is never sent twice.</summary>
public sealed class ProxyRetryTests
{
    private static string Config(string alive, int deadPort, string retries = "") => $$"""
        upstreams:
          app:
            targets: ["http://127.0.0.1:{{deadPort}}", "{{alive}}"]
            eject: false
            circuit_breaker: false
            {{retries}}
        routes:
          - { name: app, path: "/{*rest}", upstream: app }
        """;

    [Fact]
    public async Task Refused_GET_is_retried_on_another_target_and_succeeds()
    {
        int hits = 0;
        await using var alive = await TestBackend.StartAsync(context =>
        {
            Interlocked.Increment(ref hits);
            return Task.CompletedTask;
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(alive.Url, Ports.Closed()));

        for (int i = 0; i < 10; i++)
        {
            using var response = await keystone.Client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Equal(10, hits); // each request reached the live target exactly once
    }

    [Fact]
    public async Task POST_is_never_retried()
    {
        int hits = 0;
        await using var alive = await TestBackend.StartAsync(context =>
        {
            Interlocked.Increment(ref hits);
            return Task.CompletedTask;
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(alive.Url, Ports.Closed()));

        int refused = 0;
        for (int i = 0; i < 4; i++)
        {
            using var response = await keystone.Client.PostAsync("/x", new StringContent("order=1"));
            if (response.StatusCode == HttpStatusCode.BadGateway) refused++;
        }
        Assert.Equal(2, refused); // round-robin: every other POST meets the dead target and is answered 502
        Assert.Equal(2, hits);
    }

    [Fact]
    public async Task Retries_zero_turns_retrying_off()
    {
        await using var alive = await TestBackend.StartEchoAsync();
        await using var keystone = await KeystoneInstance.StartAsync(Config(alive.Url, Ports.Closed(), "retries: 0"));

        int refused = 0;
        for (int i = 0; i < 4; i++)
        {
            using var response = await keystone.Client.GetAsync("/x");
            if (response.StatusCode == HttpStatusCode.BadGateway) refused++;
        }
        Assert.Equal(2, refused);
    }

    [Fact]
    public async Task A_single_dead_target_is_not_retried_onto_itself()
    {
        int port = Ports.Closed();
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              app: { targets: ["http://127.0.0.1:{{port}}"], eject: false, circuit_breaker: false }
            routes:
              - { name: app, path: "/{*rest}", upstream: app }
            """);
        using var response = await keystone.Client.GetAsync("/x");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("upstream refused or reset the connection", await response.Content.ReadAsStringAsync());
    }
}
