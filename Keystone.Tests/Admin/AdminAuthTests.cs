using Keystone.Cli;
using Keystone.Configuration;
using Keystone.Tests.Integration;
using Keystone.Tests.Observability;

namespace Keystone.Tests.Admin;

/// <summary><c>/admin/*</c> wants <c>Authorization: Bearer &lt;admin.token&gt;</c>; probes and scrapes do not; a non-loopback admin listener without a token is refused.</summary>
public sealed class AdminAuthTests : IDisposable
{
    private const string Token = "Kx7-tq2_Wm9pLr4zNv8bYc3s"; // 24 characters
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(20));

    public void Dispose() => _timeout.Dispose();

    private CancellationToken Cancel => _timeout.Token;

    private static string WriteConfig(string yaml)
    {
        var path = Path.Combine(Path.GetTempPath(), $"keystone-admin-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    [Fact]
    public async Task Admin_api_answers_401_without_the_right_token_and_200_with_it()
    {
        Assert.Equal(24, Token.Length);
        var route = AdminHttp.Unique("authed");
        await using var keystone = await KeystoneInstance.StartAsync($$"""
            admin: { listen: http://127.0.0.1:0, token: {{Token}} }
            routes:
              - { name: {{route}}, path: /, respond: { status: 204 } }
            """);
        using var admin = keystone.CreateAdminClient();

        // Missing, wrong, truncated, other scheme, token with something appended: all 401 with a JSON body and a challenge.
        foreach (var authorization in (string?[])[null, "Bearer wrong-token-wrong-token-x", "Bearer " + Token[..^1],
                     "Bearer " + Token + "x", "Basic " + Token, Token, "Bearer", "Bearer "])
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/routes");
            if (authorization is not null) request.Headers.TryAddWithoutValidation("Authorization", authorization);
            using var response = await admin.SendAsync(request, Cancel);
            Assert.True(401 == (int)response.StatusCode, $"Authorization: {authorization ?? "(none)"} got {(int)response.StatusCode}");
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
            using var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(Cancel));
            Assert.Equal(401, body.RootElement.GetProperty("status").GetInt32());
            Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("error").GetString()));
        }

        var ok = await AdminHttp.GetJsonAsync(admin, "/admin/routes", Cancel, bearer: Token);
        Assert.Equal(200, ok.Status);
        var names = ok.Body.GetProperty("routes").EnumerateArray().Select(r => r.GetProperty("name").GetString()).ToList();
        Assert.Equal([route], names);

        // The auth scheme is case-insensitive (RFC 9110 §11.1).
        using (var lower = new HttpRequestMessage(HttpMethod.Get, "/admin/routes"))
        {
            lower.Headers.TryAddWithoutValidation("Authorization", "bearer " + Token);
            Assert.Equal(200, (int)(await admin.SendAsync(lower, Cancel)).StatusCode);
        }

        // Every /admin/* endpoint is protected, reload included (and an unknown one does not reveal itself).
        (HttpMethod Method, string Path)[] protectedEndpoints =
        [
            (HttpMethod.Get, "/admin/upstreams"), (HttpMethod.Get, "/admin/scripts"),
            (HttpMethod.Post, "/admin/reload"), (HttpMethod.Get, "/admin/reload"), (HttpMethod.Get, "/admin/nope"),
        ];
        foreach (var (method, path) in protectedEndpoints)
        {
            var denied = await AdminHttp.SendJsonAsync(admin, method, path, Cancel);
            Assert.True(denied.Status == 401, $"{method} {path} without a token: {denied.Status} {denied.Text}");
            var allowed = await AdminHttp.SendJsonAsync(admin, method, path, Cancel, bearer: Token);
            Assert.NotEqual(401, allowed.Status);
        }

        // Probes and scrapes need no token.
        Assert.Equal(200, (await AdminHttp.GetJsonAsync(admin, "/health", Cancel)).Status);
        Assert.Equal(200, (await AdminHttp.GetJsonAsync(admin, "/ready", Cancel)).Status);
        var (metrics, _) = await PromExposition.ScrapeAsync(admin, Cancel);
        Assert.True(metrics.Families.ContainsKey("keystone_requests_total"));
    }

    [Fact]
    public async Task Non_loopback_admin_listener_without_a_token_is_refused_by_the_loader_validate_and_serve()
    {
        const string yaml = """
            listen: [http://127.0.0.1:0]
            admin: { listen: http://0.0.0.0:0 }
            routes:
              - { name: a, path: /, respond: { status: 204 } }
            """;
        var loaded = ConfigLoader.Load(yaml, "admin.yaml", _ => null);
        Assert.False(loaded.Ok);
        var error = Assert.Single(loaded.Errors);
        Assert.Contains("admin.token", error.Message);
        Assert.Equal(new SourceLocation("admin.yaml", 2, 18), error.Location);

        var path = WriteConfig(yaml);
        try
        {
            var (snapshot, errors) = Snapshot.Load(path);
            Assert.Null(snapshot);
            Assert.Contains(errors, e => e.Message.Contains("admin.token", StringComparison.Ordinal));

            var (code, _, err) = await RunCli("validate", "--config", path);
            Assert.Equal(1, code);
            Assert.Contains($"{path}:2:", err);
            Assert.Contains("admin.token", err);

            // serve refuses before binding anything (bounded: a serve that started would run until SIGTERM).
            var serve = RunCli("serve", "--config", path);
            var (serveCode, _, serveErr) = await serve.WaitAsync(TimeSpan.FromSeconds(10), Cancel);
            Assert.Equal(1, serveCode);
            Assert.Contains("admin.token", serveErr);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("http://[::]:0")]
    [InlineData("http://10.1.2.3:9090")]
    [InlineData("http://admin.example.com:9090")]
    public void Other_non_loopback_listeners_need_a_token_too(string listen)
    {
        var loaded = ConfigLoader.Load($"admin: {{ listen: \"{listen}\" }}\nroutes: [{{ name: a, path: /, respond: {{ status: 204 }} }}]\n", "a.yaml", _ => null);
        Assert.Contains(loaded.Errors, e => e.Message.Contains("admin.token", StringComparison.Ordinal));

        var empty = ConfigLoader.Load($"admin: {{ listen: \"{listen}\", token: \"\" }}\nroutes: [{{ name: a, path: /, respond: {{ status: 204 }} }}]\n", "a.yaml", _ => null);
        Assert.Contains(empty.Errors, e => e.Message.Contains("admin.token", StringComparison.Ordinal));

        var withToken = ConfigLoader.Load($"admin: {{ listen: \"{listen}\", token: {Token} }}\nroutes: [{{ name: a, path: /, respond: {{ status: 204 }} }}]\n", "a.yaml", _ => null);
        Assert.True(withToken.Ok, string.Join("\n", withToken.Errors));
        Assert.Equal(Token, withToken.Config!.Admin.Token);
    }

    [Theory]
    [InlineData("http://127.0.0.1:0")]
    [InlineData("http://localhost:9090")]
    [InlineData("http://[::1]:9090")]
    public void Loopback_listener_may_go_without_a_token(string listen)
    {
        var loaded = ConfigLoader.Load($"admin: {{ listen: \"{listen}\" }}\nroutes: [{{ name: a, path: /, respond: {{ status: 204 }} }}]\n", "a.yaml", _ => null);
        Assert.True(loaded.Ok, string.Join("\n", loaded.Errors));
        Assert.Null(loaded.Config!.Admin.Token);
    }

    [Fact]
    public async Task Short_token_is_refused()
    {
        const string yaml = """
            listen: [http://127.0.0.1:0]
            admin: { listen: http://127.0.0.1:0, token: fifteen-chars-x }
            routes:
              - { name: a, path: /, respond: { status: 204 } }
            """;
        Assert.Equal(15, "fifteen-chars-x".Length);
        var loaded = ConfigLoader.Load(yaml, "short.yaml", _ => null);
        Assert.False(loaded.Ok);
        Assert.Contains(loaded.Errors, e => e.Message.Contains("at least 16 characters", StringComparison.Ordinal) && e.Location.Line == 2);

        var path = WriteConfig(yaml);
        try
        {
            var (code, _, err) = await RunCli("validate", "--config", path);
            Assert.Equal(1, code);
            Assert.Contains("16 characters", err);
        }
        finally
        {
            File.Delete(path);
        }

        var sixteen = ConfigLoader.Load(yaml.Replace("fifteen-chars-x", "sixteen-chars-xx"), "ok.yaml", _ => null);
        Assert.True(sixteen.Ok, string.Join("\n", sixteen.Errors));
    }

    [Fact]
    public void Token_may_come_from_the_environment()
    {
        const string yaml = "admin: { listen: http://0.0.0.0:9090, token: \"${KEYSTONE_ADMIN_TOKEN}\" }\nroutes: [{ name: a, path: /, respond: { status: 204 } }]\n";
        var loaded = ConfigLoader.Load(yaml, "env.yaml", name => name == "KEYSTONE_ADMIN_TOKEN" ? Token : null);
        Assert.True(loaded.Ok, string.Join("\n", loaded.Errors));
        Assert.Equal(Token, loaded.Config!.Admin.Token);

        var unset = ConfigLoader.Load(yaml, "env.yaml", _ => null);
        Assert.False(unset.Ok);
    }

    private static async Task<(int Code, string Out, string Err)> RunCli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
