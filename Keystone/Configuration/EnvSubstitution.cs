using System.Text;

namespace Keystone.Configuration;

/// <summary>
/// Expands <c>${NAME}</c> and <c>${NAME:-default}</c> in config values; <c>$${</c> is a literal <c>${</c>.
/// Values are expanded once, at load: nothing is looked up per request.
/// </summary>
public static class EnvSubstitution
{
    public static string Expand(string text, Func<string, string?> lookup, out string? error)
    {
        error = null;
        if (!text.Contains('$', StringComparison.Ordinal)) return text;

        var sb = new StringBuilder(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            if (text[i] == '$' && i + 2 < text.Length && text[i + 1] == '$' && text[i + 2] == '{')
            {
                sb.Append("${");
                i += 3;
                continue;
            }
            if (text[i] != '$' || i + 1 >= text.Length || text[i + 1] != '{')
            {
                sb.Append(text[i++]);
                continue;
            }
            int close = text.IndexOf('}', i + 2);
            if (close < 0)
            {
                error = $"unterminated '${{' in '{text}'";
                return text;
            }
            var body = text.AsSpan(i + 2, close - i - 2);
            int sep = body.IndexOf(":-", StringComparison.Ordinal);
            var name = (sep < 0 ? body : body[..sep]).ToString();
            if (!IsValidName(name))
            {
                error = $"invalid environment variable name '{name}'";
                return text;
            }
            var value = lookup(name);
            if (string.IsNullOrEmpty(value))
            {
                if (sep < 0 && value is null)
                {
                    error = $"environment variable '{name}' is not set (use ${{{name}:-default}} to give a default)";
                    return text;
                }
                value = sep < 0 ? value : body[(sep + 2)..].ToString();
            }
            sb.Append(value);
            i = close + 1;
        }
        return sb.ToString();
    }

    private static bool IsValidName(string name)
    {
        if (name.Length == 0 || char.IsAsciiDigit(name[0])) return false;
        foreach (var c in name)
            if (!char.IsAsciiLetterOrDigit(c) && c != '_') return false;
        return true;
    }
}
