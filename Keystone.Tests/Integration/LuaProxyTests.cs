using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Keystone.Tests.Integration;

/// <summary>
/// Hooks on proxied routes, end to end: a real Keystone in front of recording backends, scripts from a temp folder.
/// Each test checks both what the client got and what reached the backend.
/// </summary>
public sealed class LuaProxyTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly string _scripts = Directory.CreateTempSubdirectory("keystone-lua-proxy-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_scripts, recursive: true); } catch (IOException) { }
    }

    // ---- on_request: rewriting the request -----------------------------------------------------

    [Fact]
    public async Task Hook_rewrites_path_query_json_body_and_headers_before_forwarding()
    {
        Script("rewrite", """
            function on_request(req)
              req.path = "/v2" .. req.path
              req.query_string = "page=" .. req.query.page .. "&source=keystone"
              local order = keystone.json.decode(req.body)
              order.secret = nil
              order.checked = true
              req.body = keystone.json.encode(order)
              req.headers["authorization"] = nil
              req.headers["x-tenant"] = "acme"
              req.headers["x-tags"] = { "a", "b" }
            end
            """);
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: api, path: "/api/{*rest}", upstream: app, hooks: [rewrite] }
            """);
        using var cts = new CancellationTokenSource(Timeout);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/orders?page=3&debug=1")
        {
            Content = new StringContent("""{"item":"book","quantity":2,"secret":"hunter2"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "client-token");
        request.Headers.Add("X-Kept", "yes");
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(200, response);
        var seen = Assert.Single(app.Requests);
        Assert.Equal("/v2/api/orders", seen.Path);
        Assert.Equal("?page=3&source=keystone", seen.Query);
        var body = JsonDocument.Parse(seen.Body).RootElement;
        Assert.Equal("book", body.GetProperty("item").GetString());
        Assert.Equal(2, body.GetProperty("quantity").GetInt32());
        Assert.True(body.GetProperty("checked").GetBoolean());
        Assert.False(body.TryGetProperty("secret", out _));
        Assert.Equal(Encoding.UTF8.GetByteCount(seen.Body).ToString(), seen.Headers["Content-Length"]);
        Assert.False(seen.Headers.ContainsKey("Transfer-Encoding"));
        Assert.StartsWith("application/json", seen.Headers["Content-Type"]);
        Assert.False(seen.Headers.ContainsKey("Authorization"));
        Assert.Equal("acme", seen.Headers["X-Tenant"]);
        Assert.Equal(["a", "b"], seen.Headers["X-Tags"].Split(',').Select(v => v.Trim()));
        Assert.Equal("yes", seen.Headers["X-Kept"]);
    }

    [Fact]
    public async Task Hook_can_give_a_bodyless_request_a_body()
    {
        Script("fill", """
            function on_request(req)
              req.body = "filled by keystone"
              req.headers["content-type"] = "text/plain"
            end
            """);
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: api, path: "/api/{*rest}", upstream: app, hooks: [fill] }
            """);
        using var cts = new CancellationTokenSource(Timeout);

        using var response = await keystone.Client.PostAsync("/api/empty", null, cts.Token);

        await AssertStatus(200, response);
        var seen = Assert.Single(app.Requests);
        Assert.Equal("filled by keystone", seen.Body);
        Assert.Equal("18", seen.Headers["Content-Length"]);
    }

    [Fact]
    public async Task Hook_switching_req_upstream_sends_the_request_to_the_other_backend()
    {
        Script("route", """
            function on_request(req)
              if req.headers["x-canary"] == "1" then req.upstream = "canary" end
            end
            """);
        await using var stable = await RecordingBackend.StartAsync("stable");
        await using var canary = await RecordingBackend.StartAsync("canary");
        await using var keystone = await StartAsync(Upstreams(("stable", stable.Url), ("canary", canary.Url)) + """
            routes:
              - { name: shop, path: "/shop/{*rest}", upstream: stable, hooks: [route] }
              - { name: beta, path: /beta, upstream: canary }
            """);
        using var cts = new CancellationTokenSource(Timeout);

        using var opted = new HttpRequestMessage(HttpMethod.Get, "/shop/cart?x=1");
        opted.Headers.Add("X-Canary", "1");
        using var toCanary = await keystone.Client.SendAsync(opted, cts.Token);
        await AssertStatus(200, toCanary);
        Assert.Equal("canary", Header(toCanary, "X-Backend"));
        var seen = Assert.Single(canary.Requests);
        Assert.Equal("/shop/cart", seen.Path);
        Assert.Equal("?x=1", seen.Query);
        Assert.Empty(stable.Requests);

        using var toStable = await keystone.Client.GetAsync("/shop/cart", cts.Token);
        await AssertStatus(200, toStable);
        Assert.Equal("stable", Header(toStable, "X-Backend"));
        Assert.Single(stable.Requests);
    }

    // ---- on_response ---------------------------------------------------------------------------

    [Fact]
    public async Task On_response_hook_changes_the_status_and_headers_the_client_gets()
    {
        Script("decorate", """
            function on_response(req, res)
              if res.status == 200 then res.status = 203 end
              res.headers["x-backend"] = nil
              res.headers["x-decorated"] = "yes"
              res.headers["cache-control"] = "no-store"
            end
            """);
        await using var app = await RecordingBackend.StartAsync("app", r => r.Headers.CacheControl = "public, max-age=60");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: api, path: "/api/{*rest}", upstream: app, hooks: [decorate] }
            """);
        using var cts = new CancellationTokenSource(Timeout);

        using var response = await keystone.Client.GetAsync("/api/items", cts.Token);

        await AssertStatus(203, response);
        Assert.Null(Header(response, "X-Backend"));
        Assert.Equal("yes", Header(response, "X-Decorated"));
        Assert.Equal("no-store", Header(response, "Cache-Control"));
        // The body streamed through as the backend sent it.
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cts.Token)).RootElement;
        Assert.Equal("/api/items", json.GetProperty("path").GetString());
        Assert.Single(app.Requests);
    }

    [Fact]
    public async Task Buffered_response_body_rewritten_by_on_response_reaches_the_client_with_its_own_length()
    {
        Script("wrap", """
            function on_response(req, res)
              local upstream = keystone.json.decode(res.body)
              res.body = keystone.json.encode({ wrapped = upstream.backend, path = upstream.path, note = "rewritten by keystone, longer than before" })
              res.headers["x-wrapped"] = "1"
            end
            """);
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: api, path: "/api/{*rest}", upstream: app, hooks: [wrap], buffer_response: true }
            """);
        using var cts = new CancellationTokenSource(Timeout);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/items");
        request.Headers.Add("Accept-Encoding", "gzip");
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(200, response);
        var bytes = await response.Content.ReadAsByteArrayAsync(cts.Token);
        var json = JsonDocument.Parse(bytes).RootElement;
        Assert.Equal("app", json.GetProperty("wrapped").GetString());
        Assert.Equal("/api/items", json.GetProperty("path").GetString());
        Assert.Equal(bytes.Length, response.Content.Headers.ContentLength);
        Assert.False(response.Headers.TransferEncodingChunked ?? false);
        Assert.Equal("1", Header(response, "X-Wrapped"));
        // The upstream was asked for a body the script can read.
        Assert.False(Assert.Single(app.Requests).Headers.ContainsKey("Accept-Encoding"));
    }

    // ---- failures ------------------------------------------------------------------------------

    [Fact]
    public async Task Failing_hook_on_a_proxied_route_answers_500_json_with_the_request_id_and_never_calls_the_backend()
    {
        Script("fail", """
            function on_request(req)
              error("no database today")
            end
            """);
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: api, path: "/api/{*rest}", upstream: app, hooks: [fail] }
            """);
        using var cts = new CancellationTokenSource(Timeout);

        using var response = await keystone.Client.PostAsync("/api/orders", new StringContent("{}", Encoding.UTF8, "application/json"), cts.Token);

        await AssertStatus(500, response);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cts.Token)).RootElement;
        Assert.Equal(500, json.GetProperty("status").GetInt32());
        var error = json.GetProperty("error").GetString()!;
        Assert.StartsWith("script 'fail' failed: ", error);
        Assert.EndsWith("fail.lua:2: no database today", error);
        var requestId = json.GetProperty("request_id").GetString();
        Assert.False(string.IsNullOrEmpty(requestId));
        Assert.Equal(requestId, Header(response, "X-Request-Id"));
        Assert.Empty(app.Requests);
    }

    [Fact]
    public async Task Failing_hook_with_on_error_continue_is_skipped_and_the_request_is_still_proxied()
    {
        Script("fail", "function on_request(req)\n  error('flaky lookup')\nend\n");
        Script("mark", "function on_request(req)\n  req.headers['x-marked'] = 'yes'\nend\n");
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - name: api
                path: "/api/{*rest}"
                upstream: app
                hooks: [{ script: fail, on_error: continue }, mark]
            """);
        using var cts = new CancellationTokenSource(Timeout);

        using var response = await keystone.Client.GetAsync("/api/orders", cts.Token);

        await AssertStatus(200, response);
        var seen = Assert.Single(app.Requests);
        Assert.Equal("/api/orders", seen.Path);
        Assert.Equal("yes", seen.Headers["X-Marked"]);
    }

    [Fact]
    public async Task Scripts_that_overran_their_budget_keep_serving_both_phases_from_the_thread_pool()
    {
        // Hooks run on the socket engine's thread until a call of the set overruns; after that every hooked
        // request of the set moves to the thread pool first (ScriptSet.Overran), in both phases.
        Script("spin", """
            function on_request(req)
              if req.headers["x-attack"] then while true do end end
              req.headers["x-checked"] = "yes"
            end
            function on_response(req, res)
              if req.headers["x-attack-response"] then while true do end end
              res.headers["x-decorated"] = "yes"
            end
            """);
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: api, path: "/api/{*rest}", upstream: app, hooks: [spin] }
            """);
        using var cts = new CancellationTokenSource(Timeout);

        async Task<HttpResponseMessage> Get(string? attack)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/orders");
            if (attack is not null) request.Headers.Add(attack, "1");
            return await keystone.Client.SendAsync(request, cts.Token);
        }

        using (var before = await Get(null))
        {
            await AssertStatus(200, before);
            Assert.Equal("yes", Header(before, "X-Decorated"));
        }
        using (var overrun = await Get("X-Attack"))
        {
            await AssertStatus(500, overrun);
            Assert.Contains("budget", await overrun.Content.ReadAsStringAsync(cts.Token));
        }
        for (int i = 0; i < 3; i++)
        {
            using var after = await Get(null);
            await AssertStatus(200, after);
            Assert.Equal("yes", Header(after, "X-Decorated"));
        }
        using (var responseOverrun = await Get("X-Attack-Response"))
        {
            await AssertStatus(500, responseOverrun);
            Assert.Contains("budget", await responseOverrun.Content.ReadAsStringAsync(cts.Token));
        }
        using (var last = await Get(null))
        {
            await AssertStatus(200, last);
            Assert.Equal("yes", Header(last, "X-Decorated"));
        }
        Assert.Equal(6, app.Requests.Count);
        Assert.All(app.Requests, seen => Assert.Equal("yes", seen.Headers["X-Checked"]));
    }

    // ---- lua.max_body --------------------------------------------------------------------------

    [Fact]
    public async Task Chunked_request_body_over_max_body_is_refused_with_413_before_the_backend()
    {
        Script("inspect", "function on_request(req) req.headers['x-seen'] = tostring(#req.body) end\n");
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: api, path: "/api/{*rest}", upstream: app, hooks: [inspect] }
            """, maxBody: "1KB");
        using var cts = new CancellationTokenSource(Timeout);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/upload") { Content = new StringContent(new string('x', 4096)) };
        request.Headers.TransferEncodingChunked = true;
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(413, response);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cts.Token)).RootElement;
        Assert.Equal("request body too large", json.GetProperty("error").GetString());
        Assert.Equal(413, json.GetProperty("status").GetInt32());
        Assert.Empty(app.Requests);
    }

    [Fact]
    public async Task Chunked_request_body_within_max_body_reaches_the_backend_with_a_content_length()
    {
        Script("inspect", "function on_request(req) req.headers['x-seen'] = tostring(#req.body) end\n");
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: api, path: "/api/{*rest}", upstream: app, hooks: [inspect] }
            """, maxBody: "1KB");
        using var cts = new CancellationTokenSource(Timeout);
        var body = new string('y', 1000);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/upload") { Content = new StringContent(body) };
        request.Headers.TransferEncodingChunked = true;
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(200, response);
        var seen = Assert.Single(app.Requests);
        Assert.Equal(body, seen.Body);
        Assert.Equal("1000", seen.Headers["X-Seen"]);
        Assert.Equal("1000", seen.Headers["Content-Length"]);
        Assert.False(seen.Headers.ContainsKey("Transfer-Encoding"));
    }

    [Fact]
    public async Task Content_length_body_over_max_body_streams_through_untouched_while_a_script_reading_it_fails()
    {
        Script("tag", "function on_request(req) req.headers['x-tagged'] = 'yes' end\n");
        Script("inspect", "function on_request(req) req.headers['x-seen'] = tostring(#req.body) end\n");
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartAsync(Upstreams(("app", app.Url)) + """
            routes:
              - { name: upload, path: /upload, upstream: app, hooks: [tag] }
              - { name: inspect, path: /inspect, upstream: app, hooks: [inspect] }
            """, maxBody: "1KB");
        using var cts = new CancellationTokenSource(Timeout);
        var body = string.Concat(Enumerable.Range(0, 400).Select(i => $"{i:D4},"));   // 2000 bytes

        // A hook that leaves req.body alone: the body streams to the backend as sent.
        using var upload = await keystone.Client.PostAsync("/upload", new StringContent(body), cts.Token);
        await AssertStatus(200, upload);
        var seen = Assert.Single(app.Requests);
        Assert.Equal(body, seen.Body);
        Assert.Equal("2000", seen.Headers["Content-Length"]);
        Assert.Equal("yes", seen.Headers["X-Tagged"]);

        // A hook that reads it fails the request, and says why.
        using var inspect = await keystone.Client.PostAsync("/inspect", new StringContent(body), cts.Token);
        await AssertStatus(500, inspect);
        var error = JsonDocument.Parse(await inspect.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("error").GetString()!;
        Assert.StartsWith("script 'inspect' failed: ", error);
        Assert.Contains("the request body is larger than lua.max_body", error);
        Assert.Single(app.Requests);
    }

    // ---- harness -------------------------------------------------------------------------------

    private void Script(string name, string source) => File.WriteAllText(Path.Combine(_scripts, name + ".lua"), source);

    private static string Upstreams(params (string Name, string Url)[] upstreams) =>
        "upstreams:\n" + string.Concat(upstreams.Select(u => $"  {u.Name}: {{ targets: [\"{u.Url}\"] }}\n"));

    /// <summary>A Keystone over this test's scripts folder, with a roomy budget: this shared box stalls under parallel tests.</summary>
    private Task<KeystoneInstance> StartAsync(string yaml, string maxBody = "1MB") => KeystoneInstance.StartAsync($"""
        lua:
          scripts_dir: {JsonSerializer.Serialize(_scripts)}
          budget: 250ms
          states: 2
          max_body: {maxBody}

        """ + yaml);

    /// <summary>Asserts the status, showing the body on a mismatch: a failed script explains itself there.</summary>
    private static async Task AssertStatus(int expected, HttpResponseMessage response)
    {
        if ((int)response.StatusCode != expected)
            Assert.Fail($"expected {expected}, got {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? string.Join(", ", values) : null;
}
