using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Keystone.Scripting;

namespace Keystone.Tests.Scripting;

public sealed class JwtVerifierTests
{
    private const double Now = 1_700_000_000;
    private const string HsHeader = """{"alg":"HS256","typ":"JWT"}""";
    private const string RsHeader = """{"alg":"RS256","typ":"JWT"}""";
    private const string Claims = """{"sub":"alice","exp":1700000600,"nbf":1699999900}""";

    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("a-secret-of-at-least-32-bytes!!!");
    private static readonly RSA Rsa = RSA.Create(2048);
    private static readonly string PublicPem = Rsa.ExportSubjectPublicKeyInfoPem();

    private static string Encode(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));

    private static string HsToken(string payload, string header = HsHeader, byte[]? secret = null)
    {
        string input = Encode(header) + "." + Encode(payload);
        return input + "." + Base64Url.EncodeToString(HMACSHA256.HashData(secret ?? Secret, Encoding.ASCII.GetBytes(input)));
    }

    private static string RsToken(string payload, string header = RsHeader)
    {
        string input = Encode(header) + "." + Encode(payload);
        var signature = Rsa.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return input + "." + Base64Url.EncodeToString(signature);
    }

    private static JwtOptions Hs(string? issuer = null, string? audience = null, double leeway = 0) =>
        new("HS256", Secret, null, issuer, audience, leeway);

    private static JwtOptions Rs(string? issuer = null, string? audience = null, double leeway = 0) =>
        new("RS256", null, PublicPem, issuer, audience, leeway);

    /// <summary>The error, or null when the token verified (then the payload must be the one signed).</summary>
    private static string? Error(string token, JwtOptions options, double now = Now)
    {
        bool ok = JwtVerifier.Verify(Encoding.UTF8.GetBytes(token), options, now, out var payload, out var error);
        Assert.Equal(ok, error is null);
        Assert.Equal(ok, payload is not null);
        return error;
    }

    [Fact]
    public void A_valid_hs256_token_verifies_and_returns_its_payload()
    {
        var token = Encoding.UTF8.GetBytes(HsToken(Claims));
        Assert.True(JwtVerifier.Verify(token, Hs(), Now, out var payload, out var error));
        Assert.Null(error);
        Assert.Equal(Claims, Encoding.UTF8.GetString(payload!));
    }

    [Fact]
    public void A_valid_rs256_token_verifies_and_returns_its_payload()
    {
        var token = Encoding.UTF8.GetBytes(RsToken(Claims));
        Assert.True(JwtVerifier.Verify(token, Rs(), Now, out var payload, out var error));
        Assert.Null(error);
        Assert.Equal(Claims, Encoding.UTF8.GetString(payload!));
    }

    [Fact]
    public void Tokens_without_time_claims_verify() => Assert.Null(Error(HsToken("""{"sub":"bob"}"""), Hs()));

    [Fact]
    public void A_tampered_payload_fails_the_signature()
    {
        string forged = Encode("""{"sub":"admin","exp":1700000600}""");
        foreach (var (token, options) in new[] { (HsToken(Claims), Hs()), (RsToken(Claims), Rs()) })
        {
            var parts = token.Split('.');
            Assert.Equal("bad signature", Error(parts[0] + "." + forged + "." + parts[2], options));
        }
    }

    [Fact]
    public void A_tampered_or_foreign_signature_fails()
    {
        var hs = HsToken(Claims).Split('.');
        var otherSecret = HsToken(Claims, secret: Encoding.UTF8.GetBytes("another-secret-of-32-bytes-or-so")).Split('.');
        Assert.Equal("bad signature", Error(hs[0] + "." + hs[1] + "." + otherSecret[2], Hs()));
        Assert.Equal("bad signature", Error(hs[0] + "." + hs[1] + "." + Flip(hs[2]), Hs()));
        Assert.Equal("bad signature", Error(hs[0] + "." + hs[1] + ".", Hs()));
        Assert.Equal("bad signature", Error(hs[0] + "." + hs[1] + "." + hs[2][..20], Hs()));

        var rs = RsToken(Claims).Split('.');
        Assert.Equal("bad signature", Error(rs[0] + "." + rs[1] + "." + Flip(rs[2]), Rs()));
        Assert.Equal("bad signature", Error(rs[0] + "." + rs[1] + "." + hs[2], Rs()));
        // Right length but numerically above the modulus.
        Assert.Equal("bad signature", Error(rs[0] + "." + rs[1] + "." + Base64Url.EncodeToString(Enumerable.Repeat((byte)0xFF, 256).ToArray()), Rs()));

        static string Flip(string signature) => (signature[0] == 'A' ? "B" : "A") + signature[1..];
    }

    [Theory]
    [InlineData("none")]
    [InlineData("None")]
    [InlineData("NONE")]
    [InlineData("HS512")]
    [InlineData("ES256")]
    public void Tokens_naming_another_algorithm_are_refused(string alg)
    {
        string header = "{\"alg\":\"" + alg + "\"}";
        string unsigned = Encode(header) + "." + Encode(Claims) + ".";
        Assert.Equal("unsupported algorithm", Error(unsigned, Hs()));
        Assert.Equal("unsupported algorithm", Error(unsigned, Rs()));
        // Signing it does not help.
        Assert.Equal("unsupported algorithm", Error(HsToken(Claims, header), Hs()));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("HS512")]
    [InlineData("hs256")]
    [InlineData("")]
    public void Options_naming_an_unsupported_algorithm_verify_nothing(string algorithm) =>
        Assert.Equal("unsupported algorithm", Error(HsToken(Claims), Hs() with { Algorithm = algorithm }));

    [Fact]
    public void A_token_must_use_exactly_the_configured_algorithm()
    {
        Assert.Equal("algorithm mismatch", Error(HsToken(Claims), Rs()));
        Assert.Equal("algorithm mismatch", Error(RsToken(Claims), Hs()));
    }

    [Fact]
    public void An_hs256_token_keyed_with_the_rsa_public_key_is_refused()
    {
        // The classic confusion: an attacker who knows the public key signs HS256 with it.
        string forged = HsToken(Claims, secret: Encoding.ASCII.GetBytes(PublicPem));
        Assert.Equal("algorithm mismatch", Error(forged, Rs()));
        Assert.Equal("bad signature", Error(forged, Hs()));
    }

    [Theory]
    [InlineData("""{"typ":"JWT"}""")]
    [InlineData("""{"alg":"HS256","alg":"HS256"}""")]
    [InlineData("""{"alg":"HS256","crit":["exp"]}""")]
    [InlineData("""{"alg":256}""")]
    [InlineData("""["HS256"]""")]
    [InlineData("{\"alg\":\"HS256\"")]
    [InlineData("""{"alg":"HS256"} x""")]
    public void Headers_without_exactly_one_known_alg_are_malformed(string header) =>
        Assert.Equal("malformed token", Error(HsToken(Claims, header), Hs()));

    [Fact]
    public void Expiry_is_checked_with_the_leeway()
    {
        string token = HsToken("""{"exp":1700000000}""");
        Assert.Equal("token expired", Error(token, Hs(), now: 1_700_000_000));
        Assert.Null(Error(token, Hs(), now: 1_699_999_999.5));
        Assert.Null(Error(token, Hs(leeway: 30), now: 1_700_000_029));
        Assert.Equal("token expired", Error(token, Hs(leeway: 30), now: 1_700_000_030));
        Assert.Equal("token expired", Error(token, Hs(leeway: double.NaN), now: 1_600_000_000));
    }

    [Fact]
    public void Not_before_is_checked_with_the_leeway()
    {
        string token = HsToken("""{"nbf":1700000000.5}""");
        Assert.Null(Error(token, Hs(), now: 1_700_000_000.5));
        Assert.Equal("token not yet valid", Error(token, Hs(), now: 1_700_000_000));
        Assert.Null(Error(token, Hs(leeway: 60), now: 1_699_999_941));
        Assert.Equal("token not yet valid", Error(token, Hs(leeway: 60), now: 1_699_999_940));
    }

    [Theory]
    [InlineData("""{"exp":"1700000600"}""")]
    [InlineData("""{"exp":null}""")]
    [InlineData("""{"exp":{"at":1}}""")]
    [InlineData("""{"nbf":true}""")]
    [InlineData("""{"exp":1e400}""")]
    [InlineData("""{"exp":1700000600,"exp":1}""")]
    [InlineData("""{"exp":1700000600,"\u0065xp":1}""")]
    public void Time_claims_that_are_not_single_numbers_are_malformed(string payload) =>
        Assert.Equal("malformed token", Error(HsToken(payload), Hs()));

    [Fact]
    public void Escaped_claim_names_are_read_as_the_claim()
    {
        Assert.Equal("token expired", Error(HsToken("""{"\u0065xp":1}"""), Hs()));
        Assert.Null(Error(HsToken("""{"iss":"https:\/\/issuer"}"""), Hs(issuer: "https://issuer")));
    }

    [Fact]
    public void Issuer_is_checked_when_the_options_name_one()
    {
        string token = HsToken("""{"iss":"https://auth.example.com","iss_hint":{"x":[1,2]}}""");
        Assert.Null(Error(token, Hs(issuer: "https://auth.example.com")));
        Assert.Null(Error(token, Hs()));
        Assert.Equal("issuer mismatch", Error(token, Hs(issuer: "https://evil.example.com")));
        Assert.Equal("issuer mismatch", Error(token, Hs(issuer: "https://auth.example.co")));
        Assert.Equal("issuer mismatch", Error(HsToken("""{"sub":"x"}"""), Hs(issuer: "https://auth.example.com")));
        Assert.Equal("issuer mismatch", Error(HsToken("""{"iss":["https://auth.example.com"]}"""), Hs(issuer: "https://auth.example.com")));
    }

    [Fact]
    public void Audience_may_be_a_string_or_an_array()
    {
        Assert.Null(Error(HsToken("""{"aud":"api"}"""), Hs(audience: "api")));
        Assert.Null(Error(RsToken("""{"aud":["web",{"n":1},7,"api"]}"""), Rs(audience: "api")));
        Assert.Null(Error(RsToken("""{"aud":["web"]}"""), Rs()));
        Assert.Equal("audience mismatch", Error(RsToken("""{"aud":["web","apis"]}"""), Rs(audience: "api")));
        Assert.Equal("audience mismatch", Error(RsToken("""{"aud":"web"}"""), Rs(audience: "api")));
        Assert.Equal("audience mismatch", Error(RsToken("""{"aud":[]}"""), Rs(audience: "api")));
        Assert.Equal("audience mismatch", Error(RsToken("""{"aud":{"api":true}}"""), Rs(audience: "api")));
        Assert.Equal("audience mismatch", Error(RsToken("""{"sub":"x"}"""), Rs(audience: "api")));
    }

    [Fact]
    public void Time_is_checked_before_issuer_and_audience()
    {
        string token = HsToken("""{"exp":1,"iss":"other","aud":"other"}""");
        Assert.Equal("token expired", Error(token, Hs(issuer: "me", audience: "me")));
    }

    [Fact]
    public void Tokens_that_are_not_three_base64url_parts_are_malformed()
    {
        var parts = HsToken(Claims).Split('.');
        Assert.Equal("malformed token", Error("", Hs()));
        Assert.Equal("malformed token", Error(parts[0], Hs()));
        Assert.Equal("malformed token", Error(parts[0] + "." + parts[1], Hs()));
        Assert.Equal("malformed token", Error(parts[0] + "." + parts[1] + "." + parts[2] + ".x", Hs()));
        Assert.Equal("malformed token", Error("." + parts[1] + "." + parts[2], Hs()));
        Assert.Equal("malformed token", Error(parts[0] + ".." + parts[2], Hs()));
        Assert.Equal("malformed token", Error(parts[0] + "." + parts[1] + "*." + parts[2], Hs()));
        Assert.Equal("malformed token", Error(parts[0] + "." + parts[1] + "." + parts[2] + "=", Hs()));
        Assert.Equal("malformed token", Error(parts[0] + "." + parts[1] + " ." + parts[2], Hs()));
        Assert.Equal("malformed token", Error(Encode(HsHeader) + "+/." + parts[1] + "." + parts[2], Hs()));
        string oneCharTooMany = parts[1];
        while (oneCharTooMany.Length % 4 != 1) oneCharTooMany += "A"; // 4n+1 characters encode no whole byte count
        Assert.Equal("malformed token", Error(parts[0] + "." + oneCharTooMany + "." + parts[2], Hs()));
    }

    [Fact]
    public void A_signature_spelled_with_nonzero_unused_bits_is_malformed()
    {
        var parts = HsToken(Claims).Split('.');
        string signature = parts[2]; // 32 bytes: 43 characters, the last carrying 2 unused bits
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        char sibling = Alphabet[Alphabet.IndexOf(signature[^1], StringComparison.Ordinal) | 1];
        Assert.NotEqual(signature[^1], sibling);
        Assert.Equal("malformed token", Error(parts[0] + "." + parts[1] + "." + signature[..^1] + sibling, Hs()));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("\"sub\"")]
    [InlineData("""{"sub":"a"} {"sub":"b"}""")]
    [InlineData("""{"sub":"a",}""")]
    [InlineData("""{"sub":"a" /* c */}""")]
    public void Signed_payloads_that_are_not_one_json_object_are_malformed(string payload) =>
        Assert.Equal("malformed token", Error(HsToken(payload), Hs()));

    [Fact]
    public void Oversized_tokens_are_malformed_even_when_signed()
    {
        string big = "{\"pad\":\"" + new string('x', JwtVerifier.MaxTokenBytes) + "\"}";
        Assert.Equal("malformed token", Error(HsToken(big), Hs()));
        Assert.Equal("malformed token", Error(new string('A', JwtVerifier.MaxTokenBytes + 1), Hs()));

        // A large header (say, a certificate chain) under the cap is fine.
        string header = "{\"alg\":\"HS256\",\"x5c\":[\"" + new string('y', 4000) + "\"]}";
        Assert.Null(Error(HsToken(Claims, header), Hs()));
    }

    [Fact]
    public void Unusable_keys_are_reported_as_invalid_key()
    {
        string hs = HsToken(Claims);
        string rs = RsToken(Claims);
        Assert.Equal("invalid key", Error(hs, Hs() with { Secret = null }));
        Assert.Equal("invalid key", Error(hs, Hs() with { Secret = [] }));
        Assert.Equal("invalid key", Error(rs, Rs() with { PublicKeyPem = null }));
        Assert.Equal("invalid key", Error(rs, Rs() with { PublicKeyPem = "not a pem" }));
        Assert.Equal("invalid key", Error(rs, Rs() with { PublicKeyPem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" }));
        using var weak = RSA.Create(1024);
        Assert.Equal("invalid key", Error(rs, Rs() with { PublicKeyPem = weak.ExportSubjectPublicKeyInfoPem() }));
        // Asked twice: the cached failure answers the same.
        Assert.Equal("invalid key", Error(rs, Rs() with { PublicKeyPem = "not a pem" }));
    }

    [Fact]
    public void More_distinct_keys_than_the_cache_holds_still_verify()
    {
        string token = RsToken(Claims);
        for (int i = 0; i < 200; i++)
        {
            // Text around the armour is ignored by the PEM reader, so each string is a distinct cache key for one RSA key.
            string pem = "key " + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n" + PublicPem;
            Assert.Null(Error(token, Rs() with { PublicKeyPem = pem }));
        }
    }

    [Fact]
    public void Rs256_tokens_verify_concurrently_with_one_cached_key()
    {
        var token = Encoding.UTF8.GetBytes(RsToken(Claims));
        var forged = Encoding.UTF8.GetBytes(RsToken(Claims)[..^2] + "AA");
        var options = Rs();
        int failures = 0;
        var threads = new Thread[4];
        for (int t = 0; t < threads.Length; t++)
        {
            threads[t] = new Thread(() =>
            {
                for (int i = 0; i < 200; i++)
                {
                    if (!JwtVerifier.Verify(token, options, Now, out _, out _)) Interlocked.Increment(ref failures);
                    if (JwtVerifier.Verify(forged, options, Now, out _, out _)) Interlocked.Increment(ref failures);
                }
            });
            threads[t].Start();
        }
        foreach (var thread in threads) thread.Join();
        Assert.Equal(0, failures);
    }
}
