using System.Text;
using Xunit;

namespace Keystone.Tests.Integration;

/// <summary>Headers in both directions: passed through, X-Forwarded-*, Host, route edits, response headers.</summary>
public sealed class ProxyHeadersTests : IClassFixture<ProxyHeadersFixture>, IDisposable
{
    private readonly ProxyHeadersFixture _fixture;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(10));

    public ProxyHeadersTests(ProxyHeadersFixture fixture) => _fixture = fixture;

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

        var (_, seen, _) = await Send(request);

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

        var (_, seen, _) = await Send(request);

        Assert.Equal("1.2.3.4, 127.0.0.1", seen["X-Forwarded-For"]);
    }

    [Fact]
    public async Task X_Forwarded_For_is_the_client_address_when_none_came_in()
    {
        var (_, seen, _) = await Send(new HttpRequestMessage(HttpMethod.Get, "/echo/x"));

        Assert.Equal("127.0.0.1", seen["X-Forwarded-For"]);
    }

    [Fact]
    public async Task X_Forwarded_Proto_and_Host_describe_this_hop_replacing_incoming_ones()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.Host = "shop.example.com:8443";
        request.Headers.TryAddWithoutValidation("X-Forwarded-Proto", "https");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Host", "spoofed.example.net");

        var (_, seen, _) = await Send(request);

        Assert.Equal("http", seen["X-Forwarded-Proto"]);
        Assert.Equal("shop.example.com:8443", seen["X-Forwarded-Host"]);
    }

    [Fact]
    public async Task Host_is_passed_through_by_default()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.Host = "shop.example.com";

        var (_, seen, _) = await Send(request);

        Assert.Equal("shop.example.com", seen["Host"]);
    }

    [Fact]
    public async Task Host_is_the_target_authority_when_preserve_host_is_false()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/own-host/x");
        request.Headers.Host = "shop.example.com";

        var (_, seen, _) = await Send(request);

        Assert.Equal($"127.0.0.1:{_fixture.Backend.Port}", seen["Host"]);
        Assert.Equal("shop.example.com", seen["X-Forwarded-Host"]);
    }

    // Kestrel accepts these Host values; HttpClient's Host setter does not. Whatever Keystone does with them (pass
    // through or 400), a client's odd header must not be reported as an upstream failure.
    [Theory]
    [InlineData("a..b")]
    [InlineData(".example.com")]
    [InlineData("shop!.example.com")]
    [InlineData("a~b")]
    [InlineData("example.com:99999")]
    public async Task Host_header_that_kestrel_accepts_is_never_answered_with_a_5xx(string host)
    {
        var response = await RawHttp.SendAsync(_fixture.Keystone.Port, "GET", "/echo/x", _timeout.Token, host);

        Assert.True(response.Status < 500, $"Host '{host}' answered {response.Status}: {response.BodyText}");
    }

    [Fact]
    public async Task Set_headers_add_and_override_and_remove_headers_drop_request_headers()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/edit/x");
        request.Headers.TryAddWithoutValidation("X-Env", "dev");
        request.Headers.TryAddWithoutValidation("X-Secret", "s3cret");
        request.Headers.TryAddWithoutValidation("X-Kept", "kept");

        var (_, seen, _) = await Send(request);

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

        var (_, seen, body) = await Send(request);

        Assert.Equal("application/vnd.keystone+json", seen["Content-Type"]);
        Assert.False(seen.ContainsKey("Content-Language"));
        Assert.Equal("7", seen["Content-Length"]);
        Assert.Equal("{\"a\":1}", body);
    }

    [Fact]
    public async Task Remove_headers_drop_the_content_type_of_a_post_body()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/untype/x") { Content = new StringContent("hello", Encoding.UTF8, "text/plain") };

        var (_, seen, body) = await Send(request);

        Assert.False(seen.ContainsKey("Content-Type"), $"Content-Type reached the backend: {seen.GetValueOrDefault("Content-Type")}");
        Assert.Equal("hello", body);
    }

    [Fact]
    public async Task Response_headers_from_the_backend_reach_the_client()
    {
        var (response, _, _) = await Send(new HttpRequestMessage(HttpMethod.Get, "/echo/x"));

        Assert.Equal("app", Assert.Single(response.Headers.GetValues("X-Backend")));
        Assert.True(response.Headers.CacheControl?.NoStore);
        Assert.Equal("\"v1\"", response.Headers.ETag?.Tag);
        Assert.Equal(["a=1; Path=/", "b=2; Path=/"], response.Headers.GetValues("Set-Cookie"));
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
    }

    private Task<Echoed> Send(HttpRequestMessage request) => _fixture.SendAsync(request, _timeout.Token);
}
