using System.Net.Sockets;

namespace Keystone.Proxy;

/// <summary>
/// Opens TCP connections to targets for the shared upstream client, bounded by the upstream's
/// <c>connect_timeout</c>: one handler serves every upstream, so the limit travels with the request.
/// </summary>
public static class UpstreamConnector
{
    /// <summary>Set on each upstream request by the transformer.</summary>
    public static readonly HttpRequestOptionsKey<TimeSpan> ConnectTimeout = new("keystone.connect_timeout");

    /// <summary>The fallback when a request carries no limit (the health prober's own client does not use this).</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    public static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancel)
    {
        if (!context.InitialRequestMessage.Options.TryGetValue(ConnectTimeout, out var timeout)) timeout = DefaultConnectTimeout;
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        limit.CancelAfter(timeout);
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, limit.Token);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            socket.Dispose();
            throw new ConnectTimeoutException(context.DnsEndPoint.ToString(), timeout);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>The target did not accept the TCP connection within <c>connect_timeout</c>.</summary>
public sealed class ConnectTimeoutException(string endpoint, TimeSpan timeout)
    : UpstreamTimeoutException($"connecting to {endpoint} took longer than {timeout.TotalMilliseconds:0}ms");
