using Keystone.Routing;

namespace Keystone.Configuration;

/// <summary>The whole validated configuration: what a snapshot is built from.</summary>
public sealed record GatewayConfig(
    string File,
    IReadOnlyList<string> Listen,
    TimeSpan ShutdownTimeout,
    IReadOnlyList<UpstreamConfig> Upstreams,
    IReadOnlyList<RouteConfig> Routes);

/// <summary>A named group of targets that routes forward to.</summary>
public sealed record UpstreamConfig(
    string Name,
    IReadOnlyList<TargetConfig> Targets,
    bool PreserveHost,
    TimeSpan Timeout,
    SourceLocation Location);

/// <summary>One backend server; <see cref="Url"/> may carry a base path.</summary>
public sealed record TargetConfig(Uri Url, int Weight, SourceLocation Location);

/// <summary>
/// One route after tenants are flattened: tenant hosts and path prefix are already applied,
/// and <see cref="StripPrefix"/> is resolved to the literal prefix to remove.
/// </summary>
public sealed record RouteConfig(
    string Name,
    string? Tenant,
    IReadOnlyList<string> Hosts,
    string Path,
    MethodSet Methods,
    string? Upstream,
    RespondConfig? Respond,
    string? StripPrefix,
    string? Rewrite,
    IReadOnlyList<KeyValuePair<string, string>> SetHeaders,
    IReadOnlyList<string> RemoveHeaders,
    SourceLocation Location);

/// <summary>A fixed answer written by Keystone itself.</summary>
public sealed record RespondConfig(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, string Body);
