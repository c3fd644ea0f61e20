using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Http;
using Xunit;

namespace Keystone.Tests.Integration;

/// <summary>An upgraded connection is relayed both ways until either side closes it.</summary>
public sealed class ProxyWebSocketTests
{
    [Fact]
    public async Task WebSocket_messages_echo_end_to_end_through_keystone()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await using var backend = await TestBackend.StartAsync(EchoWebSocketAsync, webSockets: true);
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              chat:
                targets: ["{{backend.Url}}"]
            routes:
              - name: chat
                path: "/ws/{*rest}"
                upstream: chat
            """);
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("echo.v1");

        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{keystone.Port}/ws/echo?room=1"), cts.Token);
        Assert.Equal("echo.v1", socket.SubProtocol);

        await socket.SendAsync(Encoding.UTF8.GetBytes("hello, keystone"), WebSocketMessageType.Text, true, cts.Token);
        var (type, text) = await ReceiveMessageAsync(socket, cts.Token);
        Assert.Equal(WebSocketMessageType.Text, type);
        Assert.Equal("hello, keystone", Encoding.UTF8.GetString(text));

        // Larger than any one read on the way, so it crosses the proxy in pieces.
        var big = StreamPattern.At(0, 100_000).ToArray();
        await socket.SendAsync(big, WebSocketMessageType.Binary, true, cts.Token);
        var (bigType, echoed) = await ReceiveMessageAsync(socket, cts.Token);
        Assert.Equal(WebSocketMessageType.Binary, bigType);
        Assert.Equal(big, echoed);

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
        Assert.Equal(WebSocketState.Closed, socket.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        Assert.Equal("bye", socket.CloseStatusDescription);
    }

    private static async Task EchoWebSocketAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest || context.Request.Path != "/ws/echo")
        {
            context.Response.StatusCode = 400;
            return;
        }
        var subProtocol = context.WebSockets.WebSocketRequestedProtocols.FirstOrDefault();
        using var socket = await context.WebSockets.AcceptWebSocketAsync(subProtocol);
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, context.RequestAborted);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                await socket.CloseAsync(result.CloseStatus ?? WebSocketCloseStatus.NormalClosure, result.CloseStatusDescription, context.RequestAborted);
                return;
            }
            await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, context.RequestAborted);
        }
    }

    private static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveMessageAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        using var message = new MemoryStream();
        var buffer = new byte[8 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cancellationToken);
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage) return (result.MessageType, message.ToArray());
        }
    }
}
