using Keystone.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Keystone.Tests.Integration;

/// <summary>
/// A real Keystone (the same host `keystone serve` builds) on 127.0.0.1:0, from YAML text.
/// The YAML should not set `listen`; it is forced to loopback with a free port.
/// </summary>
public sealed class KeystoneInstance : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _configPath;

    private KeystoneInstance(WebApplication app, Gateway gateway, string baseUrl, string configPath)
    {
        _app = app;
        Gateway = gateway;
        BaseUrl = baseUrl;
        _configPath = configPath;
        Client = CreateClient();
    }

    public Gateway Gateway { get; }
    public string BaseUrl { get; }
    public int Port => new Uri(BaseUrl).Port;

    /// <summary>A client that behaves like curl: no redirects followed, no cookies, no decompression.</summary>
    public HttpClient Client { get; }

    public HttpClient CreateClient() => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
    }) { BaseAddress = new Uri(BaseUrl), Timeout = TimeSpan.FromSeconds(30) };

    public static async Task<KeystoneInstance> StartAsync(string yaml)
    {
        var path = Path.Combine(Path.GetTempPath(), $"keystone-test-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, "listen: [http://127.0.0.1:0]\n" + yaml);
        var (snapshot, errors) = Snapshot.Load(path);
        if (snapshot is null)
            throw new InvalidOperationException("test config is invalid:\n" + string.Join("\n", errors));
        var app = GatewayHost.Build(snapshot, out var gateway, LogLevel.Warning);
        await app.StartAsync();
        var address = GatewayHost.BoundAddresses(app)[0].TrimEnd('/');
        return new KeystoneInstance(app, gateway, address, path);
    }

    /// <summary>Stops like SIGTERM does: stop accepting, let in-flight requests finish within the drain timeout.</summary>
    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            try { await _app.StopAsync(cts.Token); } catch (ObjectDisposedException) { }
        await _app.DisposeAsync();
        File.Delete(_configPath);
    }
}
