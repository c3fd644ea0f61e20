using System.Text;
using Keystone.Configuration;
using Keystone.Observability;
using Keystone.Proxy;

namespace Keystone.Routing;

/// <summary>A route as the request path uses it: resolved once when the snapshot is built.</summary>
public sealed class Route
{
    public Route(RouteConfig config, Upstream? upstream)
    {
        Name = config.Name;
        Pattern = config.Path;
        Metrics = RouteMetrics.For(config.Name);
        Upstream = upstream;
        StripPrefix = config.StripPrefix;
        Rewrite = config.Rewrite is null ? null : PathTemplate.Compile(config.Rewrite, config.Path);
        if (config.Respond is { } respond)
        {
            Respond = new FixedResponse(respond.Status, [.. respond.Headers], Encoding.UTF8.GetBytes(respond.Body));
        }
        if (upstream is not null)
            Transformer = new UpstreamRequestTransformer([.. config.SetHeaders], [.. config.RemoveHeaders], config.BufferResponse);
    }

    public string Name { get; }
    public string Pattern { get; }

    /// <summary>This route's metric children, shared across snapshots by name.</summary>
    public RouteMetrics Metrics { get; }

    /// <summary>Where to forward; null for routes that answer themselves.</summary>
    public Upstream? Upstream { get; }

    public FixedResponse? Respond { get; }
    public string? StripPrefix { get; }
    public PathTemplate? Rewrite { get; }
    public UpstreamRequestTransformer? Transformer { get; }

    /// <summary>The Lua hooks and handler this route runs; null for a route without scripts.</summary>
    internal Scripting.RouteScripts? Scripts { get; init; }
}

/// <summary>A <c>respond:</c> answer, encoded once.</summary>
public sealed record FixedResponse(int Status, KeyValuePair<string, string>[] Headers, byte[] Body);
