using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Keystone.Proxy;

/// <summary>
/// One keep-alive HTTP/1.1 connection to a target, with the buffer its responses are parsed from. Every wait on
/// it is bounded by a limit the caller gives; the timer behind the limits is the connection's own and reused.
/// </summary>
internal sealed class Http1Connection : IDisposable
{
    /// <summary>
    /// The buffer starts small, since most response heads are a few hundred bytes and an idle pool holds hundreds of
    /// connections, and doubles while a head or chunk line does not fit, up to <see cref="MaxBufferSize"/>.
    /// </summary>
    public const int InitialBufferSize = 4 * 1024;

    /// <summary>Room for a response head; larger heads are refused (SocketsHttpHandler's default is 64 KB too).</summary>
    public const int MaxBufferSize = 64 * 1024;

    private readonly Socket _socket;
    private readonly CancellationTokenSource _limit = new();
    private bool _broken;

    private Http1Connection(Socket socket) => _socket = socket;

    /// <summary>Received bytes not yet consumed are <c>Buffer[Start..End]</c>.</summary>
    public byte[] Buffer { get; private set; } = new byte[InitialBufferSize];
    public int Start { get; set; }
    public int End { get; private set; }
    public ReadOnlySpan<byte> Unread => Buffer.AsSpan(Start, End - Start);

    /// <summary>True when unread bytes fill the largest buffer: whatever they start (a head, a chunk line) is too long.</summary>
    public bool IsFull => End - Start == MaxBufferSize;

    /// <summary>Set when the connection comes from the pool: it may have been closed by the target meanwhile.</summary>
    public bool Reused { get; set; }

    public long IdleSince { get; set; }

    /// <summary>When the current request went out: <c>timeout</c> bounds the whole wait for its response head from there.</summary>
    public long RequestSent { get; set; }

    /// <summary>False once a wait timed out, a read or write failed, or a response was not read to its end.</summary>
    public bool CanBeReused => !_broken;

    public static async ValueTask<Http1Connection> OpenAsync(EndPoint endpoint, TimeSpan timeout, CancellationToken cancel)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        limit.CancelAfter(timeout);
        try
        {
            await socket.ConnectAsync(endpoint, limit.Token);
            return new Http1Connection(socket);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            socket.Dispose();
            throw new ConnectTimeoutException(endpoint.ToString() ?? "", timeout);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendAsync(ReadOnlyMemory<byte> bytes, TimeSpan limit)
    {
        Arm(limit);
        try
        {
            while (!bytes.IsEmpty)
            {
                int sent = await _socket.SendAsync(bytes, SocketFlags.None, _limit.Token);
                bytes = bytes[sent..];
            }
        }
        catch (Exception e)
        {
            throw Failed(e, limit, "sending the request");
        }
        finally
        {
            Disarm();
        }
    }

    /// <summary>
    /// Reads more into the buffer, first moving unread bytes to its start or, when they fill it, growing it; 0 when
    /// the target closed. Not to be called when <see cref="IsFull"/>.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> FillAsync(TimeSpan limit, string waitingFor)
    {
        if (Start == End)
        {
            Start = End = 0;
        }
        else if (End == Buffer.Length)
        {
            var destination = Start == 0 ? new byte[Math.Min(Buffer.Length * 2, MaxBufferSize)] : Buffer;
            Buffer.AsSpan(Start, End - Start).CopyTo(destination);
            Buffer = destination;
            End -= Start;
            Start = 0;
        }
        int read = await ReceiveAsync(Buffer.AsMemory(End), limit, waitingFor);
        End += read;
        return read;
    }

    /// <summary>Reads straight into <paramref name="destination"/> (the client's response buffer); 0 when the target closed.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> ReceiveAsync(Memory<byte> destination, TimeSpan limit, string waitingFor)
    {
        Arm(limit);
        try
        {
            return await _socket.ReceiveAsync(destination, SocketFlags.None, _limit.Token);
        }
        catch (Exception e)
        {
            throw Failed(e, limit, waitingFor);
        }
        finally
        {
            Disarm();
        }
    }

    /// <summary>
    /// True when the target sent something while the connection was idle: bytes no request asked for, or its close.
    /// Either way the connection must not carry another request, or the next client could get a stray response.
    /// </summary>
    public bool HasStirredWhileIdle() => _socket.Poll(0, SelectMode.SelectRead);

    /// <summary>Leaves the connection unusable: a response was abandoned half read, or the target broke the framing.</summary>
    public void MarkBroken() => _broken = true;

    /// <summary>Unblocks a pending wait from another thread (the client went away).</summary>
    public void Abort()
    {
        _broken = true;
        _socket.Dispose();
    }

    public void Dispose()
    {
        _broken = true;
        _socket.Dispose();
        _limit.Dispose();
    }

    private void Arm(TimeSpan limit)
    {
        if (limit != Timeout.InfiniteTimeSpan) _limit.CancelAfter(limit);
    }

    private void Disarm()
    {
        // A limit that fired leaves the source cancelled for good; the connection is not used again then.
        if (!_limit.TryReset()) _broken = true;
    }

    private Exception Failed(Exception e, TimeSpan limit, string waitingFor)
    {
        _broken = true;
        if (e is OperationCanceledException && _limit.IsCancellationRequested)
            return new UpstreamTimeoutException($"{waitingFor} took longer than {limit.TotalMilliseconds:0}ms");
        return e is ObjectDisposedException ? new OperationCanceledException("the client went away", e) : e;
    }
}
