using System.Security.Cryptography;
using System.Text;

namespace Keystone.Admin;

/// <summary>Checks <c>Authorization: Bearer &lt;token&gt;</c> in constant time.</summary>
public sealed class AdminAuth
{
    private readonly byte[]? _tokenHash;

    /// <param name="token">Null means open: config only allows that on a loopback listener.</param>
    public AdminAuth(string? token) => _tokenHash = token is null ? null : Hash(token);

    public bool Allows(HttpRequest request)
    {
        if (_tokenHash is null) return true;
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        // Hashing first gives equal lengths, so the comparison's time says nothing about the token.
        return CryptographicOperations.FixedTimeEquals(Hash(header[scheme.Length..].Trim()), _tokenHash);
    }

    private static byte[] Hash(string value) => SHA256.HashData(Encoding.UTF8.GetBytes(value));
}
