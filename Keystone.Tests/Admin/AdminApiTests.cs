using System.Net;
using System.Text.Json;
using Keystone.Tests.Integration;
using Microsoft.AspNetCore.Http;

namespace Keystone.Tests.Admin;

/// <summary>/admin/upstreams, /admin/scripts, /admin/routes and how the admin listener answers wrong methods and paths.</summary>
public sealed class AdminApiTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(20));

    public void Dispose() => _timeout.Dispose();

    private CancellationToken Cancel => _timeout.Token;

    [Fact]
    public async Task Upstreams_show_targets_health_requests_in_flight_and_the_last_error()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var slow = await TestBackend.StartAsync(async context =>
        {
            arrived.TrySetResult();
            await release.Task.WaitAsync(TimeSpan.FromSeconds(15));
            await context.Response.WriteAsync("done");
        });
        int closed = Ports.Closed();
        string slowUp = AdminHttp.Unique("slow"), goneUp = AdminHttp.Unique("gone");
        string slowTarget = $"127.0.0.1:{slow.Port}", goneTarget = $"127.0.0.1:{closed}";
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              {{slowUp}}: { targets: ["{{slow.Url}}"], timeout: 10s }
              {{goneUp}}: { targets: [{ url: "http://{{goneTarget}}/base", weight: 3 }] }
            routes:
              - { name: {{AdminHttp.Unique("s")}}, path: "/slow", upstream: {{slowUp}} }
              - { name: {{AdminHttp.Unique("g")}}, path: "/gone", upstream: {{goneUp}} }
            """);
        using var admin = keystone.CreateAdminClient();

        var idle = await AdminHttp.GetJsonAsync(admin, "/admin/upstreams", Cancel);
        Assert.Equal(200, idle.Status);
        var slowTargetJson = Target(idle, slowUp);
        Assert.Equal(slowTarget, slowTargetJson.GetProperty("target").GetString());
        Assert.Equal(slow.Url + "/", slowTargetJson.GetProperty("url").GetString());
        Assert.True(slowTargetJson.GetProperty("healthy").GetBoolean());
        Assert.Equal(0, slowTargetJson.GetProperty("in_flight").GetInt32());
        Assert.Equal(JsonValueKind.Null, slowTargetJson.GetProperty("last_error").ValueKind);
        Assert.Equal(10_000, Upstream(idle, slowUp).GetProperty("timeout_ms").GetDouble());
        var goneTargetJson = Target(idle, goneUp);
        Assert.Equal(goneTarget, goneTargetJson.GetProperty("target").GetString());
        Assert.Equal(3, goneTargetJson.GetProperty("weight").GetInt32());

        // A request held open at the backend is in flight until it completes.
        var pending = keystone.Client.GetAsync("/slow", Cancel);
        await arrived.Task.WaitAsync(Cancel);
        var busy = await AdminHttp.EventuallyAsync(async () =>
        {
            var a = await AdminHttp.GetJsonAsync(admin, "/admin/upstreams", Cancel);
            return (Target(a, slowUp).GetProperty("in_flight").GetInt32() == 1, a);
        }, TimeSpan.FromSeconds(5), "in_flight 1 while the backend holds the request", Cancel);
        Assert.Equal(1, Target(busy, slowUp).GetProperty("in_flight").GetInt32());
        release.SetResult();
        using (var done = await pending)
        {
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
            Assert.Equal("done", await done.Content.ReadAsStringAsync(Cancel));
        }
        await AdminHttp.EventuallyAsync(async () =>
        {
            var a = await AdminHttp.GetJsonAsync(admin, "/admin/upstreams", Cancel);
            return (Target(a, slowUp).GetProperty("in_flight").GetInt32() == 0, a);
        }, TimeSpan.FromSeconds(5), "in_flight back to 0", Cancel);

        // A 502 leaves its reason on the target.
        Assert.Equal(HttpStatusCode.BadGateway, (await keystone.Client.GetAsync("/gone", Cancel)).StatusCode);
        var failed = await AdminHttp.GetJsonAsync(admin, "/admin/upstreams", Cancel);
        var lastError = Target(failed, goneUp).GetProperty("last_error");
        Assert.True(lastError.ValueKind == JsonValueKind.String && lastError.GetString()!.Length > 0, $"no last_error after a 502: {failed.Text}");
        Assert.Equal(0, Target(failed, goneUp).GetProperty("in_flight").GetInt32());
        Assert.Equal(JsonValueKind.Null, Target(failed, slowUp).GetProperty("last_error").ValueKind);
    }

    [Fact]
    public async Task Scripts_answers_with_a_script_list()
    {
        await using var keystone = await KeystoneInstance.StartAsync("routes:\n  - { name: scripts, path: /, respond: { status: 204 } }\n");
        using var admin = keystone.CreateAdminClient();

        var answer = await AdminHttp.GetJsonAsync(admin, "/admin/scripts", Cancel);

        Assert.Equal(200, answer.Status);
        Assert.Equal(JsonValueKind.Array, answer.Body.GetProperty("scripts").ValueKind);
    }

    [Fact]
    public async Task Routes_lists_every_route_with_where_it_is_defined()
    {
        string a = AdminHttp.Unique("ra"), b = AdminHttp.Unique("rb");
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            upstreams:
              u: { targets: ["http://127.0.0.1:9"] }
            routes:
              - { name: {{a}}, path: "/a/{*rest}", methods: [GET, POST], upstream: u, strip_prefix: true }
              - { name: {{b}}, path: /b, respond: { status: 204 } }
            """);
        using var admin = keystone.CreateAdminClient();

        var answer = await AdminHttp.GetJsonAsync(admin, "/admin/routes", Cancel);

        Assert.Equal(200, answer.Status);
        Assert.Equal(keystone.ConfigPath, answer.Body.GetProperty("config").GetString());
        Assert.Empty(answer.Body.GetProperty("last_reload_errors").EnumerateArray());
        Assert.Equal(JsonValueKind.String, answer.Body.GetProperty("loaded_at").ValueKind);
        var routes = answer.Body.GetProperty("routes").EnumerateArray().ToList();
        Assert.Equal([a, b], routes.Select(r => r.GetProperty("name").GetString()));
        Assert.Equal("u", routes[0].GetProperty("upstream").GetString());
        Assert.Equal("/a/{*rest}", routes[0].GetProperty("path").GetString());
        Assert.Equal(204, routes[1].GetProperty("respond_status").GetInt32());
        foreach (var r in routes)
            Assert.Matches($"^{System.Text.RegularExpressions.Regex.Escape(keystone.ConfigPath)}:\\d+:\\d+$", r.GetProperty("defined_at").GetString());
    }

    [Fact]
    public async Task Wrong_methods_are_405_with_allow_and_unknown_paths_404()
    {
        await using var keystone = await KeystoneInstance.StartAsync("routes:\n  - { name: methods, path: /, respond: { status: 204 } }\n");
        using var admin = keystone.CreateAdminClient();

        var getReload = await AdminHttp.GetJsonAsync(admin, "/admin/reload", Cancel);
        Assert.Equal(405, getReload.Status);
        Assert.Equal(["POST"], getReload.Response.Content.Headers.Allow);

        foreach (var path in (string[])["/admin/routes", "/admin/upstreams", "/admin/scripts", "/health", "/ready", "/metrics"])
        {
            var post = await AdminHttp.SendJsonAsync(admin, HttpMethod.Post, path, Cancel);
            Assert.True(post.Status == 405, $"POST {path}: {post.Status} {post.Text}");
            Assert.Equal(["GET"], post.Response.Content.Headers.Allow);
        }

        var unknown = await AdminHttp.GetJsonAsync(admin, "/admin/nothing-here", Cancel);
        Assert.Equal(404, unknown.Status);
        Assert.Equal(404, (await AdminHttp.GetJsonAsync(admin, "/", Cancel)).Status);
    }

    private static JsonElement Upstream(JsonAnswer answer, string name)
    {
        foreach (var u in answer.Body.GetProperty("upstreams").EnumerateArray())
            if (u.GetProperty("name").GetString() == name) return u;
        throw new Xunit.Sdk.XunitException($"upstream {name} is not in {answer.Text}");
    }

    private static JsonElement Target(JsonAnswer answer, string upstream) =>
        Assert.Single(Upstream(answer, upstream).GetProperty("targets").EnumerateArray());
}
