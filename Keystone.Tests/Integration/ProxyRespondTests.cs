using Xunit;

namespace Keystone.Tests.Integration;

/// <summary><c>respond:</c> routes answer from config without any upstream.</summary>
public sealed class ProxyRespondTests : IAsyncLifetime
{
    private const string Body = "short and stout";
    private KeystoneInstance _keystone = null!;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(10));

    public async Task InitializeAsync() => _keystone = await KeystoneInstance.StartAsync($$"""
        routes:
          - name: teapot
            path: /teapot
            respond:
              status: 418
              headers:
                Content-Type: text/plain; charset=utf-8
                X-Brew: earl-grey
                Cache-Control: max-age=60
              body: "{{Body}}"
          - name: empty
            path: /healthz
            respond:
              status: 204
        """);

    public async Task DisposeAsync()
    {
        await _keystone.DisposeAsync();
        _timeout.Dispose();
    }

    [Fact]
    public async Task Respond_route_answers_with_configured_status_headers_and_body()
    {
        var response = await _keystone.Client.GetAsync("/teapot", _timeout.Token);

        Assert.Equal(418, (int)response.StatusCode);
        Assert.Equal("text/plain; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        Assert.Equal("earl-grey", Assert.Single(response.Headers.GetValues("X-Brew")));
        Assert.Equal(TimeSpan.FromSeconds(60), response.Headers.CacheControl?.MaxAge);
        Assert.Single(response.Headers.GetValues("X-Request-Id"));
        Assert.Equal(Body.Length, response.Content.Headers.ContentLength);
        Assert.Equal(Body, await response.Content.ReadAsStringAsync(_timeout.Token));
    }

    [Fact]
    public async Task Respond_route_answers_HEAD_with_headers_and_no_body()
    {
        var response = await RawHttp.SendAsync(_keystone.Port, "HEAD", "/teapot", _timeout.Token);

        Assert.Equal(418, response.Status);
        Assert.Equal("earl-grey", response.Header("X-Brew"));
        Assert.Equal("text/plain; charset=utf-8", response.Header("Content-Type"));
        Assert.Equal(Body.Length.ToString(), response.Header("Content-Length"));
        Assert.Empty(response.Body);
    }

    // A 204 cannot carry a body (RFC 9110 §15.3.5): either the config loader refuses one, or it is not sent.
    [Fact]
    public async Task Respond_204_with_a_body_is_refused_by_config()
    {
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => KeystoneInstance.StartAsync("""
            routes:
              - name: no-content
                path: /no-content
                respond:
                  status: 204
                  body: "ignored"
            """));
        Assert.Contains("route 'no-content': a 204 response cannot have a body", refused.Message);
    }

    [Theory]
    [InlineData(204)]
    [InlineData(304)]
    public async Task Respond_without_a_body_status_sends_headers_only(int status)
    {
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            routes:
              - name: bare
                path: /bare
                respond:
                  status: {{status}}
                  headers: { x-kind: bare }
            """);
        var response = await RawHttp.SendAsync(keystone.Port, "GET", "/bare", _timeout.Token);

        Assert.Equal(status, response.Status);
        Assert.Equal("bare", response.Header("x-kind"));
        Assert.Null(response.Header("Content-Length"));
        Assert.Empty(response.Body);
    }

    [Fact]
    public async Task Respond_route_without_body_sends_an_empty_response()
    {
        var response = await RawHttp.SendAsync(_keystone.Port, "GET", "/healthz", _timeout.Token);

        Assert.Equal(204, response.Status);
        Assert.Empty(response.Body);
        Assert.NotNull(response.Header("X-Request-Id"));
    }
}
