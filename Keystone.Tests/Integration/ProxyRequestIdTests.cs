using Xunit;

namespace Keystone.Tests.Integration;

/// <summary>One X-Request-Id per request, shared by the client, the backend and Keystone's own answers.</summary>
public sealed class ProxyRequestIdTests : IClassFixture<ProxyHeadersFixture>, IDisposable
{
    private readonly ProxyHeadersFixture _fixture;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(10));

    public ProxyRequestIdTests(ProxyHeadersFixture fixture) => _fixture = fixture;

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task Response_has_exactly_one_request_id_equal_to_the_one_the_backend_saw()
    {
        var (response, seen, _) = await Send(new HttpRequestMessage(HttpMethod.Get, "/echo/x"));

        var id = Assert.Single(response.Headers.GetValues("X-Request-Id"));
        Assert.NotEqual("made-up-by-the-backend", id);
        Assert.Equal(id, seen["X-Request-Id"]);
    }

    [Fact]
    public async Task Well_formed_incoming_request_id_is_kept()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/echo/x");
        request.Headers.TryAddWithoutValidation("X-Request-Id", "edge-7f3a.b_9:1");

        var (response, seen, _) = await Send(request);

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

        var (response, seen, _) = await Send(request);

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

        var (response, seen, _) = await Send(request);

        var id = Assert.Single(response.Headers.GetValues("X-Request-Id"));
        Assert.NotEqual(incoming, id);
        Assert.Equal(id, seen["X-Request-Id"]);
    }

    private Task<Echoed> Send(HttpRequestMessage request) => _fixture.SendAsync(request, _timeout.Token);
}
