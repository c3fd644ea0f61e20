using Microsoft.AspNetCore.Http;
using Xunit;

namespace Keystone.Tests.Integration;

/// <summary>How an upstream spreads requests over its targets.</summary>
public sealed class ProxyBalancingTests
{
    [Fact]
    public async Task Round_robin_by_weight_is_exact_and_interleaved()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var heavy = await TestBackend.StartAsync(context => context.Response.WriteAsync("heavy"));
        await using var light = await TestBackend.StartAsync(context => context.Response.WriteAsync("light"));
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              pool:
                targets:
                  - url: "{{heavy.Url}}"
                    weight: 3
                  - url: "{{light.Url}}"
                    weight: 1
            routes:
              - name: pool
                path: "/{*rest}"
                upstream: pool
            """);

        var order = new List<string>(400);
        for (int i = 0; i < 400; i++)
            order.Add(await keystone.Client.GetStringAsync("/work", cts.Token));

        Assert.Equal(300, order.Count(name => name == "heavy"));
        Assert.Equal(100, order.Count(name => name == "light"));
        int run = 0, longestRun = 0;
        foreach (var name in order)
        {
            run = name == "heavy" ? run + 1 : 0;
            longestRun = Math.Max(longestRun, run);
        }
        Assert.InRange(longestRun, 1, 3);
    }
}
