using Keystone.Configuration;
using Keystone.Observability;
using Keystone.Proxy;

namespace Keystone;

/// <summary>The outcome of a reload: applied, or refused with every error; and what only a restart can change.</summary>
public sealed record ReloadResult(bool Ok, IReadOnlyList<ConfigError> Errors, IReadOnlyList<string> RestartRequired);

/// <summary>
/// Re-reads the config file, builds a complete new snapshot off the request path and swaps it in; an
/// invalid file changes nothing. Settings bound at start (listeners, logging) keep their running values
/// and are reported, never half-applied.
/// </summary>
public sealed class Reloader : IAsyncDisposable
{
    private readonly Gateway _gateway;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private HealthProber _prober;

    public Reloader(Gateway gateway, ILogger log)
    {
        _gateway = gateway;
        _log = log;
        gateway.Current.Activate();
        _prober = StartProber(gateway.Current);
        GatewayMetrics.ConfigLoaded();
        LastSuccessAt = DateTimeOffset.UtcNow;
    }

    public DateTimeOffset? LastSuccessAt { get; private set; }

    /// <summary>Errors of the last reload attempt; empty when it succeeded.</summary>
    public IReadOnlyList<ConfigError> LastErrors { get; private set; } = [];

    public ReloadResult Reload(string trigger)
    {
        lock (_lock)
        {
            var current = _gateway.Current.Config;
            var loaded = ConfigLoader.LoadFile(current.File);
            var errors = new List<ConfigError>(loaded.Errors);
            Snapshot? next = null;
            List<string> restart = [];
            if (loaded.Ok)
            {
                restart = RestartOnlyChanges(current, loaded.Config!);
                var config = loaded.Config! with
                {
                    Listen = current.Listen,
                    ShutdownTimeout = current.ShutdownTimeout,
                    Admin = current.Admin,
                    AccessLog = current.AccessLog,
                    Metrics = current.Metrics,
                    LogFormat = current.LogFormat,
                    LogLevel = current.LogLevel,
                };
                next = Snapshot.Build(config, errors, _gateway.Current);
            }

            if (next is null)
            {
                LastErrors = errors;
                GatewayMetrics.ConfigRejected();
                _log.LogError("reload ({Trigger}) rejected, the previous config keeps serving: {Count} problem(s)", trigger, errors.Count);
                foreach (var e in errors) _log.LogError("{Error}", e.ToString());
                return new ReloadResult(false, errors, []);
            }

            foreach (var setting in restart)
                _log.LogWarning("reload ({Trigger}): '{Setting}' changed but needs a restart; the running value stays", trigger, setting);
            var oldProber = _prober;
            var previous = _gateway.Current;
            _prober = StartProber(next);
            // Activated first, so the new snapshot's Lua states are warm before its first request.
            next.Activate();
            _gateway.Swap(next);
            previous.Pool?.Retire();
            ForgetRemovedTargets(previous, next);
            _ = oldProber.DisposeAsync().AsTask();
            LastErrors = [];
            LastSuccessAt = DateTimeOffset.UtcNow;
            GatewayMetrics.ConfigLoaded();
            _log.LogInformation("reload ({Trigger}) applied: {Routes} routes, {Upstreams} upstreams",
                trigger, next.Config.Routes.Count, next.Config.Upstreams.Count);
            return new ReloadResult(true, [], restart);
        }
    }

    /// <summary>A target that left the config must not keep reporting its last health to alerts.</summary>
    private static void ForgetRemovedTargets(Snapshot previous, Snapshot next)
    {
        foreach (var (name, upstream) in previous.Upstreams)
        {
            next.Upstreams.TryGetValue(name, out var kept);
            foreach (var target in upstream.Targets)
                if (kept?.FindTarget(target.Url) is null && !SharesName(kept, target.Name))
                {
                    GatewayMetrics.TargetHealthy.RemoveLabelled(name, target.Name);
                    GatewayMetrics.CircuitState.RemoveLabelled(name, target.Name);
                }
        }
    }

    private static bool SharesName(Upstream? upstream, string targetName)
    {
        if (upstream is null) return false;
        foreach (var t in upstream.Targets)
            if (t.Name == targetName) return true;
        return false;
    }

    private HealthProber StartProber(Snapshot snapshot)
    {
        var prober = new HealthProber(_log);
        prober.Start(snapshot.Upstreams.Values);
        return prober;
    }

    private static List<string> RestartOnlyChanges(GatewayConfig running, GatewayConfig loaded)
    {
        var changed = new List<string>();
        if (!running.Listen.SequenceEqual(loaded.Listen)) changed.Add("listen");
        if (running.ShutdownTimeout != loaded.ShutdownTimeout) changed.Add("shutdown_timeout");
        if (running.Admin != loaded.Admin) changed.Add("admin");
        if (running.AccessLog != loaded.AccessLog) changed.Add("access_log");
        if (running.Metrics != loaded.Metrics) changed.Add("metrics");
        if (running.LogFormat != loaded.LogFormat) changed.Add("log_format");
        if (running.LogLevel != loaded.LogLevel) changed.Add("log_level");
        return changed;
    }

    public ValueTask DisposeAsync() => _prober.DisposeAsync();
}
