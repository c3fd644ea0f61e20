using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Keystone.Tests.Integration;

/// <summary><c>connect_timeout</c>: a target that never accepts the TCP connection is a 504, at the configured time.</summary>
[Collection(ProxySerialCollection.Name)] // measures time
public sealed class ProxyConnectTimeoutTests
{
    [Fact]
    public async Task Target_that_never_accepts_the_connection_gives_504_at_connect_timeout()
    {
        // A listener that never accepts, its backlog filled: Linux then drops further SYNs, so a connect hangs.
        using var blackhole = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        blackhole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        blackhole.Listen(1);
        var port = ((IPEndPoint)blackhole.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        for (int i = 0; i < 3; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var quick = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            try { await filler.ConnectAsync(IPAddress.Loopback, port, quick.Token); } catch (OperationCanceledException) { }
            fillers.Add(filler);
        }

        try
        {
            await using var keystone = await KeystoneInstance.StartAsync($$"""
                upstreams:
                  app:
                    targets: ["http://127.0.0.1:{{port}}"]
                    connect_timeout: 300ms
                    timeout: 10s
                    eject: false
                    circuit_breaker: false
                routes:
                  - { name: app, path: "/{*rest}", upstream: app }
                """);
            var clock = Stopwatch.StartNew();
            using var response = await keystone.Client.GetAsync("/x");
            clock.Stop();

            Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
            Assert.Contains("upstream connect timed out", await response.Content.ReadAsStringAsync());
            Assert.InRange(clock.ElapsedMilliseconds, 250, 1500);
        }
        finally
        {
            foreach (var filler in fillers) filler.Dispose();
        }
    }
}
