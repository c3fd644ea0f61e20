using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Keystone.Tests.Integration;

/// <summary>A real Kestrel server on 127.0.0.1:0 that stands in for an upstream application.</summary>
public sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestBackend(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>http://127.0.0.1:port, no trailing slash.</summary>
    public string Url { get; }

    public int Port => new Uri(Url).Port;

    public static async Task<TestBackend> StartAsync(RequestDelegate handler, bool webSockets = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        var app = builder.Build();
        if (webSockets) app.UseWebSockets();
        app.Run(handler);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new TestBackend(app, address.TrimEnd('/'));
    }

    /// <summary>A backend that answers with what it received: method, path, query and headers as JSON.</summary>
    public static Task<TestBackend> StartEchoAsync(string name = "backend") => StartAsync(async context =>
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var h in context.Request.Headers) headers[h.Key] = h.Value.ToString();
        context.Response.Headers["X-Backend"] = name;
        await context.Response.WriteAsJsonAsync(new EchoReply(name, context.Request.Method,
            context.Request.Path.Value ?? "", context.Request.QueryString.Value ?? "",
            context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? "", headers));
    });

    public async ValueTask DisposeAsync()
    {
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2))) await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }
}

public sealed record EchoReply(string Backend, string Method, string Path, string Query, string RawTarget, Dictionary<string, string> Headers);
