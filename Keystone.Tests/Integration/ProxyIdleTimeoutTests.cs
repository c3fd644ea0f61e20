using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Keystone.Observability;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Keystone.Tests.Integration;

/// <summary>
/// <c>timeout</c> (the wait for response headers) and <c>idle_timeout</c> (the longest gap in the response body),
/// each enforced in its own phase when they differ, against backends that hang or stream slowly.
/// </summary>
[Collection(ProxySerialCollection.Name)] // measures time
public sealed class ProxyIdleTimeoutTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(15));
    private readonly ITestOutputHelper _output;

    public ProxyIdleTimeoutTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => _timeout.Dispose();

    private CancellationToken Cancel => _timeout.Token;

    private static string Config(string keys, params TestBackend[] backends) => $$"""
        upstreams:
          app:
            targets: [{{string.Join(", ", backends.Select(b => $"\"{b.Url}\""))}}]
            eject: false
            circuit_breaker: false
            {{keys.Replace("\n", "\n    ", StringComparison.Ordinal)}}
        routes:
          - { name: app, path: "/{*rest}", upstream: app }
        """;

    /// <summary>Waits without failing when the request is aborted, as a hung application would.</summary>
    private static async Task Stall(TimeSpan delay, HttpContext context)
    {
        try { await Task.Delay(delay, context.RequestAborted); }
        catch (OperationCanceledException) { }
    }

    /// <summary>Answers /warm at once (so the pooled connection exists before timing starts) and runs <paramref name="slow"/> for the rest.</summary>
    private static Task<TestBackend> StartAsync(Func<HttpContext, Task> slow, ConcurrentQueue<string>? hits = null) =>
        TestBackend.StartAsync(async context =>
        {
            if (context.Request.Path == "/warm")
            {
                await context.Response.WriteAsync("warm");
                return;
            }
            hits?.Enqueue(context.Request.Path.Value ?? "");
            await slow(context);
        });

    private static async Task WriteChunkAsync(HttpContext context, string text)
    {
        await context.Response.WriteAsync(text, context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    private async Task WarmAsync(KeystoneInstance keystone)
    {
        using var warm = await keystone.Client.GetAsync("/warm", Cancel);
        Assert.Equal("warm", await warm.Content.ReadAsStringAsync(Cancel));
    }

    [Fact]
    public async Task No_headers_within_timeout_is_a_504_at_timeout_even_when_idle_timeout_is_longer()
    {
        await using var backend = await StartAsync(context => Stall(TimeSpan.FromSeconds(5), context));
        await using var keystone = await KeystoneInstance.StartAsync(Config("timeout: 300ms\nidle_timeout: 5s", backend));
        await WarmAsync(keystone);
        var target = keystone.Gateway.Current.Upstreams["app"].Targets[0];
        double timeoutsBefore = target.Outcomes[(int)UpstreamOutcome.Timeout].Value;

        var clock = Stopwatch.StartNew();
        using var response = await keystone.Client.GetAsync("/stuck", Cancel);
        clock.Stop();

        _output.WriteLine($"504 after {clock.ElapsedMilliseconds} ms");
        var body = await ErrorBody.AssertAsync(response, 504, Cancel);
        Assert.Equal("upstream timed out", body.GetProperty("error").GetString());
        Assert.InRange(clock.ElapsedMilliseconds, 250, 500);
        // docs/metrics.md: outcome="timeout" when the upstream's timeout ran out.
        Assert.Equal(timeoutsBefore + 1, target.Outcomes[(int)UpstreamOutcome.Timeout].Value);
    }

    [Fact]
    public async Task A_first_byte_timeout_is_not_retried_on_another_target()
    {
        var hits = new ConcurrentQueue<string>();
        await using var one = await StartAsync(context => Stall(TimeSpan.FromSeconds(5), context), hits);
        await using var two = await StartAsync(context => Stall(TimeSpan.FromSeconds(5), context), hits);
        await using var keystone = await KeystoneInstance.StartAsync(Config("timeout: 300ms\nidle_timeout: 5s\nretries: 2", one, two));
        await WarmAsync(keystone);
        await WarmAsync(keystone);

        var clock = Stopwatch.StartNew();
        using var response = await keystone.Client.GetAsync("/stuck", Cancel);
        clock.Stop();

        _output.WriteLine($"504 after {clock.ElapsedMilliseconds} ms");
        await ErrorBody.AssertAsync(response, 504, Cancel);
        Assert.InRange(clock.ElapsedMilliseconds, 250, 500); // one wait, not one per target
        Assert.Single(hits);
    }

    [Fact]
    public async Task Body_gaps_longer_than_timeout_but_shorter_than_idle_timeout_are_fine()
    {
        await using var backend = await StartAsync(async context =>
        {
            await WriteChunkAsync(context, "chunk0;");
            for (int i = 1; i <= 3; i++)
            {
                await Task.Delay(600, context.RequestAborted);
                await WriteChunkAsync(context, $"chunk{i};");
            }
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config("timeout: 300ms\nidle_timeout: 2s", backend));

        var clock = Stopwatch.StartNew();
        using var response = await keystone.Client.GetAsync("/slow", HttpCompletionOption.ResponseHeadersRead, Cancel);
        Assert.Equal(200, (int)response.StatusCode);
        var body = await response.Content.ReadAsStringAsync(Cancel);
        clock.Stop();

        _output.WriteLine($"full body after {clock.ElapsedMilliseconds} ms");
        Assert.Equal("chunk0;chunk1;chunk2;chunk3;", body);
        Assert.True(clock.ElapsedMilliseconds >= 1700, $"the body came too fast ({clock.ElapsedMilliseconds} ms) to have had its gaps");
    }

    [Fact]
    public async Task Headers_may_take_longer_than_idle_timeout_when_timeout_allows()
    {
        await using var backend = await StartAsync(async context =>
        {
            await Task.Delay(600, context.RequestAborted);
            await WriteChunkAsync(context, "late but fine");
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config("timeout: 2s\nidle_timeout: 300ms", backend));

        using var response = await keystone.Client.GetAsync("/slow-start", Cancel);

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("late but fine", await response.Content.ReadAsStringAsync(Cancel));
    }

    /// <summary>
    /// Reads the response after its first chunk until the connection fails or ends; returns how long that took,
    /// what came after the first chunk, and how it ended.
    /// </summary>
    private async Task<(TimeSpan Took, string After, Exception? Error)> ReadPastFirstChunkAsync(KeystoneInstance keystone, string path, string first)
    {
        using var response = await keystone.Client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, Cancel);
        Assert.Equal(200, (int)response.StatusCode);
        await using var stream = await response.Content.ReadAsStreamAsync(Cancel);
        var buffer = new byte[1024];
        var firstBytes = new MemoryStream();
        while (firstBytes.Length < first.Length)
        {
            int n = await stream.ReadAsync(buffer, Cancel);
            Assert.True(n > 0, "the response ended before its first chunk");
            firstBytes.Write(buffer, 0, n);
        }
        Assert.Equal(first, Encoding.UTF8.GetString(firstBytes.ToArray()));

        var clock = Stopwatch.StartNew();
        var rest = new StringBuilder();
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer, Cancel)) > 0) rest.Append(Encoding.UTF8.GetString(buffer, 0, n));
            return (clock.Elapsed, rest.ToString(), null);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            return (clock.Elapsed, rest.ToString(), e);
        }
    }

    [Fact]
    public async Task A_body_stalled_longer_than_idle_timeout_aborts_the_response_at_idle_timeout()
    {
        await using var backend = await StartAsync(async context =>
        {
            await WriteChunkAsync(context, "first;");
            await Stall(TimeSpan.FromSeconds(5), context);
            await context.Response.WriteAsync("never;");
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config("timeout: 5s\nidle_timeout: 300ms", backend));

        var (took, rest, error) = await ReadPastFirstChunkAsync(keystone, "/stall", "first;");

        _output.WriteLine($"body ended after {took.TotalMilliseconds:F0} ms: {error?.GetType().Name ?? "clean end"} {error?.Message}");
        Assert.Equal("", rest);
        Assert.NotNull(error); // aborted, not a clean end: the client must not take a truncated body for a whole one
        Assert.InRange(took.TotalMilliseconds, 200, 1500);
    }

    [Fact]
    public async Task Idle_timeout_defaults_to_timeout_so_a_gap_longer_than_timeout_aborts()
    {
        await using var backend = await StartAsync(async context =>
        {
            await WriteChunkAsync(context, "first;");
            await Task.Delay(600, context.RequestAborted);
            await WriteChunkAsync(context, "second;");
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config("timeout: 300ms", backend));
        Assert.Equal(TimeSpan.FromMilliseconds(300), keystone.Gateway.Current.Upstreams["app"].IdleTimeout);

        var (took, rest, error) = await ReadPastFirstChunkAsync(keystone, "/gap", "first;");

        _output.WriteLine($"body ended after {took.TotalMilliseconds:F0} ms: {error?.GetType().Name ?? "clean end"} {error?.Message}");
        Assert.Equal("", rest);
        Assert.NotNull(error);
        Assert.InRange(took.TotalMilliseconds, 200, 1500);
    }
}
