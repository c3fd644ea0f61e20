using Microsoft.AspNetCore.Http.Features;
using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Keystone;

/// <summary>Builds the Kestrel host around a <see cref="Gateway"/>: listeners, limits, logging, the forwarder.</summary>
public static class GatewayHost
{
    public static WebApplication Build(Snapshot snapshot, out Gateway gateway, LogLevel logLevel = LogLevel.Information)
    {
        var config = snapshot.Config;
        // A proxy that accepts bare LF line ends reads headers differently from a strict hop in front of it
        // (RFC 9112 §2.2). Kestrel reads this switch when it creates each parser, so it is set before the host starts.
        AppContext.SetSwitch("Microsoft.AspNetCore.Server.Kestrel.DisableHttp1LineFeedTerminators", true);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        builder.Logging.SetMinimumLevel(logLevel);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting", LogLevel.Warning);
        builder.Logging.AddFilter("Yarp", LogLevel.Warning);

        builder.WebHost.UseUrls([.. config.Listen]);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Bodies stream through; a cap, when one is wanted, belongs to the route, not to Kestrel.
            kestrel.Limits.MaxRequestBodySize = null;
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = config.ShutdownTimeout);
        builder.Services.AddHttpForwarder();

        var app = builder.Build();
        gateway = new Gateway(snapshot, app.Services.GetRequiredService<IHttpForwarder>(), CreateInvoker());
        app.Run(gateway.InvokeAsync);
        return app;
    }

    /// <summary>One client for every upstream: pooled keep-alive, and none of the browser-like behaviour a proxy must not have.</summary>
    public static HttpMessageInvoker CreateInvoker() => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
        ActivityHeadersPropagator = null,
    });

    /// <summary>The addresses Kestrel actually bound (port 0 resolved), once the app has started.</summary>
    public static IReadOnlyList<string> BoundAddresses(WebApplication app) =>
        [.. app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses];
}
