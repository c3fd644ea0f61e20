using Prometheus;

namespace Keystone.Observability;

/// <summary>
/// Every metric of DESIGN.md §6, registered once per process. Label values are config names only, so
/// cardinality is bounded whatever clients send; request-path code uses children resolved when the
/// snapshot is built (<see cref="RouteMetrics"/>, <see cref="UpstreamMetrics"/>), never label lookups.
/// </summary>
public static class GatewayMetrics
{
    /// <summary>The route label of a request that matched no route.</summary>
    public const string NoRoute = "_none";

    // Static field initializers run in text order, and all of them before a static constructor's body: the
    // factory settings must be applied here, above the first Create*, or the metrics are made without them.
    private static readonly bool FactoryConfigured = ConfigureFactory();

    // 100 us doubling up to ~13 s: resolves both a cached hit and a slow upstream.
    private static readonly double[] LatencyBuckets = Histogram.ExponentialBuckets(0.0001, 2, 18);

    private static bool ConfigureFactory()
    {
        // Process and .NET runtime metrics (CPU, memory, GC, threads) from prometheus-net's own collectors.
        // No meter or event-counter adapters: the ASP.NET and HttpClient meters would cost every request and
        // duplicate ours, and the adapter's names for System.Runtime (e.g. *_count gauges) fail promtool's lint.
        Metrics.SuppressDefaultMetrics(new SuppressDefaultMetricOptions
        {
            SuppressProcessMetrics = false,
            SuppressDebugMetrics = true,
            SuppressEventCounters = true,
            SuppressMeters = true,
        });
        // A metric takes the factory's exemplar behaviour when it is created. The default looks up the current
        // trace on every Inc and Observe; Keystone starts no trace per request, so that is pure cost (~1% of a core).
        Metrics.DefaultFactory.ExemplarBehavior = ExemplarBehavior.NoExemplars();
        return true;
    }

    /// <summary>
    /// Creates the fixed-label series at zero, so that the first failure is an increase that rate() and
    /// increase() can see, not a series appearing at 1.
    /// </summary>
    public static void Initialize()
    {
        ConfigReloads.WithLabels("success");
        ConfigReloads.WithLabels("failure");
        LuaPoolStates.WithLabels("idle");
        LuaPoolStates.WithLabels("busy");
        AccessLogDropped.Inc(0);
    }

    public static readonly Counter Requests = Metrics.CreateCounter("keystone_requests_total",
        "Requests answered, by route, method and status.", "route", "method", "status");

    public static readonly Histogram RequestDuration = Metrics.CreateHistogram("keystone_request_duration_seconds",
        "Time from request start to the end of the response, by route.",
        new HistogramConfiguration { LabelNames = ["route"], Buckets = LatencyBuckets });

    public static readonly Counter UpstreamRequests = Metrics.CreateCounter("keystone_upstream_requests_total",
        "Requests sent to upstream targets, by outcome: success (a response arrived), error, timeout, canceled (the client went away).",
        "upstream", "target", "outcome");

    public static readonly Histogram UpstreamDuration = Metrics.CreateHistogram("keystone_upstream_duration_seconds",
        "Time spent forwarding to an upstream, request sent to response copied.",
        new HistogramConfiguration { LabelNames = ["upstream"], Buckets = LatencyBuckets });

    public static readonly Gauge TargetHealthy = Metrics.CreateGauge("keystone_upstream_target_healthy",
        "1 when the target is in rotation, 0 when health checks took it out.", "upstream", "target");

    public static readonly Gauge CircuitState = Metrics.CreateGauge("keystone_upstream_circuit_state",
        "Circuit breaker state of a target: 0 closed, 1 open, 2 half-open.", "upstream", "target");

    public static readonly Histogram LuaDuration = Metrics.CreateHistogram("keystone_lua_execution_duration_seconds",
        "Time spent in Lua, by script and phase.",
        new HistogramConfiguration { LabelNames = ["script", "phase"], Buckets = Histogram.ExponentialBuckets(0.000001, 2, 22) });

    public static readonly Counter LuaFailures = Metrics.CreateCounter("keystone_lua_failures_total",
        "Lua hook failures, by script and reason (error, budget, memory).", "script", "reason");

    public static readonly Gauge LuaPoolStates = Metrics.CreateGauge("keystone_lua_pool_states",
        "Lua states in the pool, by state (idle, busy).", "state");

    public static readonly Counter ConfigReloads = Metrics.CreateCounter("keystone_config_reloads_total",
        "Config loads and reloads, by result (success, failure).", "result");

    public static readonly Gauge ConfigLastReload = Metrics.CreateGauge("keystone_config_last_reload_timestamp_seconds",
        "Unix time of the last successful config load.");

    public static readonly Counter RateLimited = Metrics.CreateCounter("keystone_rate_limited_total",
        "Requests refused by a rate limit, by route.", "route");

    public static readonly Counter CacheRequests = Metrics.CreateCounter("keystone_cache_requests_total",
        "Cache lookups, by route and result (hit, miss, bypass).", "route", "result");

    public static readonly Counter AccessLogDropped = Metrics.CreateCounter("keystone_access_log_dropped_total",
        "Access log lines dropped because the sink could not keep up.");

    /// <summary>Records a successful config load or reload.</summary>
    public static void ConfigLoaded()
    {
        Initialize();
        ConfigReloads.WithLabels("success").Inc();
        ConfigLastReload.SetToCurrentTimeUtc();
    }

    public static void ConfigRejected() => ConfigReloads.WithLabels("failure").Inc();

    /// <summary>Writes the Prometheus text exposition of every metric.</summary>
    public static Task ExportAsync(Stream destination, CancellationToken cancel) =>
        Metrics.DefaultRegistry.CollectAndExportAsTextAsync(destination, cancel);
}
