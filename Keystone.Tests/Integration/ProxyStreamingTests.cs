using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Xunit;
using Xunit.Abstractions;

namespace Keystone.Tests.Integration;

/// <summary>Bodies far larger than memory stream through in both directions, intact, without growing the heap.</summary>
[Collection(ProxySerialCollection.Name)]
public sealed class ProxyStreamingTests
{
    private const long OneGiB = 1L << 30;
    private const long MaxHeapGrowth = 200L * 1024 * 1024;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(45);
    private readonly ITestOutputHelper _output;

    public ProxyStreamingTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Upload_of_1_GiB_streams_to_the_backend_intact_with_flat_memory(bool contentLength)
    {
        using var cts = new CancellationTokenSource(Bound);
        await using var backend = await TestBackend.StartAsync(async context =>
        {
            var check = new PatternCheck();
            var reader = context.Request.BodyReader;
            while (true)
            {
                var read = await reader.ReadAsync(context.RequestAborted);
                foreach (var segment in read.Buffer) check.Append(segment.Span);
                reader.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted) break;
            }
            await context.Response.WriteAsync($"{check.Count} {check.FirstMismatch}");
        });
        await using var keystone = await StartKeystoneAsync(backend);
        using var client = keystone.CreateClient();
        client.Timeout = Bound;

        await using var heap = new HeapWatch();
        var clock = Stopwatch.StartNew();
        var response = await client.PostAsync("/big/upload", new PatternContent(OneGiB, announceLength: contentLength), cts.Token);
        var reply = await response.Content.ReadAsStringAsync(cts.Token);
        clock.Stop();
        await heap.StopAsync();

        _output.WriteLine($"upload ({(contentLength ? "Content-Length" : "chunked")}): {Throughput.Describe(OneGiB, clock)}, {heap}");
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal($"{OneGiB} -1", reply);
        Assert.True(heap.PeakGrowth < MaxHeapGrowth, $"upload grew the heap: {heap}");
    }

    [Fact]
    public async Task Download_of_1_GiB_streams_to_the_client_intact_with_flat_memory()
    {
        using var cts = new CancellationTokenSource(Bound);
        await using var backend = await TestBackend.StartAsync(async context =>
        {
            // No Content-Length: the body goes out chunked, as a generated download would.
            context.Response.ContentType = "application/octet-stream";
            for (long sent = 0; sent < OneGiB;)
            {
                int n = (int)Math.Min(64 * 1024, OneGiB - sent);
                await context.Response.Body.WriteAsync(StreamPattern.At(sent, n), context.RequestAborted);
                sent += n;
            }
        });
        await using var keystone = await StartKeystoneAsync(backend);
        using var client = keystone.CreateClient();
        client.Timeout = Bound;

        await using var heap = new HeapWatch();
        var clock = Stopwatch.StartNew();
        using var response = await client.GetAsync("/big/download", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var check = new PatternCheck();
        await using (var body = await response.Content.ReadAsStreamAsync(cts.Token))
        {
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await body.ReadAsync(buffer, cts.Token)) > 0) check.Append(buffer.AsSpan(0, n));
        }
        clock.Stop();
        await heap.StopAsync();

        _output.WriteLine($"download: {Throughput.Describe(OneGiB, clock)}, {heap}");
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal(OneGiB, check.Count);
        Assert.Equal(-1, check.FirstMismatch);
        Assert.True(heap.PeakGrowth < MaxHeapGrowth, $"download grew the heap: {heap}");
    }

    private static Task<KeystoneInstance> StartKeystoneAsync(TestBackend backend) => KeystoneInstance.StartAsync($$"""
        upstreams:
          big:
            targets: ["{{backend.Url}}"]
        routes:
          - name: big
            path: "/big/{*rest}"
            upstream: big
            strip_prefix: true
        """);
}
