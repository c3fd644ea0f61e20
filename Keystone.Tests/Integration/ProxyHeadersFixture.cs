using System.Net.Http.Json;
using System.Text;
using Microsoft.AspNetCore.Http;
using Xunit;

namespace Keystone.Tests.Integration;

/// <summary>An echo backend that also sends headers of its own, including an X-Request-Id that Keystone must override.</summary>
public sealed class ProxyHeadersFixture : IAsyncLifetime
{
    public TestBackend Backend { get; private set; } = null!;
    public KeystoneInstance Keystone { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Backend = await TestBackend.StartAsync(async context =>
        {
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var h in context.Request.Headers) headers[h.Key] = h.Value.ToString();
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);

            var response = context.Response;
            response.Headers["X-Backend"] = "app";
            response.Headers["X-Request-Id"] = "made-up-by-the-backend";
            response.Headers.CacheControl = "no-store";
            response.Headers.ETag = "\"v1\"";
            response.Headers.Append("Set-Cookie", "a=1; Path=/");
            response.Headers.Append("Set-Cookie", "b=2; Path=/");
            await response.WriteAsJsonAsync(new HeaderEcho(headers, Encoding.UTF8.GetString(body.ToArray())), context.RequestAborted);
        });
        Keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              keep-host:
                targets: ["{{Backend.Url}}"]
              own-host:
                preserve_host: false
                targets: ["{{Backend.Url}}"]
            routes:
              - name: echo
                path: "/echo/{*rest}"
                upstream: keep-host
              - name: own-host
                path: "/own-host/{*rest}"
                upstream: own-host
              - name: edit
                path: "/edit/{*rest}"
                upstream: keep-host
                set_headers:
                  X-Env: prod
                  X-Added-By-Proxy: "yes"
                remove_headers: [X-Secret, X-Forwarded-Proto]
              - name: retype
                path: "/retype/{*rest}"
                upstream: keep-host
                set_headers:
                  Content-Type: application/vnd.keystone+json
                remove_headers: [Content-Language]
              - name: untype
                path: "/untype/{*rest}"
                upstream: keep-host
                remove_headers: [Content-Type]
            """);
    }

    public async Task DisposeAsync()
    {
        await Keystone.DisposeAsync();
        await Backend.DisposeAsync();
    }

    /// <summary>Sends through Keystone and returns the response with what the backend saw.</summary>
    public async Task<Echoed> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await Keystone.Client.SendAsync(request, cancellationToken);
        Assert.Equal(200, (int)response.StatusCode);
        var echo = await response.Content.ReadFromJsonAsync<HeaderEcho>(cancellationToken);
        return new Echoed(response, new Dictionary<string, string>(echo!.Headers, StringComparer.OrdinalIgnoreCase), echo.Body);
    }
}

public sealed record HeaderEcho(Dictionary<string, string> Headers, string Body);

/// <summary>A response from Keystone, and the request headers and body the backend received.</summary>
public sealed record Echoed(HttpResponseMessage Response, Dictionary<string, string> Seen, string Body);
