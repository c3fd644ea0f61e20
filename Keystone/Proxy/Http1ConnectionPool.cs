using System.Diagnostics;
using System.Net;

namespace Keystone.Proxy;

/// <summary>
/// Idle keep-alive connections to one target, newest first: the most recently used connection is the least likely
/// to have been closed by the target. Connections idle longer than <see cref="IdleLimit"/>, closed by the target or
/// holding bytes nobody asked for are closed when met.
/// </summary>
internal sealed class Http1ConnectionPool
{
    /// <summary>Like SocketsHttpHandler's pooled idle timeout; below nginx's default keepalive_timeout of 75 s.</summary>
    public static readonly TimeSpan IdleLimit = TimeSpan.FromSeconds(60);

    /// <summary>Idle connections kept beyond this many are closed: a burst does not pin its sockets forever.</summary>
    private const int MaxIdle = 512;

    private readonly Stack<Http1Connection> _idle = new();
    private readonly Lock _lock = new();

    public Http1ConnectionPool(EndPoint endpoint) => Endpoint = endpoint;

    public EndPoint Endpoint { get; }

    /// <summary>An idle connection, or null when none is left and the caller opens one.</summary>
    public Http1Connection? TryRent()
    {
        long now = Stopwatch.GetTimestamp();
        while (true)
        {
            Http1Connection? connection;
            lock (_lock)
            {
                if (!_idle.TryPop(out connection)) return null;
            }
            if (Stopwatch.GetElapsedTime(connection.IdleSince, now) < IdleLimit && !connection.HasStirredWhileIdle()) return connection;
            connection.Dispose();
        }
    }

    public void Return(Http1Connection connection)
    {
        if (!connection.CanBeReused)
        {
            connection.Dispose();
            return;
        }
        connection.Reused = true;
        connection.IdleSince = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (_idle.Count < MaxIdle)
            {
                _idle.Push(connection);
                return;
            }
        }
        connection.Dispose();
    }
}
