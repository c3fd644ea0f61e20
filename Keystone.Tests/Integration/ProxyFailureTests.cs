using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Xunit;
using Xunit.Abstractions;

namespace Keystone.Tests.Integration;

/// <summary>Answers Keystone writes itself when there is no route, no method, or no usable upstream (DESIGN.md §5).</summary>
[Collection(ProxySerialCollection.Name)] // the 504 test measures time: keep it off a machine busy with other tests
public sealed class ProxyFailureTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(15));
    private readonly ITestOutputHelper _output;

    public ProxyFailureTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task Unknown_path_is_404_json_with_the_request_id_of_the_header()
    {
        await using var keystone = await KeystoneInstance.StartAsync(OnlyRespondRoutes);

        var response = await keystone.Client.GetAsync("/nowhere/at/all", _timeout.Token);

        var body = await ErrorBody.AssertAsync(response, 404, _timeout.Token);
        Assert.Equal("no route", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Known_path_with_other_method_is_405_json_with_allow_header()
    {
        await using var keystone = await KeystoneInstance.StartAsync(OnlyRespondRoutes);

        var response = await keystone.Client.DeleteAsync("/things", _timeout.Token);

        await ErrorBody.AssertAsync(response, 405, _timeout.Token);
        Assert.Equal(["GET", "HEAD", "POST"], response.Content.Headers.Allow.Order());
    }

    [Fact]
    public async Task Error_body_carries_a_well_formed_incoming_request_id()
    {
        await using var keystone = await KeystoneInstance.StartAsync(OnlyRespondRoutes);
        var request = new HttpRequestMessage(HttpMethod.Get, "/nowhere");
        request.Headers.TryAddWithoutValidation("X-Request-Id", "trace-42");

        var response = await keystone.Client.SendAsync(request, _timeout.Token);

        var body = await ErrorBody.AssertAsync(response, 404, _timeout.Token);
        Assert.Equal("trace-42", body.GetProperty("request_id").GetString());
    }

    [Fact]
    public async Task Closed_upstream_port_is_502_json()
    {
        int closedPort = Ports.Closed();
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              gone:
                targets: ["http://127.0.0.1:{{closedPort}}"]
            routes:
              - name: gone
                path: "/gone/{*rest}"
                upstream: gone
            """);

        var response = await keystone.Client.GetAsync("/gone/x", _timeout.Token);

        await ErrorBody.AssertAsync(response, 502, _timeout.Token);
    }

    [Fact]
    public async Task Upstream_that_resets_the_connection_is_502_json()
    {
        await using var backend = await TestBackend.StartAsync(context =>
        {
            context.Abort();
            return Task.CompletedTask;
        });
        await using var keystone = await KeystoneInstance.StartAsync(SingleRoute(backend, "/reset"));

        var response = await keystone.Client.GetAsync("/reset", _timeout.Token);

        await ErrorBody.AssertAsync(response, 502, _timeout.Token);
    }

    [Fact]
    public async Task Upstream_error_responses_pass_through_untouched()
    {
        await using var backend = await TestBackend.StartAsync(async context =>
        {
            context.Response.StatusCode = 503;
            context.Response.ContentType = "text/html";
            context.Response.Headers.RetryAfter = "7";
            await context.Response.WriteAsync("<h1>maintenance</h1>");
        });
        await using var keystone = await KeystoneInstance.StartAsync(SingleRoute(backend, "/busy"));

        var response = await keystone.Client.GetAsync("/busy", _timeout.Token);

        Assert.Equal(503, (int)response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("7", response.Headers.GetValues("Retry-After").Single());
        Assert.Equal("<h1>maintenance</h1>", await response.Content.ReadAsStringAsync(_timeout.Token));
    }

    [Fact]
    public async Task Upstream_that_never_answers_is_504_json_after_the_timeout()
    {
        await using var backend = await TestBackend.StartAsync(async context =>
        {
            try { await Task.Delay(Timeout.Infinite, context.RequestAborted); }
            catch (OperationCanceledException) { }
        });
        await using var keystone = await KeystoneInstance.StartAsync(SingleRoute(backend, "/stuck", "timeout: 1s"));
        await keystone.Client.GetAsync("/warm-up-the-connection", _timeout.Token);

        var clock = Stopwatch.StartNew();
        var response = await keystone.Client.GetAsync("/stuck", _timeout.Token);
        var elapsed = clock.Elapsed;

        _output.WriteLine($"504 after {elapsed.TotalMilliseconds:F0} ms");
        await ErrorBody.AssertAsync(response, 504, _timeout.Token);
        Assert.InRange(elapsed.TotalMilliseconds, 900, 1500);
    }

    private static string SingleRoute(TestBackend backend, string path, string upstreamSetting = "") => $$"""
        upstreams:
          app:
            {{upstreamSetting}}
            targets: ["{{backend.Url}}"]
        routes:
          - name: app
            path: "{{path}}"
            upstream: app
        """;

    private const string OnlyRespondRoutes = """
        routes:
          - name: things
            path: /things
            methods: [GET, POST]
            respond:
              body: things
        """;
}
