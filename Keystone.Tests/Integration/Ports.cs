using System.Net;
using System.Net.Sockets;

namespace Keystone.Tests.Integration;

/// <summary>Loopback ports for tests that need a target nobody listens on.</summary>
public static class Ports
{
    /// <summary>A port that was free a moment ago and has no listener: connecting to it is refused.</summary>
    public static int Closed()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
