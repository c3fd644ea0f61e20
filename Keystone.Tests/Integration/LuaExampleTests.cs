using System.Buffers.Text;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Keystone.Tests.Cli;

namespace Keystone.Tests.Integration;

/// <summary>
/// The example scripts of scripts/ with their configs from configs/examples/, as users copy them: each test starts
/// recording backends and a real Keystone from the shipped config (listen and targets pointed at the test, scripts_dir
/// at the repository's scripts folder), then checks what the client got and what reached the backend.
/// Tests of one class run one at a time, so the environment variables the scripts read are set per test.
/// </summary>
public sealed class LuaExampleTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    // ---- api_key_auth --------------------------------------------------------------------------

    [Fact]
    public async Task Api_key_example_forwards_a_listed_key_as_a_consumer_hash_and_never_the_key()
    {
        Environment.SetEnvironmentVariable("KEYSTONE_API_KEYS", "key-webshop, key-warehouse");
        await using var app = await RecordingBackend.StartAsync("orders");
        await using var keystone = await StartExampleAsync("lua-api-key-auth.yaml", ("http://127.0.0.1:${APP_PORT:-3000}", app.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/orders?page=2");
        request.Headers.Add("X-API-Key", "key-warehouse");
        request.Headers.Add("X-Consumer", "admin");   // a client may not name itself
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(200, response);
        var seen = Assert.Single(app.Requests);
        Assert.Equal("/api/orders", seen.Path);
        Assert.Equal("?page=2", seen.Query);
        Assert.False(seen.Headers.ContainsKey("X-API-Key"));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData("key-warehouse"u8))[..12], seen.Headers["X-Consumer"]);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("wrong-key")]
    [InlineData("key-web")]                       // a prefix of a real key
    [InlineData("key-webshop, key-warehouse")]    // the whole list is not a key
    [InlineData("KEY-WEBSHOP")]                   // keys are case-sensitive
    public async Task Api_key_example_answers_401_json_to_a_missing_or_unknown_key_without_calling_the_app(string? key)
    {
        Environment.SetEnvironmentVariable("KEYSTONE_API_KEYS", "key-webshop, key-warehouse");
        await using var app = await RecordingBackend.StartAsync("orders");
        await using var keystone = await StartExampleAsync("lua-api-key-auth.yaml", ("http://127.0.0.1:${APP_PORT:-3000}", app.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/orders");
        if (key is not null) request.Headers.TryAddWithoutValidation("X-API-Key", key);
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(401, response);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("""{"error":"invalid api key"}""", await response.Content.ReadAsStringAsync(cts.Token));
        Assert.Empty(app.Requests);

        // The health check needs no key.
        using var health = await keystone.Client.GetAsync("/healthz", cts.Token);
        await AssertStatus(200, health);
    }

    // ---- jwt_auth ------------------------------------------------------------------------------

    private const string JwtSecret = "test-secret-of-at-least-32-bytes!";

    [Fact]
    public async Task Jwt_example_forwards_a_valid_token_with_its_subject_as_x_user()
    {
        Environment.SetEnvironmentVariable("KEYSTONE_JWT_SECRET", JwtSecret);
        await using var api = await RecordingBackend.StartAsync("api");
        await using var site = await RecordingBackend.StartAsync("site");
        await using var keystone = await StartExampleAsync("lua-jwt-auth.yaml",
            ("http://127.0.0.1:${API_PORT:-3000}", api.Url), ("http://127.0.0.1:${SITE_PORT:-3001}", site.Url));
        using var cts = new CancellationTokenSource(Timeout);
        var token = Jwt(new { sub = "user-42", exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds() }, JwtSecret);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("X-User", "admin");   // replaced by the token's subject
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(200, response);
        var seen = Assert.Single(api.Requests);
        Assert.Equal("/me", seen.Path);
        Assert.Equal("user-42", seen.Headers["X-User"]);

        // The public site needs no token.
        using var home = await keystone.Client.GetAsync("/", cts.Token);
        await AssertStatus(200, home);
        Assert.Single(site.Requests);
    }

    public static TheoryData<string, string> BadTokens()
    {
        long inFiveMinutes = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        string header(string alg) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes($$"""{"alg":"{{alg}}","typ":"JWT"}"""));
        string claims = Base64Url.EncodeToString(Encoding.UTF8.GetBytes($$"""{"sub":"user-42","exp":{{inFiveMinutes}}}"""));
        return new()
        {
            { "wrong secret", "Bearer " + Jwt(new { sub = "user-42", exp = inFiveMinutes }, "another-secret-of-32-bytes-or-more") },
            { "expired", "Bearer " + Jwt(new { sub = "user-42", exp = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeSeconds() }, JwtSecret) },
            { "no subject", "Bearer " + Jwt(new { exp = inFiveMinutes }, JwtSecret) },
            { "alg none", "Bearer " + header("none") + "." + claims + "." },
            { "not a jwt", "Bearer abc.def" },
            { "basic credentials", "Basic dXNlcjpwYXNz" },
            { "empty bearer", "Bearer " },
        };
    }

    [Theory]
    [MemberData(nameof(BadTokens))]
    public async Task Jwt_example_answers_401_invalid_token_to_a_bad_token_without_calling_the_api(string why, string authorization)
    {
        Environment.SetEnvironmentVariable("KEYSTONE_JWT_SECRET", JwtSecret);
        await using var api = await RecordingBackend.StartAsync("api");
        await using var keystone = await StartExampleAsync("lua-jwt-auth.yaml",
            ("http://127.0.0.1:${API_PORT:-3000}", api.Url), ("http://127.0.0.1:${SITE_PORT:-3001}", api.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(401, response, why);
        Assert.Equal("Bearer error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Empty(api.Requests);
    }

    [Fact]
    public async Task Jwt_example_challenges_a_request_without_credentials_with_a_bare_bearer()
    {
        Environment.SetEnvironmentVariable("KEYSTONE_JWT_SECRET", JwtSecret);
        await using var api = await RecordingBackend.StartAsync("api");
        await using var keystone = await StartExampleAsync("lua-jwt-auth.yaml",
            ("http://127.0.0.1:${API_PORT:-3000}", api.Url), ("http://127.0.0.1:${SITE_PORT:-3001}", api.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var response = await keystone.Client.GetAsync("/api/me", cts.Token);

        // RFC 6750 §3.1: no error code when the request carried no credentials at all.
        await AssertStatus(401, response);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        Assert.Empty(api.Requests);
    }

    // In this process the JWT code may already be compiled by earlier tests; a user's first request after
    // `keystone serve` is not so lucky. This runs the shipped config (default 1 ms budget) in a fresh process.
    [Theory]
    [InlineData("valid", 200)]
    [InlineData("wrong secret", 401)]
    public async Task Jwt_example_answers_the_first_token_after_a_cold_start_within_the_default_budget(string kind, int expected)
    {
        await using var api = await RecordingBackend.StartAsync("api");
        var yaml = KeystoneInstance.WithTestDefaults(ExampleYaml("lua-jwt-auth.yaml",
            [("http://127.0.0.1:${API_PORT:-3000}", api.Url), ("http://127.0.0.1:${SITE_PORT:-3001}", api.Url)]));
        await using var keystone = await KeystoneProcess.StartAsync(yaml, ("KEYSTONE_JWT_SECRET", JwtSecret));
        using var cts = new CancellationTokenSource(Timeout);
        var token = Jwt(new { sub = "user-42", exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds() },
            kind == "valid" ? JwtSecret : "another-secret-of-32-bytes-or-more");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(expected, response, $"first {kind} token of a fresh process");
    }

    /// <summary>An HS256 token over the payload's JSON.</summary>
    private static string Jwt(object payload, string secret)
    {
        var input = Base64Url.EncodeToString("""{"alg":"HS256","typ":"JWT"}"""u8) + "." + Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(payload));
        return input + "." + Base64Url.EncodeToString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(input)));
    }

    // ---- security_headers ----------------------------------------------------------------------

    [Fact]
    public async Task Security_headers_example_adds_the_four_headers_and_removes_the_banners()
    {
        await using var app = await RecordingBackend.StartAsync("website", response =>
        {
            response.Headers.Server = "Apache/2.4.62 (Debian)";
            response.Headers["X-Powered-By"] = "PHP/8.3";
        });
        await using var keystone = await StartExampleAsync("lua-security-headers.yaml", ("http://127.0.0.1:${APP_PORT:-3000}", app.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var response = await keystone.Client.GetAsync("/about", cts.Token);

        await AssertStatus(200, response);
        Assert.Equal("max-age=31536000; includeSubDomains", Header(response, "Strict-Transport-Security"));
        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        Assert.Equal("DENY", Header(response, "X-Frame-Options"));
        Assert.Equal("strict-origin-when-cross-origin", Header(response, "Referrer-Policy"));
        Assert.Null(Header(response, "Server"));
        Assert.Null(Header(response, "X-Powered-By"));
        Assert.Equal("/about", JsonDocument.Parse(await response.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("path").GetString());
    }

    [Fact]
    public async Task Security_headers_example_keeps_a_header_the_app_chose_and_covers_error_pages()
    {
        await using var app = await RecordingBackend.StartAsync("website", response =>
        {
            response.Headers.Server = "Apache/2.4.62 (Debian)";
            if (response.HttpContext.Request.Path == "/embed") response.Headers["X-Frame-Options"] = "SAMEORIGIN";
            else response.StatusCode = 404;
        });
        await using var keystone = await StartExampleAsync("lua-security-headers.yaml", ("http://127.0.0.1:${APP_PORT:-3000}", app.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var embed = await keystone.Client.GetAsync("/embed", cts.Token);
        Assert.Equal("SAMEORIGIN", Header(embed, "X-Frame-Options"));
        Assert.Equal("nosniff", Header(embed, "X-Content-Type-Options"));

        using var missing = await keystone.Client.GetAsync("/no-such-page", cts.Token);
        await AssertStatus(404, missing);
        Assert.Equal("DENY", Header(missing, "X-Frame-Options"));
        Assert.Null(Header(missing, "Server"));
    }

    // ---- canary --------------------------------------------------------------------------------

    [Theory]
    [InlineData("X-Canary", "1")]
    [InlineData("Cookie", "canary=always")]
    [InlineData("Cookie", "theme=dark; canary=always; lang=en")]
    public async Task Canary_example_sends_an_opted_in_request_to_the_canary_upstream(string header, string value)
    {
        await using var stable = await RecordingBackend.StartAsync("stable");
        await using var canary = await RecordingBackend.StartAsync("canary");
        await using var keystone = await StartExampleAsync("lua-canary.yaml",
            ("http://127.0.0.1:${STABLE_PORT:-3000}", stable.Url), ("http://127.0.0.1:${CANARY_PORT:-3100}", canary.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/shop/cart?x=1");
        request.Headers.TryAddWithoutValidation(header, value);
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(200, response);
        Assert.Empty(stable.Requests);
        var seen = Assert.Single(canary.Requests);
        Assert.Equal("/shop/cart", seen.Path);
        Assert.Equal("?x=1", seen.Query);
        Assert.Equal("1", seen.Headers["X-Canary-Routed"]);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("X-Canary", "0")]
    [InlineData("X-Canary", "yes")]
    [InlineData("Cookie", "canary=never")]
    [InlineData("Cookie", "nocanary=always")]
    [InlineData("X-Canary-Routed", "1")]   // claiming to be routed is not opting in, and is overwritten
    public async Task Canary_example_keeps_other_requests_on_the_route_upstream(string? header, string? value)
    {
        await using var stable = await RecordingBackend.StartAsync("stable");
        await using var canary = await RecordingBackend.StartAsync("canary");
        await using var keystone = await StartExampleAsync("lua-canary.yaml",
            ("http://127.0.0.1:${STABLE_PORT:-3000}", stable.Url), ("http://127.0.0.1:${CANARY_PORT:-3100}", canary.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/shop");
        if (header is not null) request.Headers.TryAddWithoutValidation(header, value);
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        await AssertStatus(200, response);
        Assert.Empty(canary.Requests);
        var seen = Assert.Single(stable.Requests);
        Assert.Equal("0", seen.Headers["X-Canary-Routed"]);
    }

    // ---- hello_api -----------------------------------------------------------------------------

    [Fact]
    public async Task Hello_example_handler_answers_json_with_path_and_time_without_the_app()
    {
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartExampleAsync("lua-hello-api.yaml", ("http://127.0.0.1:${APP_PORT:-3000}", app.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var response = await keystone.Client.GetAsync("/api/hello", cts.Token);

        await AssertStatus(200, response);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cts.Token)).RootElement;
        Assert.Equal("hello", json.GetProperty("message").GetString());
        Assert.Equal("/api/hello", json.GetProperty("path").GetString());
        var time = DateTimeOffset.Parse(json.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(time, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Empty(app.Requests);

        // The handler takes GET only; other methods fall through to the app's catch-all (a lower-priority route that
        // takes the method beats a 405).
        using var post = await keystone.Client.PostAsync("/api/hello", new StringContent("{}"), cts.Token);
        await AssertStatus(200, post);
        Assert.Equal("/api/hello", Assert.Single(app.Requests).Path);
    }

    [Fact]
    public async Task Hello_example_script_route_answers_with_the_name_and_the_app_keeps_the_rest()
    {
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartExampleAsync("lua-hello-api.yaml", ("http://127.0.0.1:${APP_PORT:-3000}", app.Url));
        using var cts = new CancellationTokenSource(Timeout);

        using var hello = await keystone.Client.GetAsync("/lua/hello/ada", cts.Token);
        await AssertStatus(200, hello);
        Assert.Equal("application/json", hello.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(await hello.Content.ReadAsStringAsync(cts.Token)).RootElement;
        Assert.Equal("ada", json.GetProperty("name").GetString());
        Assert.Equal("hello, ada", json.GetProperty("message").GetString());
        Assert.Empty(app.Requests);

        // A name that needs escaping in JSON comes back intact.
        using var quoted = await keystone.Client.GetAsync("/lua/hello/%22b%C3%B6b%22", cts.Token);
        await AssertStatus(200, quoted);
        Assert.Equal("\"böb\"", JsonDocument.Parse(await quoted.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("name").GetString());

        // Paths the script does not declare go to the app.
        using var other = await keystone.Client.GetAsync("/lua/hello", cts.Token);
        await AssertStatus(200, other);
        Assert.Equal("/lua/hello", Assert.Single(app.Requests).Path);
    }

    // ---- client_counter ------------------------------------------------------------------------

    [Fact]
    public async Task Client_counter_example_counts_requests_and_answers_429_with_retry_after_past_the_limit()
    {
        int limit = int.Parse(Regex.Match(File.ReadAllText(Path.Combine(ScriptsDir, "client_counter.lua")), @"local LIMIT = (\d+)").Groups[1].Value);
        await using var app = await RecordingBackend.StartAsync("app");
        await using var keystone = await StartExampleAsync("lua-client-counter.yaml", ("http://127.0.0.1:${APP_PORT:-3000}", app.Url));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        // The counter is per client and minute, shared by the whole process: counting starts wherever it is.
        long previous = -1;
        int forwarded = 0;
        for (int i = 0; i < 3 * limit; i++)
        {
            using var response = await keystone.Client.GetAsync("/api/products", cts.Token);
            bool refused = (int)response.StatusCode == 429;
            if (!refused) await AssertStatus(200, response);
            long count = long.Parse(Header(response, "X-Request-Count") ?? "-1");
            if (previous >= 0 && count != 1) Assert.Equal(previous + 1, count);   // 1: a new minute began
            previous = count;
            if (!refused)
            {
                forwarded++;
                Assert.InRange(count, 1, limit);
                continue;
            }

            Assert.Equal(limit + 1, count);
            int retryAfter = int.Parse(Header(response, "Retry-After")!);
            Assert.InRange(retryAfter, 1, 60);
            var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cts.Token)).RootElement;
            Assert.Equal("too many requests", json.GetProperty("error").GetString());
            Assert.Equal(limit, json.GetProperty("limit").GetInt32());
            Assert.Equal(forwarded, app.Requests.Count);   // refused requests never reach the app

            // Keystone's own health check is not counted.
            using var health = await keystone.Client.GetAsync("/healthz", cts.Token);
            await AssertStatus(200, health);
            Assert.Null(Header(health, "X-Request-Count"));
            return;
        }
        Assert.Fail($"no 429 after {3 * limit} requests");
    }

    // ---- aws_mask ------------------------------------------------------------------------------

    [Fact]
    public async Task Aws_mask_example_hides_aws_ids_from_the_upstream_and_restores_them_for_the_client()
    {
        await using var llm = await RecordingBackend.StartAsync("llm", echoBody: true);
        await using var keystone = await StartExampleAsync("lua-aws-mask.yaml", ("http://127.0.0.1:${LLM_PORT:-4000}", llm.Url));
        using var cts = new CancellationTokenSource(Timeout);
        string[] secrets = ["i-0123456789abcdef0", "i-1a2b3c4d", "arn:aws:iam::123456789012:role/Admin", "210987654321"];
        string[] notIds = ["i-123", "i-0123456789abcdeg0", "1234567890123", "ORD-12345678901"];
        var body = JsonSerializer.Serialize(new
        {
            prompt = $"Why is {secrets[0]} (and {secrets[1]}) in account {secrets[3]} denied by {secrets[2]}? Account {secrets[3]} again.",
            notes = notIds,
        });

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Request-Id", "aws-mask-" + Guid.NewGuid().ToString("N"));
        using var response = await keystone.Client.SendAsync(request, cts.Token);

        // The client reads its own identifiers back: the echoed body is the one it sent.
        await AssertStatus(200, response);
        Assert.Equal(body, await response.Content.ReadAsStringAsync(cts.Token));

        var seen = Assert.Single(llm.Requests).Body;
        foreach (var secret in secrets) Assert.DoesNotContain(secret, seen);
        foreach (var other in notIds) Assert.Contains(other, seen);
        var tokens = Regex.Matches(seen, @"AWSMASK_\d+_[0-9a-f]{8}").Select(m => m.Value).ToList();
        Assert.Equal(5, tokens.Count);              // the account id twice, under one token
        Assert.Equal(4, tokens.Distinct().Count());
        Assert.Equal("account " + tokens[2] + " denied", Regex.Match(seen, "account (\\S+) denied").Value);
        Assert.Contains("Account " + tokens[2] + " again", seen);

        // The mapping is gone once the response is out.
        var requestId = request.Headers.GetValues("X-Request-Id").Single();
        var shared = keystone.Gateway.Current.Scripts!.Shared;
        foreach (var token in tokens.Distinct())
            Assert.False(shared.TryGet(Encoding.UTF8.GetBytes($"awsmask:{requestId}:{token}"), out _), token);
    }

    [Fact]
    public async Task Aws_mask_example_leaves_bodies_without_ids_and_non_json_bodies_alone()
    {
        await using var llm = await RecordingBackend.StartAsync("llm", echoBody: true);
        await using var keystone = await StartExampleAsync("lua-aws-mask.yaml", ("http://127.0.0.1:${LLM_PORT:-4000}", llm.Url));
        using var cts = new CancellationTokenSource(Timeout);

        const string plain = """{"prompt":"How do I rotate keys?"}""";
        using var json = await keystone.Client.PostAsync("/v1/chat/completions", new StringContent(plain, Encoding.UTF8, "application/json"), cts.Token);
        await AssertStatus(200, json);
        Assert.Equal(plain, await json.Content.ReadAsStringAsync(cts.Token));

        // Only JSON is masked: other content types pass as sent.
        const string text = "instance i-0123456789abcdef0 in 123456789012";
        using var other = await keystone.Client.PostAsync("/v1/chat/completions", new StringContent(text, Encoding.UTF8, "text/plain"), cts.Token);
        await AssertStatus(200, other);
        Assert.Equal(text, await other.Content.ReadAsStringAsync(cts.Token));

        Assert.Equal(new[] { plain, text }, llm.Requests.Select(r => r.Body));
    }

    // ---- harness -------------------------------------------------------------------------------

    private static string ScriptsDir => Path.Combine(CommandLineTests.RepositoryRoot(), "scripts");

    /// <summary>
    /// Starts Keystone in this process from configs/examples/<paramref name="file"/> (see <see cref="ExampleYaml"/>).
    /// Scripts get a roomy budget unless the config sets one: on this shared 2-core box a 1 ms call can stall past
    /// 1 ms under the parallel tests (as ScriptHarness notes). The shipped budget is kept by the cold-process test.
    /// </summary>
    private static Task<KeystoneInstance> StartExampleAsync(string file, params (string Target, string Url)[] targets)
    {
        var yaml = ExampleYaml(file, targets);
        if (!Regex.IsMatch(yaml, @"^\s+budget:", RegexOptions.Multiline))
            yaml = Replace(yaml, @"^lua:[ \t]*\r?\n", "lua:\n  budget: 250ms\n", file);
        return KeystoneInstance.StartAsync(yaml);
    }

    /// <summary>
    /// configs/examples/<paramref name="file"/> as shipped, but without its `listen:` line (the test picks a free
    /// loopback port), with scripts_dir naming the repository's scripts folder and each target URL replaced by a
    /// test backend's. Every replacement must hit, so a config edit cannot silently bypass the test.
    /// </summary>
    private static string ExampleYaml(string file, (string Target, string Url)[] targets)
    {
        var yaml = File.ReadAllText(Path.Combine(CommandLineTests.RepositoryRoot(), "configs", "examples", file));
        yaml = Replace(yaml, @"^listen:.*\r?\n", "", file);
        yaml = Replace(yaml, @"^(\s*scripts_dir:)\s*scripts\b", "$1 " + JsonSerializer.Serialize(ScriptsDir), file);
        foreach (var (target, url) in targets)
        {
            Assert.True(yaml.Contains(target, StringComparison.Ordinal), $"{file} has no target {target}");
            yaml = yaml.Replace(target, url, StringComparison.Ordinal);
        }
        return yaml;
    }

    private static string Replace(string yaml, string pattern, string replacement, string file)
    {
        var regex = new Regex(pattern, RegexOptions.Multiline);
        Assert.True(regex.Matches(yaml).Count == 1, $"{file}: expected one match of {pattern}");
        return regex.Replace(yaml, replacement);
    }

    /// <summary>Asserts the status, showing the body on a mismatch: a failed script explains itself there.</summary>
    private static async Task AssertStatus(int expected, HttpResponseMessage response, string? context = null)
    {
        if ((int)response.StatusCode != expected)
            Assert.Fail($"{context}{(context is null ? "" : ": ")}expected {expected}, got {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? string.Join(", ", values) : null;
}
