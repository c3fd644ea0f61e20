using YamlDotNet.RepresentationModel;

namespace Keystone.Configuration;

/// <summary>Reads the process-wide settings: the admin listener, access log and Keystone's own logging.</summary>
internal static class SettingsReader
{
    private static readonly string[] AdminKeys = ["listen", "token", "metrics_on_traffic"];
    private static readonly string[] HealthKeys = ["path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "expect_status"];

    public static GatewayConfig Apply(YamlNodeReader reader, YamlMappingNode root, GatewayConfig config)
    {
        var result = config with { Admin = ReadAdmin(reader, root) };
        if (YamlNodeReader.Get(root, "access_log") is { } accessLog && reader.Text(accessLog, "access_log") is { } sink)
        {
            if (sink.Length == 0) reader.Error(accessLog, "access_log must be off, stdout or a file path");
            result = result with { AccessLog = sink is "false" or "no" ? "off" : sink };
        }
        if (YamlNodeReader.Get(root, "metrics") is { } metrics && reader.Bool(metrics, "metrics") is { } on)
            result = result with { Metrics = on };
        if (YamlNodeReader.Get(root, "log_format") is { } format && reader.Text(format, "log_format") is { } f)
        {
            if (f is "text" or "json") result = result with { LogFormat = f == "json" ? LogFormat.Json : LogFormat.Text };
            else reader.Error(format, $"log_format must be text or json, not '{f}'");
        }
        if (YamlNodeReader.Get(root, "log_level") is { } level && reader.Text(level, "log_level") is { } l)
        {
            var name = l.ToLowerInvariant() switch { "info" => "information", "warn" => "warning", var other => other };
            if (Enum.TryParse<LogLevel>(name, ignoreCase: true, out var parsed) && !int.TryParse(name, out _) && parsed != LogLevel.None)
                result = result with { LogLevel = parsed };
            else reader.Error(level, $"log_level must be trace, debug, information, warning, error or critical, not '{l}'");
        }
        return result;
    }

    private static AdminConfig ReadAdmin(YamlNodeReader reader, YamlMappingNode root)
    {
        if (YamlNodeReader.Get(root, "admin") is not { } node) return AdminConfig.Default;
        if (node is YamlScalarNode && reader.Text(node, "admin") is "off" or "false" or "no") return new AdminConfig(null, null, false);
        var map = reader.Mapping(node, "admin");
        if (map is null) return AdminConfig.Default;
        reader.RejectUnknownKeys(map, "admin", AdminKeys);

        string? listen = AdminConfig.DefaultListen;
        if (YamlNodeReader.Get(map, "listen") is { } l && reader.Text(l, "admin listen") is { } text)
        {
            if (text is "off" or "false" or "no") listen = null;
            else if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.AbsolutePath != "/")
                reader.Error(l, $"admin listen '{text}' must be an http URL such as {AdminConfig.DefaultListen}, or off");
            else listen = text;
        }
        var token = YamlNodeReader.Get(map, "token") is { } t ? reader.Text(t, "admin token") : null;
        if (token is { Length: > 0 and < 16 })
            reader.Error(YamlNodeReader.Get(map, "token")!, "admin token must be at least 16 characters");
        if (token is { Length: 0 }) token = null;
        if (listen is not null && token is null && !IsLoopback(listen))
            reader.Error(YamlNodeReader.Get(map, "listen") ?? map,
                $"admin listen '{listen}' is not a loopback address, so admin.token is required (set it, e.g. token: ${{KEYSTONE_ADMIN_TOKEN}})");
        var metricsOnTraffic = YamlNodeReader.Get(map, "metrics_on_traffic") is { } m && reader.Bool(m, "metrics_on_traffic") == true;
        return new AdminConfig(listen, token, metricsOnTraffic);
    }

    private static bool IsLoopback(string url)
    {
        var host = new Uri(url).Host;
        return host is "localhost" || (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip));
    }

    public static HealthCheckConfig? ReadHealth(YamlNodeReader reader, YamlMappingNode upstream, string name)
    {
        if (YamlNodeReader.Get(upstream, "health") is not { } node || reader.IsNull(node)) return null;
        var map = reader.Mapping(node, $"health of upstream '{name}'");
        if (map is null) return null;
        reader.RejectUnknownKeys(map, $"health of upstream '{name}'", HealthKeys);

        string? path = null;
        if (YamlNodeReader.Get(map, "path") is { } p && reader.Text(p, "health path") is { } text)
        {
            if (!text.StartsWith('/')) reader.Error(p, $"health path '{text}' must start with '/'");
            path = text;
        }
        var interval = reader.DurationOr(map, "interval", TimeSpan.FromSeconds(5));
        var timeout = reader.DurationOr(map, "timeout", TimeSpan.FromSeconds(2));
        if (interval < TimeSpan.FromMilliseconds(100)) reader.Error(map, "health interval must be at least 100ms");
        if (timeout <= TimeSpan.Zero || timeout > interval) reader.Error(map, "health timeout must be above zero and no longer than the interval");
        int healthy = reader.IntOr(map, "healthy_threshold", 2, 1, 100);
        int unhealthy = reader.IntOr(map, "unhealthy_threshold", 2, 1, 100);
        int expect = reader.IntOr(map, "expect_status", 0, 100, 599);
        if (expect != 0 && path is null) reader.Error(map, "expect_status needs a health 'path' (without one the check is a TCP connect)");
        return new HealthCheckConfig(path, interval, timeout, healthy, unhealthy, expect);
    }
}
