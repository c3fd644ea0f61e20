using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Keystone.Configuration;

/// <summary>Reads the <c>lua:</c> section and <c>hooks:</c> lists.</summary>
internal static class LuaReader
{
    private static readonly string[] LuaKeys = ["scripts_dir", "budget", "memory", "states", "env", "max_body", "shared_memory", "global_hooks"];
    private static readonly string[] HookKeys = ["script", "on_error"];

    public static LuaConfig Read(YamlNodeReader reader, YamlMappingNode root)
    {
        if (YamlNodeReader.Get(root, "lua") is not { } node || reader.IsNull(node)) return LuaConfig.Default;
        var map = reader.Mapping(node, "lua");
        if (map is null) return LuaConfig.Default;
        reader.RejectUnknownKeys(map, "lua", LuaKeys);
        var d = LuaConfig.Default;

        var dir = d.ScriptsDir;
        if (YamlNodeReader.Get(map, "scripts_dir") is { } s && reader.Text(s, "scripts_dir") is { Length: > 0 } text) dir = text;
        var budget = reader.DurationOr(map, "budget", d.Budget);
        if (budget <= TimeSpan.Zero || budget > TimeSpan.FromSeconds(10))
        {
            reader.Error(YamlNodeReader.Get(map, "budget")!, "lua budget must be more than 0 and at most 10s");
            budget = d.Budget;
        }
        var env = new List<string>();
        if (YamlNodeReader.Get(map, "env") is { } e)
            foreach (var (name, _) in reader.StringList(e, "lua env")) env.Add(name);

        return new LuaConfig(
            dir,
            budget,
            SizeOr(reader, map, "memory", d.MemoryBytes, min: 1L << 20),
            reader.IntOr(map, "states", d.States, 1, 1024),
            env,
            SizeOr(reader, map, "max_body", d.MaxBody, min: 1024),
            SizeOr(reader, map, "shared_memory", d.SharedMemoryBytes, min: 64 * 1024),
            YamlNodeReader.Get(map, "global_hooks") is { } g ? ReadHooks(reader, g, "lua global_hooks") : []);
    }

    /// <summary>A <c>hooks:</c> list: script names, or <c>{script, on_error: fail|continue}</c> maps.</summary>
    public static List<HookConfig> ReadHooks(YamlNodeReader reader, YamlNode node, string what)
    {
        var hooks = new List<HookConfig>();
        if (reader.IsNull(node)) return hooks;
        if (node is YamlScalarNode)
        {
            if (reader.Text(node, what) is { } single) hooks.Add(new HookConfig(single, false, reader.Locate(node)));
            return hooks;
        }
        var seq = reader.Sequence(node, what);
        if (seq is null) return hooks;
        foreach (var item in seq.Children)
        {
            if (item is YamlScalarNode)
            {
                if (reader.Text(item, what) is { } name) hooks.Add(new HookConfig(name, false, reader.Locate(item)));
                continue;
            }
            var map = reader.Mapping(item, $"an entry of {what}");
            if (map is null) continue;
            reader.RejectUnknownKeys(map, $"an entry of {what}", HookKeys);
            if (YamlNodeReader.Get(map, "script") is not { } s || reader.Text(s, "script") is not { } script)
            {
                reader.Error(map, $"an entry of {what} needs 'script'");
                continue;
            }
            bool continueOnError = false;
            if (YamlNodeReader.Get(map, "on_error") is { } o && reader.Text(o, "on_error") is { } mode)
            {
                if (mode is "continue") continueOnError = true;
                else if (mode is not "fail") reader.Error(o, $"on_error must be fail or continue, not '{mode}'");
            }
            hooks.Add(new HookConfig(script, continueOnError, reader.Locate(map)));
        }
        return hooks;
    }

    private static long SizeOr(YamlNodeReader reader, YamlMappingNode map, string key, long fallback, long min)
    {
        if (YamlNodeReader.Get(map, key) is not { } node || reader.Text(node, key) is not { } text) return fallback;
        if (TryParseSize(text, out var bytes) && bytes >= min && bytes <= 1L << 40) return bytes;
        reader.Error(node, $"lua {key} must be a size such as 512KB, 10MB or 1GB (at least {min} bytes), not '{text}'");
        return fallback;
    }

    /// <summary>Sizes in bytes with an optional unit: B, KB, MB, GB (powers of 1024, like nginx's k and m).</summary>
    public static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        var t = text.Trim();
        int split = 0;
        while (split < t.Length && (char.IsAsciiDigit(t[split]) || t[split] == '.')) split++;
        if (split == 0 || !double.TryParse(t.AsSpan(0, split), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)) return false;
        long unit = t[split..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1L << 10,
            "M" or "MB" or "MIB" => 1L << 20,
            "G" or "GB" or "GIB" => 1L << 30,
            _ => 0,
        };
        if (unit == 0) return false;
        bytes = (long)(number * unit);
        return true;
    }
}
