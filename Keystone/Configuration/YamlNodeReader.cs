using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Keystone.Configuration;

/// <summary>
/// Typed access to YAML nodes that records every problem with its location instead of
/// throwing, so one run reports all of a file's mistakes.
/// </summary>
internal sealed class YamlNodeReader
{
    private readonly string _file;
    private readonly Func<string, string?> _env;

    public YamlNodeReader(string file, Func<string, string?> env)
    {
        _file = file;
        _env = env;
    }

    public List<ConfigError> Errors { get; } = new();

    public SourceLocation Locate(YamlNode node) => new(_file, (int)node.Start.Line, (int)node.Start.Column);

    public void Error(YamlNode node, string message) => Errors.Add(new ConfigError(Locate(node), message));

    public YamlMappingNode? Mapping(YamlNode node, string what)
    {
        if (node is YamlMappingNode map) return map;
        Error(node, $"{what} must be a mapping (key: value)");
        return null;
    }

    public YamlSequenceNode? Sequence(YamlNode node, string what)
    {
        if (node is YamlSequenceNode seq) return seq;
        Error(node, $"{what} must be a list");
        return null;
    }

    /// <summary>Reports keys not in <paramref name="allowed"/>, suggesting the closest known key.</summary>
    public void RejectUnknownKeys(YamlMappingNode map, string context, IReadOnlyList<string> allowed)
    {
        foreach (var entry in map.Children)
        {
            var key = (entry.Key as YamlScalarNode)?.Value;
            if (key is null)
            {
                Error(entry.Key, $"{context}: keys must be plain names");
                continue;
            }
            if (Contains(allowed, key)) continue;
            var suggestion = KeySuggestions.Closest(key, allowed);
            Error(entry.Key, suggestion is null
                ? $"unknown key '{key}' in {context} (expected one of: {string.Join(", ", allowed)})"
                : $"unknown key '{key}' in {context} — did you mean '{suggestion}'?");
        }
    }

    public static YamlNode? Get(YamlMappingNode map, string key)
    {
        foreach (var entry in map.Children)
            if (entry.Key is YamlScalarNode s && s.Value == key) return entry.Value;
        return null;
    }

    /// <summary>A scalar's text with environment variables expanded; null (and an error) for lists or maps.</summary>
    public string? Text(YamlNode node, string what)
    {
        if (node is not YamlScalarNode scalar)
        {
            Error(node, $"{what} must be a single value, not a list or mapping");
            return null;
        }
        var raw = scalar.Value ?? "";
        var expanded = EnvSubstitution.Expand(raw, _env, out var error);
        if (error is not null)
        {
            Error(node, $"{what}: {error}");
            return null;
        }
        return expanded;
    }

    public bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } s && (s.Value is null or "" or "~" or "null");

    public bool? Bool(YamlNode node, string what)
    {
        var text = Text(node, what);
        if (text is null) return null;
        switch (text.ToLowerInvariant())
        {
            case "true" or "yes" or "on": return true;
            case "false" or "no" or "off": return false;
            default:
                Error(node, $"{what} must be true or false, not '{text}'");
                return null;
        }
    }

    public int? Int(YamlNode node, string what, int min, int max)
    {
        var text = Text(node, what);
        if (text is null) return null;
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
            return value;
        Error(node, $"{what} must be a whole number from {min} to {max}, not '{text}'");
        return null;
    }

    public TimeSpan? Duration(YamlNode node, string what)
    {
        var text = Text(node, what);
        if (text is null) return null;
        if (Durations.TryParse(text, out var value)) return value;
        Error(node, $"{what} must be a duration such as 500ms, 30s, 2m or 1h, not '{text}'");
        return null;
    }

    /// <summary><paramref name="key"/> of <paramref name="map"/> as a whole number, or <paramref name="fallback"/> when absent or wrong.</summary>
    public int IntOr(YamlMappingNode map, string key, int fallback, int min, int max) =>
        Get(map, key) is { } node ? Int(node, key, min, max) ?? fallback : fallback;

    /// <summary><paramref name="key"/> of <paramref name="map"/> as a duration, or <paramref name="fallback"/> when absent or wrong.</summary>
    public TimeSpan DurationOr(YamlMappingNode map, string key, TimeSpan fallback) =>
        Get(map, key) is { } node ? Duration(node, key) ?? fallback : fallback;

    /// <summary>A list of strings; a single scalar is accepted as a one-item list.</summary>
    public List<(string Value, YamlNode Node)> StringList(YamlNode node, string what)
    {
        var result = new List<(string, YamlNode)>();
        if (node is YamlScalarNode)
        {
            var one = Text(node, what);
            if (one is not null) result.Add((one, node));
            return result;
        }
        var seq = Sequence(node, what);
        if (seq is null) return result;
        foreach (var item in seq.Children)
        {
            var text = Text(item, what);
            if (text is not null) result.Add((text, item));
        }
        return result;
    }

    public List<(string Key, string Value, YamlNode Node)> StringMap(YamlNode node, string what)
    {
        var result = new List<(string, string, YamlNode)>();
        var map = Mapping(node, what);
        if (map is null) return result;
        foreach (var entry in map.Children)
        {
            var key = Text(entry.Key, what);
            var value = Text(entry.Value, $"{what} '{key}'");
            if (key is not null && value is not null) result.Add((key, value, entry.Key));
        }
        return result;
    }

    private static bool Contains(IReadOnlyList<string> list, string key)
    {
        for (int i = 0; i < list.Count; i++)
            if (list[i] == key) return true;
        return false;
    }
}
