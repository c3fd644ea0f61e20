using Keystone.Routing;

namespace Keystone.Configuration;

/// <summary>The whole validated configuration: what a snapshot is built from.</summary>
public sealed record GatewayConfig(
    string File,
    IReadOnlyList<string> Listen,
    TimeSpan ShutdownTimeout,
    IReadOnlyList<UpstreamConfig> Upstreams,
    IReadOnlyList<RouteConfig> Routes)
{
    public AdminConfig Admin { get; init; } = AdminConfig.Default;

    /// <summary><c>off</c>, <c>stdout</c>, or a file path.</summary>
    public string AccessLog { get; init; } = "stdout";

    /// <summary>Record Prometheus metrics for every request (on by default).</summary>
    public bool Metrics { get; init; } = true;

    public LogFormat LogFormat { get; init; } = LogFormat.Text;
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    public LuaConfig Lua { get; init; } = LuaConfig.Default;
}

public enum LogFormat { Text, Json }

/// <summary>The admin listener: metrics, health, readiness and the admin API, apart from traffic.</summary>
/// <param name="Listen">An http URL, or null when the admin listener is off.</param>
/// <param name="Token">Bearer token for <c>/admin/*</c>; required when <paramref name="Listen"/> is not loopback.</param>
/// <param name="MetricsOnTraffic">Also serve <c>/metrics</c> on the traffic listeners, for one-port scrapes.</param>
public sealed record AdminConfig(string? Listen, string? Token, bool MetricsOnTraffic)
{
    public const string DefaultListen = "http://127.0.0.1:9090";
    public static readonly AdminConfig Default = new(DefaultListen, null, false);
}

/// <summary>A named group of targets that routes forward to.</summary>
public sealed record UpstreamConfig(
    string Name,
    IReadOnlyList<TargetConfig> Targets,
    bool PreserveHost,
    TimeSpan Timeout,
    SourceLocation Location)
{
    /// <summary>Active health checking; null means targets are always considered usable.</summary>
    public HealthCheckConfig? Health { get; init; }

    public BalancerKind Balancer { get; init; } = BalancerKind.RoundRobin;

    /// <summary>How long opening a TCP connection to a target may take.</summary>
    public TimeSpan ConnectTimeout { get; init; } = Proxy.UpstreamConnector.DefaultConnectTimeout;

    /// <summary>When every target is out of rotation, send to all of them anyway instead of answering 503.</summary>
    public bool Panic { get; init; }

    /// <summary>Longest gap between two reads of the response body; defaults to <see cref="Timeout"/>.</summary>
    public TimeSpan IdleTimeout { get; init; }

    /// <summary>Which failed attempts are repeated on another target; by default a safe request, once.</summary>
    public Proxy.RetryPolicy Retry { get; init; } = Proxy.RetryPolicy.Default;

    /// <summary>Passive ejection of targets that keep failing; null when turned off.</summary>
    public Proxy.PassiveEjectionConfig? Eject { get; init; } = Proxy.PassiveEjectionConfig.Default;

    /// <summary>A circuit breaker per target; null when turned off.</summary>
    public Proxy.CircuitBreakerConfig? CircuitBreaker { get; init; } = Proxy.CircuitBreakerConfig.Default;

    /// <summary>With <see cref="BalancerKind.Hash"/>: <c>client_ip</c>, <c>header:&lt;name&gt;</c> or <c>cookie:&lt;name&gt;</c>.</summary>
    public string? HashOn { get; init; }
}

/// <summary>How an upstream spreads requests over its healthy targets.</summary>
public enum BalancerKind { RoundRobin, LeastRequests, Random, Hash }

/// <summary>
/// Active health check of every target of an upstream: an HTTP GET of <see cref="Path"/>, or a TCP connect
/// when no path is given.
/// </summary>
public sealed record HealthCheckConfig(
    string? Path,
    TimeSpan Interval,
    TimeSpan Timeout,
    int HealthyThreshold,
    int UnhealthyThreshold,
    int ExpectStatus);

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
    SourceLocation Location)
{
    /// <summary>Hooks in the order they run: tenant hooks first, then the route's own.</summary>
    public IReadOnlyList<HookConfig> Hooks { get; init; } = [];

    /// <summary>The script whose <c>handle(req)</c> answers this route, instead of an upstream.</summary>
    public string? Handler { get; init; }

    /// <summary>Read the whole upstream response so <c>on_response</c> hooks can see and change <c>res.body</c>.</summary>
    public bool BufferResponse { get; init; }
}

/// <summary>A fixed answer written by Keystone itself.</summary>
public sealed record RespondConfig(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, string Body);
