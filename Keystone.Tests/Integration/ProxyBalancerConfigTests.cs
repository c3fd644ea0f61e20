using System.Text.Json;
using Keystone.Configuration;

namespace Keystone.Tests.Integration;

/// <summary>The <c>balancer:</c> and <c>hash_on:</c> keys, end to end through a real Keystone.</summary>
public sealed class ProxyBalancerConfigTests
{
    [Fact]
    public async Task Hash_on_a_header_keeps_each_key_on_one_target()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              app:
                balancer: hash
                hash_on: header:X-User
                targets: ["{{a.Url}}", "{{b.Url}}"]
            routes:
              - { name: app, path: "/{*rest}", upstream: app }
            """);

        var seen = new HashSet<string>();
        for (int user = 0; user < 20; user++)
        {
            string? first = null;
            for (int i = 0; i < 5; i++)
            {
                var backend = await BackendFor(keystone, $"user-{user}");
                first ??= backend;
                Assert.Equal(first, backend);
            }
            seen.Add(first!);
        }
        Assert.Equal(2, seen.Count); // 20 keys do not all land on one of two targets
    }

    [Fact]
    public async Task Least_requests_and_random_serve_through_every_target()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        foreach (var balancer in new[] { "least_requests", "random" })
        {
            await using var keystone = await KeystoneInstance.StartAsync($$"""
                upstreams:
                  app: { balancer: {{balancer}}, targets: ["{{a.Url}}", "{{b.Url}}"] }
                routes:
                  - { name: app, path: "/{*rest}", upstream: app }
                """);
            var seen = new HashSet<string>();
            for (int i = 0; i < 40; i++) seen.Add(await BackendFor(keystone, null));
            Assert.Equal(2, seen.Count);
        }
    }

    [Theory]
    [InlineData("balancer: fastest", "4:15: upstream 'app': balancer must be round_robin, least_requests, random or hash, not 'fastest'")]
    [InlineData("balancer: hash", "4:15: upstream 'app': balancer: hash needs hash_on (client_ip, header:<name> or cookie:<name>)")]
    [InlineData("hash_on: client_ip", "4:14: upstream 'app': hash_on only applies with balancer: hash")]
    [InlineData("balancer: hash\n    hash_on: \"header:\"", "5:14: upstream 'app': hash_on 'header:' needs a header name")]
    public void Balancer_mistakes_are_reported_with_their_location(string keys, string expected)
    {
        var yaml = $"upstreams:\n  app:\n    targets: [http://127.0.0.1:9]\n    {keys}\n";
        var result = ConfigLoader.Load(yaml, "keystone.yaml", _ => null);
        var error = Assert.Single(result.Errors);
        Assert.StartsWith("keystone.yaml:" + expected, error.ToString());
    }

    private static async Task<string> BackendFor(KeystoneInstance keystone, string? user)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
        if (user is not null) request.Headers.Add("X-User", user);
        using var response = await keystone.Client.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var echo = JsonSerializer.Deserialize<EchoReply>(await response.Content.ReadAsStringAsync(), JsonSerializerOptions.Web)!;
        return echo.Backend;
    }
}
