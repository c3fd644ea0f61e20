using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Xunit;
using Xunit.Abstractions;

namespace Keystone.Tests.Integration;

/// <summary>Stopping (SIGTERM) lets requests in flight finish and takes no new connections.</summary>
[Collection(ProxySerialCollection.Name)]
public sealed class ProxyDrainTests
{
    private readonly ITestOutputHelper _output;

    public ProxyDrainTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Stop_lets_a_request_in_flight_finish_and_refuses_new_connections()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(async context =>
        {
            arrived.TrySetResult();
            await Task.Delay(TimeSpan.FromSeconds(1), context.RequestAborted);
            await context.Response.WriteAsync("finished", context.RequestAborted);
        });
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            shutdown_timeout: 10s
            upstreams:
              slow:
                targets: ["{{backend.Url}}"]
            routes:
              - name: slow
                path: "/slow"
                upstream: slow
            """);

        var inFlight = keystone.Client.GetAsync("/slow", cts.Token);
        await arrived.Task.WaitAsync(cts.Token);
        var clock = Stopwatch.StartNew();
        var stopping = keystone.StopAsync();

        // The listener closes at once; the drain goes on behind it.
        var refusedAfter = await FirstRefusalAsync(keystone.Port, cts.Token);
        Assert.False(inFlight.IsCompleted, $"the slow request ended before a connection was refused ({refusedAfter.TotalMilliseconds:F0} ms)");

        using var response = await inFlight;
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("finished", await response.Content.ReadAsStringAsync(cts.Token));
        await stopping.WaitAsync(cts.Token);
        _output.WriteLine($"refused {refusedAfter.TotalMilliseconds:F0} ms into the drain; stop took {clock.ElapsedMilliseconds} ms");

        var afterStop = await Assert.ThrowsAsync<SocketException>(() => ConnectAsync(keystone.Port, cts.Token));
        Assert.Equal(SocketError.ConnectionRefused, afterStop.SocketErrorCode);
    }

    private static async Task<TimeSpan> FirstRefusalAsync(int port, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await ConnectAsync(port, cancellationToken);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset)
            {
                return clock.Elapsed;
            }
            await Task.Delay(10, cancellationToken);
        }
    }

    private static async Task ConnectAsync(int port, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
    }
}
