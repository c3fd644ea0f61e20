using Keystone.Configuration;

namespace Keystone.Tests.Configuration;

/// <summary>Loads YAML text the way the gateway does, with a fixed environment instead of the real one.</summary>
internal static class TestConfig
{
    public const string FileName = "keystone.yaml";

    public static ConfigLoadResult Load(string yaml, params (string Name, string Value)[] env)
    {
        var vars = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in env) vars[name] = value;
        return ConfigLoader.Load(yaml, FileName, name => vars.TryGetValue(name, out var value) ? value : null);
    }

    public static GatewayConfig Valid(string yaml, params (string Name, string Value)[] env)
    {
        var result = Load(yaml, env);
        Assert.True(result.Ok, "expected no errors, got:\n" + string.Join("\n", result.Errors));
        return result.Config!;
    }

    /// <summary>Every error as the user sees it: <c>file:line:col: message</c>.</summary>
    public static List<string> Errors(string yaml, params (string Name, string Value)[] env)
    {
        var result = Load(yaml, env);
        Assert.Null(result.Config);
        Assert.False(result.Ok);
        return result.Errors.Select(e => e.ToString()).ToList();
    }

    /// <summary>The one error a file with one mistake must produce.</summary>
    public static string SingleError(string yaml, params (string Name, string Value)[] env)
    {
        var errors = Errors(yaml, env);
        Assert.True(errors.Count == 1, $"expected exactly one error, got {errors.Count}:\n" + string.Join("\n", errors));
        return errors[0];
    }

    /// <summary>The <c>file:line:col: </c> prefix an error at that place starts with.</summary>
    public static string At(int line, int column) => $"{FileName}:{line}:{column}: ";
}
