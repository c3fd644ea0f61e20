using System.Net;
using System.Runtime.InteropServices;
using Keystone.Admin;
using Keystone.Configuration;
using Keystone.Observability;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Keystone;

/// <summary>
/// A running Keystone: the traffic host around the <see cref="Gateway"/>, and the admin host apart from it,
/// so probes and scrapes never queue behind traffic and the admin API is never exposed on a traffic port.
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly WebApplication _traffic;
    private readonly WebApplication? _admin;
    private readonly AccessLog? _accessLog;
    private ConfigWatcher? _watcher;
    private PosixSignalRegistration? _hangup;

    private GatewayHost(WebApplication traffic, WebApplication? admin, Gateway gateway, Reloader reloader, AccessLog? accessLog, ILogger log)
    {
        _traffic = traffic;
        _admin = admin;
        Gateway = gateway;
        Reloader = reloader;
        _accessLog = accessLog;
        Log = log;
    }

    public Gateway Gateway { get; }
    public Reloader Reloader { get; }
    public ILogger Log { get; }

    /// <summary>The traffic addresses Kestrel bound (port 0 resolved); valid after <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<string> TrafficAddresses => Addresses(_traffic);

    /// <summary>The admin address, or null when the admin listener is off.</summary>
    public string? AdminAddress => _admin is null ? null : Addresses(_admin)[0];

    /// <summary>The traffic listener's services (for tests).</summary>
    internal IServiceProvider TrafficServices => _traffic.Services;

    /// <summary>The admin listener's services, or null when it is off (for tests).</summary>
    internal IServiceProvider? AdminServices => _admin?.Services;

    public static GatewayHost Build(Snapshot snapshot, LogLevel? logLevel = null)
    {
        var config = snapshot.Config;
        // A proxy that accepts bare LF line ends reads headers differently from a strict hop in front of it
        // (RFC 9112 §2.2). Kestrel reads this switch when it creates each parser, so it is set before the host starts.
        AppContext.SetSwitch("Microsoft.AspNetCore.Server.Kestrel.DisableHttp1LineFeedTerminators", true);

        var traffic = CreateBuilder(config, config.Listen, logLevel ?? config.LogLevel);
        traffic.WebHost.ConfigureKestrel(kestrel =>
        {
            // Bodies stream through; a cap, when one is wanted, belongs to the route, not to Kestrel.
            kestrel.Limits.MaxRequestBodySize = null;
        });
        traffic.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = RuntimeDefaults.InlineScheduling);
        traffic.Services.AddHttpForwarder();
        var trafficApp = traffic.Build();
        var log = trafficApp.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Keystone");
        Scripting.ScriptLog.Logger = trafficApp.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Keystone.Lua");

        var accessLog = AccessLog.Create(config.AccessLog, static () => GatewayMetrics.AccessLogDropped.Inc());
        var observer = config.Metrics || accessLog is not null ? new RequestObserver(config.Metrics, accessLog) : null;
        var gateway = new Gateway(snapshot, trafficApp.Services.GetRequiredService<IHttpForwarder>(), CreateInvoker(), observer);
        trafficApp.Run(gateway.InvokeAsync);
        var reloader = new Reloader(gateway, log);

        WebApplication? adminApp = null;
        if (config.Admin.Listen is { } adminListen)
        {
            adminApp = CreateBuilder(config, [adminListen], logLevel ?? config.LogLevel).Build();
            adminApp.Run(new AdminEndpoints(gateway, reloader, new AdminAuth(config.Admin.Token)).InvokeAsync);
        }
        return new GatewayHost(trafficApp, adminApp, gateway, reloader, accessLog, log);
    }

    public async Task StartAsync(CancellationToken cancel = default)
    {
        await _traffic.StartAsync(cancel);
        if (_admin is not null) await _admin.StartAsync(cancel);
        var config = Gateway.Current.Config;
        // Reloads run off the signal and watcher threads; the reloader serialises them.
        try
        {
            _watcher = new ConfigWatcher(config.File, config.Lua.ScriptsDir, trigger => Reloader.Reload(trigger));
        }
        catch (IOException e)
        {
            // Out of inotify instances or watches: serving matters more; SIGHUP and the admin API still reload.
            Log.LogWarning("not watching {Config} for changes: {Reason}", config.File, e.Message);
        }
        _hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            ThreadPool.QueueUserWorkItem(_ => Reloader.Reload("SIGHUP"));
        });
    }

    /// <summary>Completes when SIGTERM or Ctrl-C asks the traffic host to stop.</summary>
    public Task WaitForShutdownAsync() => _traffic.WaitForShutdownAsync();

    /// <summary>Stops accepting, lets requests in flight finish within the drain timeout.</summary>
    public async Task StopAsync(CancellationToken cancel = default)
    {
        await _traffic.StopAsync(cancel);
        if (_admin is not null) await _admin.StopAsync(cancel);
    }

    public async ValueTask DisposeAsync()
    {
        _hangup?.Dispose();
        _watcher?.Dispose();
        await Reloader.DisposeAsync();
        if (_admin is not null) await _admin.DisposeAsync();
        await _traffic.DisposeAsync();
        if (_accessLog is not null) await _accessLog.DisposeAsync();
    }

    /// <summary>One client for every upstream: pooled keep-alive, and none of the browser-like behaviour a proxy must not have.</summary>
    public static HttpMessageInvoker CreateInvoker() => new(new Proxy.UpstreamTimeoutHandler(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        // Each upstream's connect_timeout rides on the request (see UpstreamConnector).
        ConnectCallback = Proxy.UpstreamConnector.ConnectAsync,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
        ActivityHeadersPropagator = null,
    }));

    private static WebApplicationBuilder CreateBuilder(GatewayConfig config, IReadOnlyList<string> urls, LogLevel level)
    {
        // Keystone's config is its YAML file. ASP.NET Core also reads an appsettings.json from the working directory
        // and, to reload it, watches that directory and every one below it: one inotify watch per directory at start
        // (run from / that is the whole disk), and a wake-up for every file written anywhere under it.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        // Keystone's own log goes to stderr so that stdout carries only access log lines.
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        if (config.LogFormat == LogFormat.Json)
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
            });
        }
        builder.Logging.SetMinimumLevel(level);
        // The frameworks' own chatter starts at Warning, and never below the level the config asks for.
        var frameworks = level > LogLevel.Warning ? level : LogLevel.Warning;
        builder.Logging.AddFilter("Microsoft.AspNetCore", frameworks);
        builder.Logging.AddFilter("Microsoft.Hosting", frameworks);
        // ASP.NET Core starts an Activity and a logging scope for every request whenever this category is enabled at
        // any level, even when nothing it logs (request start and end, at Information and Debug) is ever shown: about
        // 1 µs and three allocations per request. Keystone's access log already records each request.
        if (level > LogLevel.Information) builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        // YARP logs every failed forward with a stack trace; Keystone already answers, counts
        // (keystone_upstream_requests_total) and records (/admin/upstreams last_error) each one.
        builder.Logging.AddFilter("Yarp", level > LogLevel.Error ? level : LogLevel.Error);
        builder.WebHost.UseUrls([.. urls]);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.AddServerHeader = false);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = config.ShutdownTimeout);
        return builder;
    }

    private static IReadOnlyList<string> Addresses(WebApplication app) =>
        [.. app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses];
}
