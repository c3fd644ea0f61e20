using System.Buffers;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;

namespace Keystone.Scripting;

/// <summary>What <c>keystone.jwt.verify</c> checks a token against; only the key its <see cref="Algorithm"/> uses is read.</summary>
public sealed record JwtOptions(string Algorithm, byte[]? Secret, string? PublicKeyPem, string? Issuer, string? Audience, double LeewaySeconds);

/// <summary>
/// Verifies compact JWS tokens signed with HS256 or RS256 (<c>keystone.jwt.verify</c>). The token's "alg" must
/// equal the configured one, so a token cannot pick its own algorithm ("none", or HS256 keyed with an RSA public key).
/// </summary>
public static class JwtVerifier
{
    public const int MaxTokenBytes = 16 * 1024;

    private const string Malformed = "malformed token";
    private const string BadSignature = "bad signature";
    private const string InvalidKey = "invalid key";

    private const int MaxSignatureBytes = 1024; // an RSA-8192 signature
    private const int MinRsaKeyBits = 2048;     // anything shorter can be factored by a determined attacker
    private const int RsaKeyCacheLimit = 64;
    private const int StackHeaderBytes = 256;

    // Importing a PEM costs tens of microseconds, and scripts pass the same few keys on every request. Keys that
    // fail to import are cached as null, so a bad key does not cost an exception per request either.
    private static readonly ConcurrentDictionary<string, RSA?> RsaKeys = new(StringComparer.Ordinal);

    private static readonly SearchValues<byte> Base64UrlAlphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"u8);

    private enum JwsAlgorithm { Missing, Unsupported, HS256, RS256 }

    [Flags]
    private enum Claim { None = 0, Exp = 1, Nbf = 2, Iss = 4, Aud = 8 }

    /// <summary>
    /// True when <paramref name="token"/> is a compact JWS with exactly the configured algorithm, a valid signature
    /// and valid time claims at <paramref name="nowSeconds"/> (unix seconds): exp, if present, &gt; now - leeway;
    /// nbf, if present, &lt;= now + leeway; iss and aud (a string or an array) when the options name them.
    /// <paramref name="payloadJson"/> is then the decoded payload. Otherwise false with a short error: "malformed token",
    /// "unsupported algorithm", "algorithm mismatch", "bad signature", "token expired", "token not yet valid",
    /// "issuer mismatch", "audience mismatch" or "invalid key" (empty secret; PEM that is not an RSA key of 2048+ bits).
    /// </summary>
    public static bool Verify(ReadOnlySpan<byte> token, JwtOptions options, double nowSeconds, out byte[]? payloadJson, out string? error)
    {
        ArgumentNullException.ThrowIfNull(options);
        error = Check(token, options, nowSeconds, out payloadJson);
        if (error is null) return true;
        payloadJson = null;
        return false;
    }

    private static string? Check(ReadOnlySpan<byte> token, JwtOptions options, double now, out byte[]? payloadJson)
    {
        payloadJson = null;
        var expected = options.Algorithm switch
        {
            "HS256" => JwsAlgorithm.HS256,
            "RS256" => JwsAlgorithm.RS256,
            _ => JwsAlgorithm.Unsupported,
        };
        if (expected == JwsAlgorithm.Unsupported) return "unsupported algorithm";

        // The key first: a configuration mistake shows on every call, not only for well-formed tokens.
        RSA? rsa = null;
        if (expected == JwsAlgorithm.HS256)
        {
            if (options.Secret is not { Length: > 0 }) return InvalidKey;
        }
        else if ((rsa = RsaKey(options.PublicKeyPem)) is null)
        {
            return InvalidKey;
        }

        if (token.IsEmpty || token.Length > MaxTokenBytes) return Malformed;
        int firstDot = token.IndexOf((byte)'.');
        if (firstDot < 0) return Malformed;
        int secondDot = token[(firstDot + 1)..].IndexOf((byte)'.');
        if (secondDot < 0) return Malformed;
        secondDot += firstDot + 1;
        var header = token[..firstDot];
        var payload = token[(firstDot + 1)..secondDot];
        var signature = token[(secondDot + 1)..]; // a fourth part fails the alphabet check: '.' is not in it
        if (header.IsEmpty || payload.IsEmpty
            || !IsCanonicalBase64Url(header) || !IsCanonicalBase64Url(payload) || !IsCanonicalBase64Url(signature))
            return Malformed;

        var algorithm = ReadAlgorithm(header);
        if (algorithm == JwsAlgorithm.Missing) return Malformed;
        if (algorithm == JwsAlgorithm.Unsupported) return "unsupported algorithm";
        if (algorithm != expected) return "algorithm mismatch";

        if (signature.Length > Base64Url.GetEncodedLength(MaxSignatureBytes)) return BadSignature;
        Span<byte> signatureBytes = stackalloc byte[MaxSignatureBytes];
        if (!TryDecode(signature, signatureBytes, out int signatureLength)
            || !SignatureMatches(token[..secondDot], signatureBytes[..signatureLength], options.Secret, rsa))
            return BadSignature;

        // Decoded only once the signature holds, so a forged token never costs a payload copy.
        var json = new byte[DecodedLength(payload.Length)];
        if (!TryDecode(payload, json, out _)) return Malformed;
        var claimsError = CheckClaims(json, options, now);
        if (claimsError is null) payloadJson = json;
        return claimsError;
    }

    private static bool SignatureMatches(ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature, byte[]? secret, RSA? rsa)
    {
        if (rsa is null)
        {
            Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
            HMACSHA256.HashData(secret, signingInput, mac);
            return signature.Length == mac.Length && CryptographicOperations.FixedTimeEquals(mac, signature);
        }
        if (signature.Length != rsa.KeySize / 8) return false;
        try
        {
            // .NET does not promise that one RSA instance is safe across threads (a concurrent test failed
            // once in about ten runs), so verifications with one cached key take turns.
            lock (rsa)
                return rsa.VerifyData(signingInput, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return false; // e.g. a signature value not below the modulus
        }
    }

    private static JwsAlgorithm ReadAlgorithm(ReadOnlySpan<byte> header)
    {
        int length = DecodedLength(header.Length);
        byte[]? rented = null;
        Span<byte> json = length <= StackHeaderBytes ? stackalloc byte[StackHeaderBytes] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            return TryDecode(header, json, out int written) ? ReadAlgorithmFromJson(json[..written]) : JwsAlgorithm.Missing;
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static JwsAlgorithm ReadAlgorithmFromJson(ReadOnlySpan<byte> json)
    {
        var algorithm = JwsAlgorithm.Missing;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return JwsAlgorithm.Missing;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("alg"u8))
                {
                    // A second "alg" may be what another parser reads; refuse rather than guess.
                    if (algorithm != JwsAlgorithm.Missing || !reader.Read() || reader.TokenType != JsonTokenType.String)
                        return JwsAlgorithm.Missing;
                    algorithm = reader.ValueTextEquals("HS256"u8) ? JwsAlgorithm.HS256
                        : reader.ValueTextEquals("RS256"u8) ? JwsAlgorithm.RS256
                        : JwsAlgorithm.Unsupported;
                }
                else if (reader.ValueTextEquals("crit"u8))
                {
                    return JwsAlgorithm.Missing; // RFC 7515: extensions we do not understand must be refused
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return reader.TokenType == JsonTokenType.EndObject && !reader.Read() ? algorithm : JwsAlgorithm.Missing;
        }
        catch (JsonException)
        {
            return JwsAlgorithm.Missing;
        }
    }

    private static string? CheckClaims(ReadOnlySpan<byte> json, JwtOptions options, double now)
    {
        double exp = double.PositiveInfinity, nbf = double.NegativeInfinity;
        bool issuerMatches = options.Issuer is null, audienceMatches = options.Audience is null;
        var seen = Claim.None;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return Malformed;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var claim = reader.ValueTextEquals("exp"u8) ? Claim.Exp
                    : reader.ValueTextEquals("nbf"u8) ? Claim.Nbf
                    : reader.ValueTextEquals("iss"u8) ? Claim.Iss
                    : reader.ValueTextEquals("aud"u8) ? Claim.Aud
                    : Claim.None;
                // Duplicates would let the script's JSON decoder see other claims than the ones checked here.
                if ((seen & claim) != 0) return Malformed;
                seen |= claim;
                reader.Read();
                if (claim == Claim.Exp)
                {
                    if (!TryReadNumber(ref reader, out exp)) return Malformed;
                }
                else if (claim == Claim.Nbf)
                {
                    if (!TryReadNumber(ref reader, out nbf)) return Malformed;
                }
                else if (claim == Claim.Iss && options.Issuer is not null)
                {
                    issuerMatches = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals(options.Issuer);
                }
                else if (claim == Claim.Aud && options.Audience is not null)
                {
                    audienceMatches = AudienceMatches(ref reader, options.Audience);
                }
                reader.Skip();
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read()) return Malformed;
        }
        catch (JsonException)
        {
            return Malformed;
        }

        // Written so that NaN in the clock or the leeway fails closed.
        double leeway = options.LeewaySeconds;
        if (!(exp > now - leeway)) return "token expired";
        if (!(nbf <= now + leeway)) return "token not yet valid";
        if (!issuerMatches) return "issuer mismatch";
        if (!audienceMatches) return "audience mismatch";
        return null;
    }

    private static bool TryReadNumber(ref Utf8JsonReader reader, out double value)
    {
        value = 0;
        return reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out value) && double.IsFinite(value);
    }

    // Leaves the reader on the value's last token.
    private static bool AudienceMatches(ref Utf8JsonReader reader, string audience)
    {
        if (reader.TokenType == JsonTokenType.String) return reader.ValueTextEquals(audience);
        if (reader.TokenType != JsonTokenType.StartArray) return false;
        bool matches = false;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType == JsonTokenType.String) matches |= reader.ValueTextEquals(audience);
            else reader.Skip();
        }
        return matches;
    }

    /// <summary>
    /// Only the URL-safe alphabet, no padding, and zero unused bits in a final partial group: otherwise several
    /// spellings of one signature would all verify, and a replay cache keyed by token text could be sidestepped.
    /// </summary>
    private static bool IsCanonicalBase64Url(ReadOnlySpan<byte> text)
    {
        if (text.Length % 4 == 1 || text.IndexOfAnyExcept(Base64UrlAlphabet) >= 0) return false;
        return (text.Length % 4) switch
        {
            2 => (Sextet(text[^1]) & 0xF) == 0,
            3 => (Sextet(text[^1]) & 0x3) == 0,
            _ => true,
        };
    }

    // Only for bytes already checked against the alphabet.
    private static int Sextet(byte c) => c switch
    {
        >= (byte)'A' and <= (byte)'Z' => c - 'A',
        >= (byte)'a' and <= (byte)'z' => c - 'a' + 26,
        >= (byte)'0' and <= (byte)'9' => c - '0' + 52,
        (byte)'-' => 62,
        _ => 63,
    };

    // The status form: the Try form throws FormatException on bad input, and a hostile token must never throw.
    private static bool TryDecode(ReadOnlySpan<byte> text, Span<byte> into, out int written) =>
        Base64Url.DecodeFromUtf8(text, into, out _, out written) == OperationStatus.Done;

    private static int DecodedLength(int encodedLength) =>
        encodedLength / 4 * 3 + (encodedLength % 4 == 0 ? 0 : encodedLength % 4 - 1);

    private static RSA? RsaKey(string? pem)
    {
        if (pem is null) return null;
        if (RsaKeys.TryGetValue(pem, out var cached)) return cached;
        var imported = Import(pem);
        // Evicted keys are not disposed: another thread may be verifying with one; their finalizers free them.
        if (RsaKeys.Count >= RsaKeyCacheLimit) RsaKeys.Clear();
        return RsaKeys.GetOrAdd(pem, imported);
    }

    private static RSA? Import(string pem)
    {
        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(pem);
            if (rsa.KeySize >= MinRsaKeyBits) return rsa;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
        }
        rsa.Dispose();
        return null;
    }
}
