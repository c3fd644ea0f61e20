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
}

public sealed record HeaderEcho(Dictionary<string, string> Headers, string Body);

/// <summary>Headers in both directions: passed through, X-Forwarded-*, Host, route edits, response headers, request ids.</summary>
public sealed class ProxyHeadersTests : IClassFixture<ProxyHeadersFixture>, IDisposable
{
    private readonly KeystoneInstance _keystone;
    private readonly TestBackend _backend;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(10));

    public ProxyHeadersTests(ProxyHeadersFixture fixture)
    {
        _keystone = fixture.Keystone;
        _backend = fixture.Backend;
    }

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task Request_headers_arrive_at_the_backend()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.TryAddWithoutValidation("X-Custom-One", "one");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer abc.def");
        request.Headers.TryAddWithoutValidation("Cookie", "session=s1");
        request.Headers.TryAddWithoutValidation("User-Agent", "keystone-tests/1.0");
        request.Headers.Accept.ParseAdd("application/xml");

        var (_, seen) = await SendAsync(request);

        Assert.Equal("one", seen["X-Custom-One"]);
        Assert.Equal("Bearer abc.def", seen["Authorization"]);
        Assert.Equal("session=s1", seen["Cookie"]);
        Assert.Equal("keystone-tests/1.0", seen["User-Agent"]);
        Assert.Equal("application/xml", seen["Accept"]);
    }

    [Fact]
    public async Task X_Forwarded_For_is_appended_to_an_incoming_one()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "1.2.3.4");

        var (_, seen) = await SendAsync(request);

        Assert.Equal("1.2.3.4, 127.0.0.1", seen["X-Forwarded-For"]);
    }

    [Fact]
    public async Task X_Forwarded_For_is_the_client_address_when_none_came_in()
    {
        var (_, seen) = await SendAsync(new HttpRequestMessage(HttpMethod.Get, "/echo/x"));

        Assert.Equal("127.0.0.1", seen["X-Forwarded-For"]);
    }

    [Fact]
    public async Task X_Forwarded_Proto_and_Host_describe_this_hop_replacing_incoming_ones()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.Host = "shop.example.com:8443";
        request.Headers.TryAddWithoutValidation("X-Forwarded-Proto", "https");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Host", "spoofed.example.net");

        var (_, seen) = await SendAsync(request);

        Assert.Equal("http", seen["X-Forwarded-Proto"]);
        Assert.Equal("shop.example.com:8443", seen["X-Forwarded-Host"]);
    }

    [Fact]
    public async Task Host_is_passed_through_by_default()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.Host = "shop.example.com";

        var (_, seen) = await SendAsync(request);

        Assert.Equal("shop.example.com", seen["Host"]);
    }

    [Fact]
    public async Task Host_is_the_target_authority_when_preserve_host_is_false()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/own-host/x");
        request.Headers.Host = "shop.example.com";

        var (_, seen) = await SendAsync(request);

        Assert.Equal($"127.0.0.1:{_backend.Port}", seen["Host"]);
        Assert.Equal("shop.example.com", seen["X-Forwarded-Host"]);
    }

    [Fact]
    public async Task Set_headers_add_and_override_and_remove_headers_drop_request_headers()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/edit/x");
        request.Headers.TryAddWithoutValidation("X-Env", "dev");
        request.Headers.TryAddWithoutValidation("X-Secret", "s3cret");
        request.Headers.TryAddWithoutValidation("X-Kept", "kept");

        var (_, seen) = await SendAsync(request);

        Assert.Equal("prod", seen["X-Env"]);
        Assert.Equal("yes", seen["X-Added-By-Proxy"]);
        Assert.Equal("kept", seen["X-Kept"]);
        Assert.False(seen.ContainsKey("X-Secret"));
        Assert.False(seen.ContainsKey("X-Forwarded-Proto"), "remove_headers runs after the X-Forwarded-* headers are added");
    }

    [Fact]
    public async Task Set_headers_replace_the_content_type_of_a_post_body()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/retype/x") { Content = new StringContent("{\"a\":1}", Encoding.UTF8, "application/json") };
        request.Content.Headers.ContentLanguage.Add("en");

        var (_, seen, body) = await SendForBodyAsync(request);

        Assert.Equal("application/vnd.keystone+json", seen["Content-Type"]);
        Assert.False(seen.ContainsKey("Content-Language"));
        Assert.Equal("7", seen["Content-Length"]);
        Assert.Equal("{\"a\":1}", body);
    }

    [Fact]
    public async Task Remove_headers_drop_the_content_type_of_a_post_body()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/untype/x") { Content = new StringContent("hello", Encoding.UTF8, "text/plain") };

        var (_, seen, body) = await SendForBodyAsync(request);

        Assert.False(seen.ContainsKey("Content-Type"), $"Content-Type reached the backend: {seen.GetValueOrDefault("Content-Type")}");
        Assert.Equal("hello", body);
    }

    [Fact]
    public async Task Response_headers_from_the_backend_reach_the_client()
    {
        var (response, _) = await SendAsync(new HttpRequestMessage(HttpMethod.Get, "/echo/x"));

        Assert.Equal("app", Assert.Single(response.Headers.GetValues("X-Backend")));
        Assert.True(response.Headers.CacheControl?.NoStore);
        Assert.Equal("\"v1\"", response.Headers.ETag?.Tag);
        Assert.Equal(["a=1; Path=/", "b=2; Path=/"], response.Headers.GetValues("Set-Cookie"));
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Response_has_exactly_one_request_id_equal_to_the_one_the_backend_saw()
    {
        var (response, seen) = await SendAsync(new HttpRequestMessage(HttpMethod.Get, "/echo/x"));

        var id = Assert.Single(response.Headers.GetValues("X-Request-Id"));
        Assert.NotEqual("made-up-by-the-backend", id);
        Assert.Equal(id, seen["X-Request-Id"]);
    }

    [Fact]
    public async Task Well_formed_incoming_request_id_is_kept()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.TryAddWithoutValidation("X-Request-Id", "edge-7f3a.b_9:1");

        var (response, seen) = await SendAsync(request);

        Assert.Equal("edge-7f3a.b_9:1", Assert.Single(response.Headers.GetValues("X-Request-Id")));
        Assert.Equal("edge-7f3a.b_9:1", seen["X-Request-Id"]);
    }

    [Theory]
    [InlineData("has spaces in it")]
    [InlineData("<script>alert(1)</script>")]
    [InlineData("id\"quote")]
    [InlineData("")]
    [InlineData("a,b")]
    public async Task Malformed_incoming_request_id_is_replaced(string incoming)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.TryAddWithoutValidation("X-Request-Id", incoming);

        var (response, seen) = await SendAsync(request);

        var id = Assert.Single(response.Headers.GetValues("X-Request-Id"));
        Assert.NotEqual(incoming, id);
        Assert.NotEmpty(id);
        Assert.Equal(id, seen["X-Request-Id"]);
    }

    [Fact]
    public async Task Overlong_incoming_request_id_is_replaced()
    {
        var incoming = new string('a', 129);
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.TryAddWithoutValidation("X-Request-Id", incoming);

        var (response, seen) = await SendAsync(request);

        var id = Assert.Single(response.Headers.GetValues("X-Request-Id"));
        Assert.NotEqual(incoming, id);
        Assert.Equal(id, seen["X-Request-Id"]);
    }

    private async Task<(HttpResponseMessage Response, Dictionary<string, string> Seen)> SendAsync(HttpRequestMessage request)
    {
        var (response, seen, _) = await SendForBodyAsync(request);
        return (response, seen);
    }

    private async Task<(HttpResponseMessage Response, Dictionary<string, string> Seen, string Body)> SendForBodyAsync(HttpRequestMessage request)
    {
        var response = await _keystone.Client.SendAsync(request, _timeout.Token);
        Assert.Equal(200, (int)response.StatusCode);
        var echo = await response.Content.ReadFromJsonAsync<HeaderEcho>(_timeout.Token);
        var seen = new Dictionary<string, string>(echo!.Headers, StringComparer.OrdinalIgnoreCase);
        return (response, seen, echo.Body);
    }
}
