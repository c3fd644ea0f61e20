using Keystone.Routing;
using YamlDotNet.RepresentationModel;

namespace Keystone.Configuration;

/// <summary>Reads <c>routes:</c> and <c>tenants:</c>, flattening tenant hosts and prefixes into each route.</summary>
internal sealed class RouteReader
{
    private static readonly string[] RouteKeys =
        ["name", "host", "path", "methods", "upstream", "respond", "handler", "strip_prefix", "rewrite", "set_headers", "remove_headers",
            "hooks", "buffer_response"];
    private static readonly string[] TenantKeys = ["name", "hosts", "path_prefix", "routes", "hooks"];
    private static readonly string[] RespondKeys = ["status", "headers", "body"];
    private static readonly string[] UpstreamOnlyKeys = ["strip_prefix", "rewrite", "set_headers", "remove_headers"];

    /// <summary>The most parameters one path may capture; the gateway keeps their positions on the stack.</summary>
    public const int MaxParameters = 16;

    private readonly YamlNodeReader _reader;

    public RouteReader(YamlNodeReader reader) => _reader = reader;

    public List<RouteConfig> ReadAll(YamlMappingNode root)
    {
        var routes = new List<RouteConfig>();
        if (YamlNodeReader.Get(root, "routes") is { } node && !_reader.IsNull(node))
            ReadRouteList(node, tenant: null, tenantHosts: [], prefix: "", tenantHooks: [], routes);
        if (YamlNodeReader.Get(root, "tenants") is { } tenants && !_reader.IsNull(tenants))
            ReadTenants(tenants, routes);
        return routes;
    }

    private void ReadTenants(YamlNode node, List<RouteConfig> routes)
    {
        var seq = _reader.Sequence(node, "tenants");
        if (seq is null) return;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in seq.Children)
        {
            var map = _reader.Mapping(item, "a tenant");
            if (map is null) continue;
            _reader.RejectUnknownKeys(map, "a tenant", TenantKeys);
            var name = RequiredName(map, "tenant");
            if (name is null) continue;
            if (!seen.Add(name)) _reader.Error(map, $"duplicate tenant name '{name}'");

            var hosts = YamlNodeReader.Get(map, "hosts") is { } h ? Values(_reader.StringList(h, "hosts")) : [];
            var prefix = "";
            if (YamlNodeReader.Get(map, "path_prefix") is { } p && _reader.Text(p, "path_prefix") is { } text)
            {
                prefix = text.TrimEnd('/');
                if (!text.StartsWith('/') || prefix.Contains('{') || prefix.Contains('*'))
                    _reader.Error(p, $"path_prefix '{text}' must start with '/' and contain no parameters");
            }
            var hooks = YamlNodeReader.Get(map, "hooks") is { } hk ? LuaReader.ReadHooks(_reader, hk, $"hooks of tenant '{name}'") : [];
            if (YamlNodeReader.Get(map, "routes") is { } r)
                ReadRouteList(r, name, hosts, prefix, hooks, routes);
            else
                _reader.Error(map, $"tenant '{name}' has no routes");
        }
    }

    private void ReadRouteList(YamlNode node, string? tenant, List<string> tenantHosts, string prefix, List<HookConfig> tenantHooks, List<RouteConfig> routes)
    {
        var seq = _reader.Sequence(node, "routes");
        if (seq is null) return;
        foreach (var item in seq.Children)
        {
            var map = _reader.Mapping(item, "a route");
            if (map is null) continue;
            var route = ReadRoute(map, tenant, tenantHosts, prefix, tenantHooks);
            if (route is not null) routes.Add(route);
        }
    }

    private RouteConfig? ReadRoute(YamlMappingNode map, string? tenant, List<string> tenantHosts, string prefix, List<HookConfig> tenantHooks)
    {
        _reader.RejectUnknownKeys(map, "a route", RouteKeys);
        var name = RequiredName(map, "route");
        var what = $"route '{name}'";

        var hosts = tenantHosts;
        if (YamlNodeReader.Get(map, "host") is { } hostNode)
        {
            if (tenant is not null) _reader.Error(hostNode, $"{what}: routes of a tenant take the tenant's hosts; remove 'host'");
            else hosts = Values(_reader.StringList(hostNode, "host"));
        }

        string? path = null;
        if (YamlNodeReader.Get(map, "path") is not { } pathNode) _reader.Error(map, $"{what} needs a 'path'");
        else if (_reader.Text(pathNode, "path") is { } p)
        {
            if (!p.StartsWith('/')) _reader.Error(pathNode, $"{what}: path '{p}' must start with '/'");
            else if (PathTemplate.ParameterNames(p).Count > MaxParameters)
                _reader.Error(pathNode, $"{what}: path '{p}' has more than {MaxParameters} parameters");
            path = prefix + p;
        }

        var methods = MethodSet.All;
        if (YamlNodeReader.Get(map, "methods") is { } methodsNode) methods = ReadMethods(methodsNode);

        var upstream = YamlNodeReader.Get(map, "upstream") is { } u ? _reader.Text(u, "upstream") : null;
        var respondNode = YamlNodeReader.Get(map, "respond");
        var respond = respondNode is null ? null : ReadRespond(respondNode, what);
        var handlerNode = YamlNodeReader.Get(map, "handler");
        var handler = handlerNode is null ? null : _reader.Text(handlerNode, "handler");
        int answers = (YamlNodeReader.Get(map, "upstream") is null ? 0 : 1) + (respondNode is null ? 0 : 1) + (handlerNode is null ? 0 : 1);
        if (answers != 1)
            _reader.Error(map, $"{what} needs exactly one of 'upstream', 'respond' or 'handler'");
        var hooks = new List<HookConfig>(tenantHooks);
        if (YamlNodeReader.Get(map, "hooks") is { } hooksNode) hooks.AddRange(LuaReader.ReadHooks(_reader, hooksNode, $"hooks of {what}"));
        var buffer = YamlNodeReader.Get(map, "buffer_response") is { } b && _reader.Bool(b, "buffer_response") == true;

        var stripPrefix = ReadStripPrefix(map, path, prefix, what);
        var rewrite = ReadRewrite(map, path, what);
        if (stripPrefix is not null && rewrite is not null)
            _reader.Error(map, $"{what}: use either 'strip_prefix' or 'rewrite', not both");
        if (respondNode is not null || handlerNode is not null)
            foreach (var upstreamOnly in UpstreamOnlyKeys)
                if (YamlNodeReader.Get(map, upstreamOnly) is { } n)
                    _reader.Error(n, $"{what}: '{upstreamOnly}' only applies to routes with an upstream");

        var setHeaders = new List<KeyValuePair<string, string>>();
        if (YamlNodeReader.Get(map, "set_headers") is { } sh)
            foreach (var (key, value, node) in _reader.StringMap(sh, "set_headers"))
                if (CheckHeader(key, value, node, what)) setHeaders.Add(new(key, value));
        var removeHeaders = new List<string>();
        if (YamlNodeReader.Get(map, "remove_headers") is { } rh)
            foreach (var (header, node) in _reader.StringList(rh, "remove_headers"))
                if (CheckHeader(header, "", node, what)) removeHeaders.Add(header);

        if (name is null || path is null) return null;
        var fullName = tenant is null ? name : $"{tenant}/{name}";
        return new RouteConfig(fullName, tenant, hosts, path, methods, upstream, respond, stripPrefix, rewrite,
            setHeaders, removeHeaders, _reader.Locate(map))
        {
            Hooks = hooks,
            Handler = handler,
            BufferResponse = buffer,
        };
    }

    private MethodSet ReadMethods(YamlNode node)
    {
        var set = MethodSet.None;
        foreach (var (text, item) in _reader.StringList(node, "methods"))
        {
            if (text is "*" or "ANY") { set = MethodSet.All; continue; }
            var m = Methods.Parse(text.ToUpperInvariant());
            if (m == MethodSet.None)
                _reader.Error(item, $"unknown method '{text}' (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE or '*')");
            set |= m;
        }
        return set == MethodSet.None ? MethodSet.All : set;
    }

    private RespondConfig? ReadRespond(YamlNode node, string what)
    {
        var map = _reader.Mapping(node, $"{what}: respond");
        if (map is null) return null;
        _reader.RejectUnknownKeys(map, $"{what}: respond", RespondKeys);
        var status = _reader.IntOr(map, "status", 200, 100, 599);
        var body = YamlNodeReader.Get(map, "body") is { } b ? _reader.Text(b, "body") ?? "" : "";
        if (body.Length > 0 && !FixedResponseAllowsBody(status))
            _reader.Error(YamlNodeReader.Get(map, "body")!, $"{what}: a {status} response cannot have a body");
        var headers = new List<KeyValuePair<string, string>>();
        if (YamlNodeReader.Get(map, "headers") is { } h)
            foreach (var (key, value, hn) in _reader.StringMap(h, "respond headers"))
                if (CheckHeader(key, value, hn, what)) headers.Add(new(key, value));
        return new RespondConfig(status, headers, body);
    }

    /// <summary>1xx, 204 and 304 responses end at their headers (RFC 9110 §6.4.1).</summary>
    internal static bool FixedResponseAllowsBody(int status) => status >= 200 && status != 204 && status != 304;

    /// <summary><c>true</c> strips the path's static start (before the first parameter); a string strips that literal prefix.</summary>
    private string? ReadStripPrefix(YamlMappingNode map, string? path, string tenantPrefix, string what)
    {
        if (YamlNodeReader.Get(map, "strip_prefix") is not { } node || path is null || !path.StartsWith('/')) return null;
        var text = _reader.Text(node, "strip_prefix");
        var word = text?.ToLowerInvariant();
        if (text is null || word is "false" or "no" or "off") return null;
        var staticPart = StaticStart(path);
        if (word is "true" or "yes" or "on")
            return staticPart.Length == 0 ? null : staticPart;
        var literal = (tenantPrefix + text).TrimEnd('/');
        if (!text.StartsWith('/') || !(staticPart + "/").StartsWith(literal + "/", StringComparison.Ordinal))
        {
            _reader.Error(node, $"{what}: strip_prefix '{text}' must start with '/' and be a leading part of the path '{path}'");
            return null;
        }
        return literal;
    }

    private string? ReadRewrite(YamlMappingNode map, string? path, string what)
    {
        if (YamlNodeReader.Get(map, "rewrite") is not { } node || path is null) return null;
        var text = _reader.Text(node, "rewrite");
        if (text is null) return null;
        var error = PathTemplate.Validate(text, path);
        if (error is not null)
        {
            _reader.Error(node, $"{what}: rewrite '{text}': {error}");
            return null;
        }
        return text;
    }

    private bool CheckHeader(string name, string value, YamlNode node, string what)
    {
        if (!Names.IsToken(name)) _reader.Error(node, $"{what}: '{name}' is not a valid header name");
        else if (!Names.IsSafeHeaderValue(value)) _reader.Error(node, $"{what}: header '{name}' has a CR, LF or NUL in its value");
        else if (name.Equals("host", StringComparison.OrdinalIgnoreCase)) _reader.Error(node, $"{what}: set the Host header with the upstream's 'preserve_host' instead");
        else return true;
        return false;
    }

    private string? RequiredName(YamlMappingNode map, string kind)
    {
        if (YamlNodeReader.Get(map, "name") is not { } node)
        {
            _reader.Error(map, $"a {kind} needs a 'name'");
            return null;
        }
        var name = _reader.Text(node, $"{kind} name");
        if (name is not null && !Names.IsValid(name))
        {
            _reader.Error(node, $"{kind} name '{name}' may only use letters, digits, '-', '_' and '.'");
            return null;
        }
        return name;
    }

    /// <summary>The part of a path pattern before its first parameter, without a trailing slash.</summary>
    private static string StaticStart(string path)
    {
        int cut = path.IndexOfAny(['{', '*']);
        var start = cut < 0 ? path : path[..path.LastIndexOf('/', cut)];
        return start.TrimEnd('/');
    }

    private static List<string> Values(List<(string Value, YamlNode Node)> items)
    {
        var result = new List<string>(items.Count);
        foreach (var (value, _) in items) result.Add(value);
        return result;
    }
}
