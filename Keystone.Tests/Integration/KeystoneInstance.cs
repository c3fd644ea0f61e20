using Microsoft.Extensions.Logging;

namespace Keystone.Tests.Integration;

/// <summary>
/// A real Keystone (the same host `keystone serve` builds) on 127.0.0.1:0, from YAML text.
/// The YAML should not set `listen`; it is forced to loopback with a free port. Unless the YAML sets
/// them, the admin listener also takes a free loopback port and the access log is off.
/// </summary>
public sealed class KeystoneInstance : IAsyncDisposable
{
    private readonly GatewayHost _host;

    private KeystoneInstance(GatewayHost host, string configPath)
    {
        _host = host;
        ConfigPath = configPath;
        BaseUrl = host.TrafficAddresses[0].TrimEnd('/');
        AdminUrl = host.AdminAddress?.TrimEnd('/');
        Client = CreateClient();
    }

    public Gateway Gateway => _host.Gateway;
    public GatewayHost Host => _host;
    public string BaseUrl { get; }
    public int Port => new Uri(BaseUrl).Port;

    /// <summary>http://127.0.0.1:port of the admin listener, or null when the config turns it off.</summary>
    public string? AdminUrl { get; }

    /// <summary>The config file this instance was started from; rewrite it and reload to change the config.</summary>
    public string ConfigPath { get; }

    /// <summary>A client that behaves like curl: no redirects followed, no cookies, no decompression.</summary>
    public HttpClient Client { get; }

    public HttpClient CreateClient() => CreateClient(BaseUrl);

    public HttpClient CreateAdminClient() => CreateClient(AdminUrl ?? throw new InvalidOperationException("admin listener is off"));

    private static HttpClient CreateClient(string baseUrl) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
    })
    { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(30) };

    /// <param name="configPath">Where to write the config; a fresh file in the temp folder when null.</param>
    /// <param name="logLevel">The log level, as `--log-level` would set it.</param>
    public static async Task<KeystoneInstance> StartAsync(string yaml, string? configPath = null, LogLevel logLevel = LogLevel.Warning)
    {
        var path = configPath ?? Path.Combine(Path.GetTempPath(), $"keystone-test-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, WithTestDefaults(yaml));
        var (snapshot, errors) = Snapshot.Load(path);
        if (snapshot is null)
            throw new InvalidOperationException("test config is invalid:\n" + string.Join("\n", errors));
        var host = GatewayHost.Build(snapshot, logLevel);
        await host.StartAsync();
        return new KeystoneInstance(host, path);
    }

    /// <summary>The YAML a test gave, plus loopback listeners on free ports and a quiet access log.</summary>
    public static string WithTestDefaults(string yaml)
    {
        var defaults = "listen: [http://127.0.0.1:0]\n";
        if (!yaml.Contains("admin:", StringComparison.Ordinal)) defaults += "admin: { listen: http://127.0.0.1:0 }\n";
        if (!yaml.Contains("access_log:", StringComparison.Ordinal)) defaults += "access_log: off\n";
        return defaults + yaml;
    }

    /// <summary>Stops like SIGTERM does: stop accepting, let in-flight requests finish within the drain timeout.</summary>
    public Task StopAsync() => _host.StopAsync();

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            try { await _host.StopAsync(cts.Token); } catch (ObjectDisposedException) { }
        await _host.DisposeAsync();
        File.Delete(ConfigPath);
    }
}
