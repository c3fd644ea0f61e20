using Keystone.Proxy;
using Keystone.Routing;

namespace Keystone.Scripting;

/// <summary>
/// What the scripts of one request see and change: the HttpContext it wraps, plus the edits a script made
/// that the pipeline applies when it forwards (path, query, body, upstream). Lives for the whole request,
/// across the states its phases ran in.
/// </summary>
internal sealed class ScriptCall(HttpContext context, RouteTable<Route> routes, IReadOnlyDictionary<string, Upstream> upstreams, Route route, string requestId)
{
    public HttpContext Context { get; } = context;

    /// <summary>The snapshot's routes, to find <c>req.params</c> again when a script reads them.</summary>
    public RouteTable<Route> Routes { get; } = routes;

    /// <summary>The snapshot's upstreams: the only ones <c>req.upstream</c> may name.</summary>
    public IReadOnlyDictionary<string, Upstream> Upstreams { get; } = upstreams;

    public Route Route { get; } = route;
    public string RequestId { get; } = requestId;

    /// <summary>The path to send upstream, when a script set <c>req.path</c>.</summary>
    public string? Path { get; set; }

    /// <summary>The query to send upstream without its '?', when a script set <c>req.query_string</c>.</summary>
    public string? QueryString { get; set; }

    /// <summary>Another configured upstream chosen by a script through <c>req.upstream</c>.</summary>
    public Upstream? Upstream { get; set; }

    /// <summary>The buffered request body; null when it was larger than <c>lua.max_body</c>.</summary>
    public ReadOnlyMemory<byte>? Body { get; set; } = ReadOnlyMemory<byte>.Empty;

    public bool BodyChanged { get; set; }

    /// <summary>req.ctx carried from one phase's state to the next, as JSON.</summary>
    public byte[]? CarriedContext { get; set; }

    /// <summary>The response body a hook or handler produced, or the buffered upstream body.</summary>
    public ReadOnlyMemory<byte>? ResponseBody { get; set; }

    /// <summary>res.body is readable and writable: the route buffers responses, or a script answered.</summary>
    public bool ResponseBodyAvailable { get; set; }

    /// <summary>Stopwatch ticks spent in this request's script calls, for the access log's lua_ms.</summary>
    public long LuaTicks { get; set; }

    public string EffectivePath => Path ?? Context.Request.Path.Value ?? "/";

    public string EffectiveQuery => QueryString ?? (Context.Request.QueryString.Value is { Length: > 1 } q ? q[1..] : "");

    /// <summary>The upstream a proxied request goes to: a script's choice over the route's.</summary>
    public Upstream? EffectiveUpstream => Upstream ?? Route.Upstream;
}
