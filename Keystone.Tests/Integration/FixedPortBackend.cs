using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Keystone.Tests.Integration;

/// <summary>
/// A real Kestrel server on a given 127.0.0.1 port: a target that comes back where a dead one was,
/// which <see cref="TestBackend"/> (always port 0) cannot stand in for.
/// </summary>
public sealed class FixedPortBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FixedPortBackend(WebApplication app, int port)
    {
        _app = app;
        Url = $"http://127.0.0.1:{port}";
    }

    /// <summary>http://127.0.0.1:port, no trailing slash.</summary>
    public string Url { get; }

    /// <summary>Binds <paramref name="port"/>, retrying for a moment while the previous owner lets go of it.</summary>
    public static async Task<FixedPortBackend> StartAsync(int port, RequestDelegate handler)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
        while (true)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
            var app = builder.Build();
            app.Run(handler);
            try
            {
                await app.StartAsync();
                return new FixedPortBackend(app, port);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await app.DisposeAsync();
                await Task.Delay(50);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2))) await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }
}
