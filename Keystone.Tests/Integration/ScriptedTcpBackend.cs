using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Keystone.Tests.Integration;

/// <summary>
/// A TCP server on 127.0.0.1:0 that plays an HTTP/1.1 upstream byte for byte: a script runs per accepted connection,
/// reads request heads and writes whatever bytes the test gives, malformed ones included (Kestrel would refuse to
/// send them). It counts the connections it accepted and keeps every request head it read.
/// </summary>
public sealed class ScriptedTcpBackend : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<ScriptedConnection, Task> _script;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _heads = new();
    private readonly ConcurrentBag<(Socket Socket, Task Served)> _connections = new();
    private readonly Task _accepting;
    private int _accepted;

    private ScriptedTcpBackend(Func<ScriptedConnection, Task> script)
    {
        _script = script;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    /// <summary>http://127.0.0.1:port, as a target in the YAML.</summary>
    public string Url => $"http://127.0.0.1:{Port}";

    /// <summary>How many connections were accepted so far.</summary>
    public int Connections => Volatile.Read(ref _accepted);

    /// <summary>Every request head read, in order, without its final blank line.</summary>
    public string[] Heads => _heads.ToArray();

    /// <summary>Runs <paramref name="script"/> for each connection; the connection is closed when it returns.</summary>
    public static ScriptedTcpBackend Start(Func<ScriptedConnection, Task> script) => new(script);

    /// <summary>Answers every request head with the bytes <paramref name="respond"/> gives, keeping the connection open.</summary>
    public static ScriptedTcpBackend StartAnswering(Func<string, string> respond) => new(async connection =>
    {
        while (await connection.ReadHeadAsync() is { } head)
            await connection.WriteAsync(respond(head));
    });

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            socket.NoDelay = true;
            int number = Interlocked.Increment(ref _accepted);
            var connection = new ScriptedConnection(socket, number, _heads, _stop.Token);
            _connections.Add((socket, ServeAsync(connection, socket)));
        }
    }

    private async Task ServeAsync(ScriptedConnection connection, Socket socket)
    {
        await Task.Yield();
        try
        {
            await _script(connection);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Keystone closed or reset the connection, or the test is over.
        }
        finally
        {
            socket.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting;
        foreach (var (socket, _) in _connections) socket.Dispose();
        foreach (var (_, served) in _connections) await served;
        _stop.Dispose();
    }
}

/// <summary>One accepted connection, as a script sees it.</summary>
public sealed class ScriptedConnection
{
    private readonly Socket _socket;
    private readonly ConcurrentQueue<string> _heads;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _buffered;

    internal ScriptedConnection(Socket socket, int number, ConcurrentQueue<string> heads, CancellationToken stopping)
    {
        _socket = socket;
        Number = number;
        _heads = heads;
        Stopping = stopping;
    }

    /// <summary>1 for the first connection the backend accepted, 2 for the next, and so on.</summary>
    public int Number { get; }

    /// <summary>Cancelled when the backend is disposed.</summary>
    public CancellationToken Stopping { get; }

    /// <summary>The next request head (requests to this backend carry no body), or null when the peer closed first.</summary>
    public async Task<string?> ReadHeadAsync()
    {
        while (true)
        {
            int end = _buffer.AsSpan(0, _buffered).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                var head = Encoding.Latin1.GetString(_buffer, 0, end);
                _buffer.AsSpan(end + 4, _buffered - end - 4).CopyTo(_buffer);
                _buffered -= end + 4;
                _heads.Enqueue(head);
                return head;
            }
            if (_buffered == _buffer.Length) throw new InvalidDataException("request head larger than 64 KB");
            int read;
            try
            {
                read = await _socket.ReceiveAsync(_buffer.AsMemory(_buffered), SocketFlags.None, Stopping);
            }
            catch (SocketException)
            {
                return null;
            }
            if (read == 0) return null;
            _buffered += read;
        }
    }

    public Task WriteAsync(string text) => WriteAsync(Encoding.Latin1.GetBytes(text));

    public async Task WriteAsync(byte[] bytes)
    {
        int sent = 0;
        while (sent < bytes.Length)
            sent += await _socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None, Stopping);
    }

    /// <summary>Writes <paramref name="pieces"/> one send each, with a pause between them, so they arrive as separate reads.</summary>
    public async Task WriteInPiecesAsync(TimeSpan pause, params string[] pieces)
    {
        for (int i = 0; i < pieces.Length; i++)
        {
            if (i > 0) await Task.Delay(pause, Stopping);
            await WriteAsync(pieces[i]);
        }
    }

    /// <summary>Waits until the peer closes the connection (or the backend stops), discarding what it sends.</summary>
    public async Task WaitForCloseAsync()
    {
        while (await ReadHeadAsync() is not null) { }
    }

    /// <summary>Closes with a FIN, as a server whose keep-alive timeout ran out does.</summary>
    public void Close() => _socket.Shutdown(SocketShutdown.Both);

    /// <summary>Closes with an RST (linger 0), as a crashed or overloaded server does.</summary>
    public void Reset()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close();
    }
}
