using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Keystone.Configuration;

/// <summary>The outcome of loading a file: a config, or every error found in it.</summary>
public sealed record ConfigLoadResult(GatewayConfig? Config, IReadOnlyList<ConfigError> Errors)
{
    public bool Ok => Config is not null && Errors.Count == 0;
}

/// <summary>Reads a YAML file into a validated <see cref="GatewayConfig"/>, collecting every error with its location.</summary>
public static class ConfigLoader
{
    public const string DefaultListen = "http://0.0.0.0:8080";
    private static readonly string[] TopLevelKeys =
        ["listen", "shutdown_timeout", "upstreams", "routes", "tenants", "admin", "access_log", "metrics", "log_format", "log_level", "lua"];
    private static readonly string[] UpstreamKeys = ["targets", "preserve_host", "timeout", "health", "balancer", "hash_on", "eject", "circuit_breaker", "retries", "retry_on", "retry_methods", "retry_budget", "retry_backoff", "panic", "connect_timeout", "idle_timeout"];
    private static readonly string[] TargetKeys = ["url", "weight"];

    public static ConfigLoadResult LoadFile(string path, Func<string, string?>? env = null)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Failed(new ConfigError(new SourceLocation(path, 1, 1), $"cannot read config file: {e.Message}"));
        }
        return Load(text, path, env);
    }

    public static ConfigLoadResult Load(string yaml, string file, Func<string, string?>? env = null)
    {
        var reader = new YamlNodeReader(file, env ?? Environment.GetEnvironmentVariable);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            var message = (e.InnerException?.Message ?? e.Message).Trim();
            return Failed(new ConfigError(new SourceLocation(file, (int)e.Start.Line, (int)e.Start.Column), $"invalid YAML: {message}"));
        }

        if (stream.Documents.Count == 0)
            return Failed(new ConfigError(new SourceLocation(file, 1, 1), "config file is empty"));
        var root = reader.Mapping(stream.Documents[0].RootNode, "the config file");
        if (root is null) return new ConfigLoadResult(null, reader.Errors);
        reader.RejectUnknownKeys(root, "the config file", TopLevelKeys);

        var listen = ReadListen(reader, root);
        var shutdown = reader.DurationOr(root, "shutdown_timeout", TimeSpan.FromSeconds(30));
        var declaredUpstreams = new HashSet<string>(StringComparer.Ordinal);
        var upstreams = ReadUpstreams(reader, root, declaredUpstreams);
        var routes = new RouteReader(reader).ReadAll(root);
        CrossCheck(reader, declaredUpstreams, routes);

        var config = SettingsReader.Apply(reader, root, new GatewayConfig(file, listen, shutdown, upstreams, routes)) with { Lua = LuaReader.Read(reader, root) };
        // Checks run section by section; the user reads the file top to bottom.
        var errors = reader.Errors.OrderBy(e => e.Location.Line).ThenBy(e => e.Location.Column).ToList();
        return new ConfigLoadResult(errors.Count == 0 ? config : null, errors);
    }

    private static ConfigLoadResult Failed(ConfigError error) => new(null, [error]);

    private static List<string> ReadListen(YamlNodeReader reader, YamlMappingNode root)
    {
        var node = YamlNodeReader.Get(root, "listen");
        if (node is null) return [DefaultListen];
        var result = new List<string>();
        int errorsBefore = reader.Errors.Count;
        foreach (var (value, item) in reader.StringList(node, "listen"))
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.AbsolutePath != "/" || uri.Query.Length > 0)
            {
                reader.Error(item, uri?.Scheme == "https"
                    ? $"listen '{value}': https listeners are not supported yet; terminate TLS in front of Keystone"
                    : $"listen '{value}' must be an http URL such as http://0.0.0.0:8080");
                continue;
            }
            result.Add(value);
        }
        if (result.Count == 0 && reader.Errors.Count == errorsBefore) reader.Error(node, "listen must name at least one address");
        return result;
    }

    /// <summary>Reads upstreams; <paramref name="declared"/> gets every name written, valid or not, so a broken
    /// upstream is reported once rather than again by each route that uses it.</summary>
    private static List<UpstreamConfig> ReadUpstreams(YamlNodeReader reader, YamlMappingNode root, HashSet<string> declared)
    {
        var result = new List<UpstreamConfig>();
        if (YamlNodeReader.Get(root, "upstreams") is not { } node || reader.IsNull(node)) return result;
        var map = reader.Mapping(node, "upstreams");
        if (map is null) return result;

        foreach (var entry in map.Children)
        {
            var name = reader.Text(entry.Key, "upstream name");
            if (name is null) continue;
            declared.Add(name);
            if (!Names.IsValid(name))
            {
                reader.Error(entry.Key, $"upstream name '{name}' may only use letters, digits, '-', '_' and '.'");
                continue;
            }
            var body = reader.Mapping(entry.Value, $"upstream '{name}'");
            if (body is null) continue;
            reader.RejectUnknownKeys(body, $"upstream '{name}'", UpstreamKeys);

            var targets = ReadTargets(reader, body, name);
            var preserveHost = YamlNodeReader.Get(body, "preserve_host") is { } ph ? reader.Bool(ph, "preserve_host") ?? true : true;
            var timeout = TimeSpan.FromSeconds(30);
            if (YamlNodeReader.Get(body, "timeout") is { } t && reader.Duration(t, "timeout") is { } parsed)
            {
                if (parsed == TimeSpan.Zero) reader.Error(t, "timeout must be greater than zero");
                timeout = parsed;
            }
            var health = SettingsReader.ReadHealth(reader, body, name);
            var (balancer, hashOn) = ReadBalancer(reader, body, name);
            result.Add(new UpstreamConfig(name, targets, preserveHost, timeout, reader.Locate(entry.Key))
            {
                Health = health,
                Balancer = balancer,
                HashOn = hashOn,
                Eject = ResilienceReader.ReadEject(reader, body, name),
                ConnectTimeout = ReadConnectTimeout(reader, body),
                Panic = YamlNodeReader.Get(body, "panic") is { } p && reader.Bool(p, "panic") == true,
                IdleTimeout = ReadIdleTimeout(reader, body, timeout),
                Retry = RetryReader.Read(reader, body, name),
                CircuitBreaker = ResilienceReader.ReadCircuitBreaker(reader, body, name),
            });
        }
        return result;
    }

    private static TimeSpan ReadIdleTimeout(YamlNodeReader reader, YamlMappingNode upstream, TimeSpan timeout)
    {
        if (YamlNodeReader.Get(upstream, "idle_timeout") is not { } node || reader.Duration(node, "idle_timeout") is not { } value)
            return timeout;
        if (value == TimeSpan.Zero) reader.Error(node, "idle_timeout must be greater than zero");
        return value;
    }

    private static TimeSpan ReadConnectTimeout(YamlNodeReader reader, YamlMappingNode upstream)
    {
        if (YamlNodeReader.Get(upstream, "connect_timeout") is not { } node || reader.Duration(node, "connect_timeout") is not { } value)
            return Proxy.UpstreamConnector.DefaultConnectTimeout;
        if (value < TimeSpan.FromMilliseconds(10)) reader.Error(node, "connect_timeout must be at least 10ms");
        return value;
    }

    private static (BalancerKind, string?) ReadBalancer(YamlNodeReader reader, YamlMappingNode upstream, string name)
    {
        var kind = BalancerKind.RoundRobin;
        if (YamlNodeReader.Get(upstream, "balancer") is { } node && reader.Text(node, "balancer") is { } text)
        {
            switch (text)
            {
                case "round_robin": kind = BalancerKind.RoundRobin; break;
                case "least_requests": kind = BalancerKind.LeastRequests; break;
                case "random": kind = BalancerKind.Random; break;
                case "hash": kind = BalancerKind.Hash; break;
                default:
                    reader.Error(node, $"upstream '{name}': balancer must be round_robin, least_requests, random or hash, not '{text}'");
                    break;
            }
        }
        string? hashOn = null;
        var hashNode = YamlNodeReader.Get(upstream, "hash_on");
        if (hashNode is not null && reader.Text(hashNode, "hash_on") is { } on)
        {
            if (kind != BalancerKind.Hash) reader.Error(hashNode, $"upstream '{name}': hash_on only applies with balancer: hash");
            else if (!Proxy.HashKey.TryParse(on, out _, out var error)) reader.Error(hashNode, $"upstream '{name}': {error}");
            else hashOn = on;
        }
        else if (kind == BalancerKind.Hash)
        {
            reader.Error(YamlNodeReader.Get(upstream, "balancer")!, $"upstream '{name}': balancer: hash needs hash_on (client_ip, header:<name> or cookie:<name>)");
        }
        return (kind, hashOn);
    }

    private static List<TargetConfig> ReadTargets(YamlNodeReader reader, YamlMappingNode upstream, string name)
    {
        var result = new List<TargetConfig>();
        var node = YamlNodeReader.Get(upstream, "targets");
        if (node is null || reader.IsNull(node))
        {
            reader.Error(upstream, $"upstream '{name}' has no targets");
            return result;
        }
        var seq = reader.Sequence(node, $"targets of upstream '{name}'");
        if (seq is null) return result;
        if (seq.Children.Count == 0) reader.Error(seq, $"upstream '{name}' has no targets");

        foreach (var item in seq.Children)
        {
            YamlNode urlNode = item;
            int weight = 1;
            if (item is YamlMappingNode map)
            {
                reader.RejectUnknownKeys(map, $"a target of upstream '{name}'", TargetKeys);
                if (YamlNodeReader.Get(map, "url") is not { } u)
                {
                    reader.Error(map, $"a target of upstream '{name}' needs a 'url'");
                    continue;
                }
                urlNode = u;
                weight = reader.IntOr(map, "weight", 1, 1, 1000);
            }
            var text = reader.Text(urlNode, "target url");
            if (text is null) continue;
            if (!TryParseTarget(text, out var uri))
            {
                reader.Error(urlNode, $"target '{text}' of upstream '{name}' must be an http:// or https:// URL with a host, and no query or fragment");
                continue;
            }
            result.Add(new TargetConfig(uri, weight, reader.Locate(urlNode)));
        }
        return result;
    }

    private static bool TryParseTarget(string text, out Uri uri)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out uri!)) return false;
        return (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            && uri.Host.Length > 0 && uri.Query.Length == 0 && uri.Fragment.Length == 0 && uri.UserInfo.Length == 0;
    }

    /// <summary>Checks that need the whole file: references and unique names.</summary>
    /// <remarks>Duplicate upstream names need no check here: YAML itself rejects duplicate keys.</remarks>
    private static void CrossCheck(YamlNodeReader reader, HashSet<string> upstreamNames, List<RouteConfig> routes)
    {
        var routeNames = new Dictionary<string, RouteConfig>(StringComparer.Ordinal);
        foreach (var r in routes)
        {
            if (routeNames.TryGetValue(r.Name, out var first))
                reader.Errors.Add(new ConfigError(r.Location, $"duplicate route name '{r.Name}' (first defined at {first.Location})"));
            else
                routeNames[r.Name] = r;

            if (r.Upstream is not null && !upstreamNames.Contains(r.Upstream))
            {
                var hint = KeySuggestions.Closest(r.Upstream, [.. upstreamNames]);
                reader.Errors.Add(new ConfigError(r.Location, $"route '{r.Name}' uses unknown upstream '{r.Upstream}'"
                    + (hint is null ? "" : $" — did you mean '{hint}'?")));
            }
        }
    }
}
