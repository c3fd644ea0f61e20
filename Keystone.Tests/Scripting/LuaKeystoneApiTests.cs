using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Keystone.Tests.Scripting;

/// <summary>The <c>keystone</c> table: json, base64, hashes, jwt, now, env and shared, with their error paths.</summary>
public sealed class LuaKeystoneApiTests
{
    private static string Eval(string expressions, Microsoft.AspNetCore.Http.DefaultHttpContext? request = null) => LuaScripts.Eval(expressions, request);

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    // ---- json ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("{}", "{}")]
    [InlineData("{ 1, 2, 3 }", "[1,2,3]")]
    [InlineData("{ a = { b = { true, false } } }", """{"a":{"b":[true,false]}}""")]
    [InlineData("{ [2] = 'x' }", """{"2":"x"}""")]
    [InlineData("'a\"b\\\\c\\n\\1'", "\"a\\\"b\\\\c\\n\\u0001\"")]
    [InlineData("1.5", "1.5")]
    [InlineData("-7", "-7")]
    [InlineData("nil", "null")]
    [InlineData("'caf\\195\\169'", "\"caf\u00e9\"")]
    public void Json_encode_writes_the_value(string lua, string json)
    {
        Assert.Equal(json, LuaScripts.Answer("function handle(req) return keystone.json.encode(" + lua + ") end"));
    }

    [Fact]
    public void Json_decode_reads_objects_arrays_and_scalars()
    {
        Assert.Equal("1 'integer' 2.5 'x' true nil 4 'table' nil 'hi'", Eval("""
            (function()
              local t = keystone.json.decode('{"a":[1,2.5,"x",true,null],"b":{"c":null},"s":"h\\u0069"}')
              return t.a[1], math.type(t.a[1]), t.a[2], t.a[3], t.a[4], t.a[5], #t.a, type(t.b), next(t.b), t.s
            end)()
            """));
    }

    [Fact]
    public void Json_round_trip_keeps_values_and_empty_arrays_become_objects()
    {
        Assert.Equal("""{"list":[1,-2,3.25,"é",{},{"k":"v"}]}""",
            LuaScripts.Answer("""
                function handle(req)
                  return keystone.json.encode(keystone.json.decode('{"list":[1,-2,3.25,"\\u00e9",[],{"k":"v"}]}'))
                end
                """));
    }

    [Fact]
    public void Json_decode_of_null_is_nil_without_error() => Assert.Equal("nil", Eval("keystone.json.decode('null')"));

    [Fact]
    public void Json_decode_keeps_large_integers_exact() =>
        Assert.Equal("9007199254740993 'integer'", Eval("keystone.json.decode('9007199254740993'), math.type(keystone.json.decode('9007199254740993'))"));

    [Theory]
    [InlineData("{bad")]
    [InlineData("[1,]")]
    [InlineData("")]
    [InlineData("1 2")]
    [InlineData("{\"a\":1}}")]
    [InlineData("'single'")]
    public void Json_decode_of_invalid_json_returns_nil_and_an_error(string text)
    {
        var shown = Eval("keystone.json.decode(req.headers['x-json'] or '')", ScriptHarness.Request(headers: new() { ["X-Json"] = text }));
        Assert.StartsWith("nil '", shown);
        Assert.NotEqual("nil ''", shown);
    }

    [Fact]
    public void Json_decode_of_a_lone_surrogate_escape_returns_nil_and_an_error()
    {
        var shown = Eval("""(function() local ok, v, e = pcall(keystone.json.decode, '"\\ud800"') return ok, v, e ~= nil end)()""");
        Assert.Equal("true nil true", shown);
    }

    [Fact]
    public void Json_decode_refuses_a_non_string() =>
        Assert.Equal("bad argument #1 to 'decode' (string expected)", LuaScripts.ErrorOf("keystone.json.decode(5)"));

    [Fact]
    public void Json_decode_accepts_32_levels()
    {
        Assert.Equal("'table' 'table'", Eval("type(keystone.json.decode(string.rep('[', 32) .. string.rep(']', 32))), type(keystone.json.decode(string.rep('{\"a\":', 31) .. '{}' .. string.rep('}', 31)))"));
    }

    [Fact]
    public void Json_decode_refuses_33_levels_like_encode_does() =>
        Assert.StartsWith("nil '", Eval("keystone.json.decode(string.rep('[', 33) .. string.rep(']', 33))"));

    [Fact]
    public void Json_encode_accepts_32_levels_and_refuses_33()
    {
        Assert.Equal("'ok'", Eval("(function() local t = {} for i = 1, 31 do t = { t } end keystone.json.encode(t) return 'ok' end)()"));
        Assert.Equal("keystone.json.encode: nested deeper than 32 levels (or a cycle)",
            LuaScripts.ErrorOf("local t = {} for i = 1, 32 do t = { t } end keystone.json.encode(t)"));
    }

    [Fact]
    public void Json_encode_refuses_a_cycle() =>
        Assert.Equal("keystone.json.encode: nested deeper than 32 levels (or a cycle)", LuaScripts.ErrorOf("local t = {} t.self = t keystone.json.encode(t)"));

    [Theory]
    [InlineData("0/0", "keystone.json.encode: cannot encode NaN or infinity")]
    [InlineData("math.huge", "keystone.json.encode: cannot encode NaN or infinity")]
    [InlineData("{ x = -math.huge }", "keystone.json.encode: cannot encode NaN or infinity")]
    [InlineData("function() end", "keystone.json.encode: cannot encode a function")]
    [InlineData("{ [true] = 1 }", "keystone.json.encode: object keys must be strings or numbers, not boolean")]
    [InlineData("'\\255'", "keystone.json.encode: strings must be valid UTF-8")]
    public void Json_encode_refuses_what_json_cannot_hold(string lua, string message)
    {
        Assert.Equal(message, LuaScripts.ErrorOf("keystone.json.encode(" + lua + ")"));
    }

    // ---- base64 ----------------------------------------------------------------------------------------

    [Fact]
    public void Base64_encodes_and_decodes_with_padding()
    {
        Assert.Equal("'aGVsbG8=' '' 'hello' true", Eval("keystone.base64.encode('hello'), keystone.base64.encode(''), keystone.base64.decode('aGVsbG8='), keystone.base64.decode(keystone.base64.encode('\\0\\255\\1')) == '\\0\\255\\1'"));
    }

    [Fact]
    public void Base64_and_base64url_use_their_own_alphabets()
    {
        Assert.Equal("'+/8=' '-_8' true true", Eval("keystone.base64.encode('\\251\\255'), keystone.base64url.encode('\\251\\255'), keystone.base64.decode('+/8=') == '\\251\\255', keystone.base64url.decode('-_8') == '\\251\\255'"));
    }

    [Theory]
    [InlineData("keystone.base64.decode('not base64!')")]
    [InlineData("keystone.base64.decode('-_8=')")]
    [InlineData("keystone.base64.decode('aGVsbG8')")]
    [InlineData("keystone.base64url.decode('+/8')")]
    [InlineData("keystone.base64url.decode('a')")]
    public void Base64_decode_of_invalid_input_returns_nil_and_invalid_base64(string call)
    {
        Assert.Equal("nil 'invalid base64'", Eval(call));
    }

    [Fact]
    public void Base64_refuses_a_non_string() =>
        Assert.Equal("bad argument #1 to 'encode' (string expected)", LuaScripts.ErrorOf("keystone.base64.encode({})"));

    // ---- hashes ----------------------------------------------------------------------------------------

    [Fact]
    public void Sha256_returns_lowercase_hex()
    {
        var expected = string.Join(" ", new[] { "abc", "", "\0\u00ff" }
            .Select(s => "'" + Hex(SHA256.HashData(Encoding.Latin1.GetBytes(s))) + "'"));
        Assert.Equal(expected, Eval("keystone.sha256('abc'), keystone.sha256(''), keystone.sha256('\\0\\255')"));
        Assert.Equal("'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'", Eval("keystone.sha256('abc')"));
    }

    [Fact]
    public void Hmac_sha256_returns_lowercase_hex()
    {
        var fox = Hex(HMACSHA256.HashData("key"u8, "The quick brown fox jumps over the lazy dog"u8));
        var binary = Hex(HMACSHA256.HashData([0, 255, 16], "msg"u8));
        Assert.Equal($"'{fox}' '{binary}'", Eval("keystone.hmac_sha256('key', 'The quick brown fox jumps over the lazy dog'), keystone.hmac_sha256('\\0\\255\\16', 'msg')"));
        Assert.Equal("'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8'", Eval("keystone.hmac_sha256('key', 'The quick brown fox jumps over the lazy dog')"));
    }

    [Fact]
    public void Sha256_hashes_a_number_as_its_text_and_refuses_other_types()
    {
        Assert.Equal("'" + Hex(SHA256.HashData("42"u8)) + "'", Eval("keystone.sha256(42)"));
        Assert.Equal("bad argument #1 to 'sha256' (string expected)", LuaScripts.ErrorOf("keystone.sha256({})"));
    }

    [Fact]
    public void Hmac_sha256_refuses_non_string_arguments() =>
        Assert.Equal("bad arguments to 'hmac_sha256' (key and message must be strings)", LuaScripts.ErrorOf("keystone.hmac_sha256('key')"));

    // ---- jwt ------------------------------------------------------------------------------------------

    private const string JwtSecret = "a-secret-of-at-least-32-bytes!!!";
    private static readonly RSA Rsa = RSA.Create(2048);
    private static readonly RSA OtherRsa = RSA.Create(2048);

    private static string Part(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static string HsToken(string claims, string secret = JwtSecret)
    {
        var input = Part("""{"alg":"HS256","typ":"JWT"}""") + "." + Part(claims);
        return input + "." + Base64Url.EncodeToString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(input)));
    }

    private static string RsToken(string claims, RSA? key = null)
    {
        var input = Part("""{"alg":"RS256","typ":"JWT"}""") + "." + Part(claims);
        return input + "." + Base64Url.EncodeToString((key ?? Rsa).SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    /// <summary>Verifies the token in the x-token header with the given options and shows claims.sub, claims.exp and the error.</summary>
    private static string Verify(string token, string options)
    {
        var script = $$"""
            local PEM = [==[{{Rsa.ExportSubjectPublicKeyInfoPem()}}]==]
            {{LuaScripts.Prelude}}
            function handle(req)
              local claims, err = keystone.jwt.verify(req.headers["x-token"], {{options}})
              return show(claims and claims.sub, claims and claims.exp, err)
            end
            """;
        return LuaScripts.Answer(script, ScriptHarness.Request(headers: new() { ["X-Token"] = token }));
    }

    [Fact]
    public void Jwt_verify_hs256_returns_the_claims_of_a_valid_token()
    {
        long exp = Now + 600;
        Assert.Equal($"'alice' {exp} nil", Verify(HsToken($$"""{"sub":"alice","exp":{{exp}}}"""), $"{{ alg = 'HS256', secret = '{JwtSecret}' }}"));
    }

    [Fact]
    public void Jwt_verify_hs256_refuses_an_expired_token()
    {
        long exp = Now - 600;
        Assert.Equal("nil nil 'token expired'", Verify(HsToken($$"""{"sub":"alice","exp":{{exp}}}"""), $"{{ alg = 'HS256', secret = '{JwtSecret}' }}"));
    }

    [Fact]
    public void Jwt_verify_hs256_refuses_a_token_signed_with_another_secret()
    {
        var token = HsToken("""{"sub":"alice"}""", "another-secret-of-32-bytes-or-so!");
        Assert.Equal("nil nil 'bad signature'", Verify(token, $"{{ alg = 'HS256', secret = '{JwtSecret}' }}"));
    }

    [Fact]
    public void Jwt_verify_rs256_returns_the_claims_of_a_valid_token()
    {
        long exp = Now + 600;
        Assert.Equal($"'bob' {exp} nil", Verify(RsToken($$"""{"sub":"bob","exp":{{exp}}}"""), "{ alg = 'RS256', public_key = PEM }"));
    }

    [Fact]
    public void Jwt_verify_rs256_refuses_an_expired_token()
    {
        long exp = Now - 600;
        Assert.Equal("nil nil 'token expired'", Verify(RsToken($$"""{"sub":"bob","exp":{{exp}}}"""), "{ alg = 'RS256', public_key = PEM }"));
    }

    [Fact]
    public void Jwt_verify_rs256_refuses_a_token_signed_with_another_key()
    {
        Assert.Equal("nil nil 'bad signature'", Verify(RsToken("""{"sub":"bob"}""", OtherRsa), "{ alg = 'RS256', public_key = PEM }"));
    }

    [Fact]
    public void Jwt_verify_refuses_a_token_of_another_algorithm()
    {
        Assert.Equal("nil nil 'algorithm mismatch'", Verify(HsToken("""{"sub":"alice"}"""), "{ alg = 'RS256', public_key = PEM }"));
        Assert.Equal("nil nil 'algorithm mismatch'", Verify(RsToken("""{"sub":"bob"}"""), $"{{ alg = 'HS256', secret = '{JwtSecret}' }}"));
    }

    [Fact]
    public void Jwt_verify_checks_issuer_audience_and_leeway()
    {
        long exp = Now - 30;
        var token = HsToken($$"""{"sub":"carol","iss":"https://issuer.test","aud":["api","web"],"exp":{{exp}}}""");
        var options = $"{{ alg = 'HS256', secret = '{JwtSecret}', issuer = 'https://issuer.test', audience = 'web', leeway = 120 }}";
        Assert.Equal($"'carol' {exp} nil", Verify(token, options));
        Assert.Equal("nil nil 'token expired'", Verify(token, options.Replace("leeway = 120", "leeway = 0")));
        Assert.Equal("nil nil 'issuer mismatch'", Verify(token, options.Replace("https://issuer.test", "https://other.test")));
        Assert.Equal("nil nil 'audience mismatch'", Verify(token, options.Replace("audience = 'web'", "audience = 'admin'")));
    }

    [Fact]
    public void Jwt_verify_reports_malformed_tokens_and_missing_keys()
    {
        Assert.Equal("nil nil 'malformed token'", Verify("not-a-token", $"{{ alg = 'HS256', secret = '{JwtSecret}' }}"));
        Assert.Equal("nil nil 'invalid key'", Verify(HsToken("""{"sub":"alice"}"""), "{ alg = 'HS256' }"));
        Assert.Equal("nil nil 'unsupported algorithm'", Verify(HsToken("""{"sub":"alice"}"""), "{ alg = 'none' }"));
        Assert.Equal("nil 'malformed token'", Eval("keystone.jwt.verify(nil, { alg = 'HS256', secret = 'x' })"));
        Assert.Equal("bad argument #2 to 'verify' (table expected, got no value)", LuaScripts.ErrorOf("keystone.jwt.verify('a.b.c')"));
    }

    // ---- now, env ---------------------------------------------------------------------------------------

    [Fact]
    public void Now_is_unix_seconds_as_a_float()
    {
        double before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        var shown = LuaScripts.Answer("function handle(req) local t = keystone.now() return math.type(t) .. ' ' .. string.format('%.3f', t) end");
        double after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        var parts = shown.Split(' ');
        Assert.Equal("float", parts[0]);
        double now = double.Parse(parts[1], CultureInfo.InvariantCulture);
        Assert.InRange(now, before, after);
    }

    [Fact]
    public void Env_reads_only_listed_names()
    {
        Assert.NotNull(Environment.GetEnvironmentVariable("PATH"));
        var env = new Dictionary<string, string?> { ["API_KEY"] = "s3cret", ["UNSET"] = null };
        Assert.Equal("'s3cret' nil nil nil nil", LuaScripts.Eval("keystone.env('API_KEY'), keystone.env('UNSET'), keystone.env('PATH'), keystone.env('api_key'), keystone.env(5)", env: env));
        Assert.Equal("nil", LuaScripts.Eval("keystone.env('API_KEY')"));
    }

    // ---- shared -----------------------------------------------------------------------------------------

    private static string Key() => "lua-api-" + Guid.NewGuid().ToString("N");

    [Fact]
    public void Shared_set_and_get_keep_strings_numbers_and_booleans()
    {
        var k = Key();
        Assert.Equal("nil true 'v' true 2.5 true 3 'integer' true false",
            Eval($"keystone.shared.get('{k}s'), keystone.shared.set('{k}s', 'v'), keystone.shared.get('{k}s'), "
                + $"keystone.shared.set('{k}f', 2.5), keystone.shared.get('{k}f'), keystone.shared.set('{k}i', 3), keystone.shared.get('{k}i'), math.type(keystone.shared.get('{k}i')), "
                + $"keystone.shared.set('{k}b', false), keystone.shared.get('{k}b')"));
    }

    [Fact]
    public void Shared_set_of_nil_removes_the_key()
    {
        var k = Key();
        Assert.Equal("true 'v' true nil", Eval($"keystone.shared.set('{k}', 'v'), keystone.shared.get('{k}'), keystone.shared.set('{k}', nil), keystone.shared.get('{k}')"));
    }

    [Fact]
    public void Shared_incr_starts_missing_keys_at_zero_and_adds_the_delta()
    {
        var k = Key();
        Assert.Equal("2 7 6.5 6.5", Eval($"keystone.shared.incr('{k}', 2), keystone.shared.incr('{k}', 5), keystone.shared.incr('{k}', -0.5), keystone.shared.get('{k}')"));
    }

    [Fact]
    public void Shared_incr_without_a_delta_adds_one()
    {
        var k = Key();
        Assert.Equal("1 2 3", Eval($"keystone.shared.incr('{k}'), keystone.shared.incr('{k}'), keystone.shared.incr('{k}', nil)"));
    }

    [Fact]
    public void Shared_incr_of_a_string_returns_nil_and_not_a_number()
    {
        var k = Key();
        Assert.Equal("true nil 'not a number'", Eval($"keystone.shared.set('{k}', 'text'), keystone.shared.incr('{k}', 1)"));
    }

    [Fact]
    public void Shared_delete_says_whether_a_value_was_there()
    {
        var k = Key();
        Assert.Equal("true true false nil", Eval($"keystone.shared.set('{k}', 1), keystone.shared.delete('{k}'), keystone.shared.delete('{k}'), keystone.shared.get('{k}')"));
    }

    [Fact]
    public void Shared_values_expire_after_their_ttl()
    {
        var k = Key();
        Assert.Equal("true 'soon gone' 1 'kept'", Eval($"keystone.shared.set('{k}', 'soon gone', 0.2), keystone.shared.get('{k}'), keystone.shared.incr('{k}n', 1, 0.2), (keystone.shared.set('{k}k', 'kept', 60) and keystone.shared.get('{k}k'))"));
        Thread.Sleep(600);
        Assert.Equal("nil nil 'kept'", Eval($"keystone.shared.get('{k}'), keystone.shared.get('{k}n'), keystone.shared.get('{k}k')"));
    }

    [Fact]
    public void Shared_values_are_visible_to_other_script_sets()
    {
        var k = Key();
        Assert.Equal("true", Eval($"keystone.shared.set('{k}', 'from one')"));
        Assert.Equal("from one", LuaScripts.Answer($"function handle(req) return keystone.shared.get('{k}') end"));
    }

    [Fact]
    public void Shared_refuses_bad_keys_values_and_deltas()
    {
        Assert.Equal("keystone.shared: keys are strings", LuaScripts.ErrorOf("keystone.shared.get(5)"));
        Assert.Equal("keystone.shared: values are strings, numbers or booleans", LuaScripts.ErrorOf($"keystone.shared.set('{Key()}', {{}})"));
        Assert.Equal("keystone.shared.incr: delta must be a number", LuaScripts.ErrorOf($"keystone.shared.incr('{Key()}', 'x')"));
        Assert.Equal("nil 'too large'", Eval("keystone.shared.set(string.rep('k', 251), 1)"));
        Assert.Equal("nil 'key too long'", Eval("keystone.shared.incr(string.rep('k', 251), 1)"));
    }

    [Fact]
    public void Keystone_table_has_exactly_the_documented_functions()
    {
        var names = LuaScripts.Answer("""
            function handle(req)
              local names = {}
              for k, v in pairs(keystone) do names[#names + 1] = k .. ":" .. type(v) end
              table.sort(names)
              return table.concat(names, " ")
            end
            """);
        Assert.Equal("base64:table base64url:table env:function hmac_sha256:function json:table jwt:table log:function now:function sha256:function shared:table", names);
    }
}
