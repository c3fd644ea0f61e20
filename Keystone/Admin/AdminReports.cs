using System.Text.Json;
using Keystone.Routing;

namespace Keystone.Admin;

/// <summary>The JSON bodies of the admin endpoints, written straight from the live snapshot.</summary>
public static class AdminReports
{
    /// <summary>Ready when every upstream that some route uses has at least one target in rotation.</summary>
    public static bool IsReady(Snapshot snapshot)
    {
        foreach (var name in snapshot.UsedUpstreams)
            if (!HasHealthyTarget(snapshot.Upstreams[name])) return false;
        return true;
    }

    public static void Readiness(Utf8JsonWriter w, Snapshot snapshot, bool ready)
    {
        w.WriteString("status", ready ? "ready" : "not_ready");
        w.WriteStartArray("upstreams");
        foreach (var (name, upstream) in snapshot.Upstreams)
        {
            int healthy = 0;
            foreach (var t in upstream.Targets) if (t.Health.IsHealthy) healthy++;
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WriteBoolean("used_by_routes", snapshot.UsedUpstreams.Contains(name));
            w.WriteNumber("healthy", healthy);
            w.WriteNumber("total", upstream.Targets.Count);
            w.WriteBoolean("health_checked", upstream.Health is not null);
            w.WriteStartArray("targets");
            foreach (var t in upstream.Targets)
            {
                w.WriteStartObject();
                w.WriteString("target", t.Name);
                w.WriteBoolean("healthy", t.Health.IsHealthy);
                WriteNumberOrNull(w, "last_check_ms", t.Health.LastCheckMilliseconds);
                WriteStringOrNull(w, "last_checked_at", t.Health.LastCheckedAt?.ToString("O"));
                WriteStringOrNull(w, "last_check_error", t.Health.LastError);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    public static void Routes(Utf8JsonWriter w, Snapshot snapshot, Reloader reloader)
    {
        w.WriteString("config", snapshot.Config.File);
        WriteStringOrNull(w, "loaded_at", reloader.LastSuccessAt?.ToString("O"));
        w.WriteStartArray("last_reload_errors");
        foreach (var e in reloader.LastErrors) w.WriteStringValue(e.ToString());
        w.WriteEndArray();
        w.WriteStartArray("routes");
        foreach (var r in snapshot.Config.Routes)
        {
            w.WriteStartObject();
            w.WriteString("name", r.Name);
            WriteStringOrNull(w, "tenant", r.Tenant);
            w.WriteStartArray("hosts");
            foreach (var h in r.Hosts) w.WriteStringValue(h);
            w.WriteEndArray();
            w.WriteString("methods", r.Methods == MethodSet.All ? "*" : Methods.AllowHeader(r.Methods));
            w.WriteString("path", r.Path);
            WriteStringOrNull(w, "upstream", r.Upstream);
            if (r.Respond is { } respond) w.WriteNumber("respond_status", respond.Status);
            WriteStringOrNull(w, "strip_prefix", r.StripPrefix);
            WriteStringOrNull(w, "rewrite", r.Rewrite);
            w.WriteString("defined_at", r.Location.ToString());
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    public static void Upstreams(Utf8JsonWriter w, Snapshot snapshot)
    {
        w.WriteStartArray("upstreams");
        foreach (var (name, upstream) in snapshot.Upstreams)
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WriteBoolean("preserve_host", upstream.PreserveHost);
            w.WriteNumber("timeout_ms", upstream.Timeout.TotalMilliseconds);
            w.WriteNumber("idle_timeout_ms", upstream.IdleTimeout.TotalMilliseconds);
            w.WriteNumber("retries", upstream.Retry.Retries);
            w.WriteStartArray("targets");
            foreach (var t in upstream.Targets)
            {
                w.WriteStartObject();
                w.WriteString("target", t.Name);
                w.WriteString("url", t.Url.ToString());
                w.WriteNumber("weight", t.Weight);
                w.WriteBoolean("healthy", t.Health.IsHealthy);
                w.WriteNumber("in_flight", Volatile.Read(ref t.InFlight));
                WriteStringOrNull(w, "last_error", t.LastError);
                WriteNumberOrNull(w, "last_check_ms", t.Health.LastCheckMilliseconds);
                WriteStringOrNull(w, "last_check_error", t.Health.LastError);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>The loaded scripts, what each defines, the routes they declare, and the Lua limits in force.</summary>
    public static void Scripts(Utf8JsonWriter w, Snapshot snapshot)
    {
        var set = snapshot.Scripts;
        var lua = snapshot.Config.Lua;
        w.WriteBoolean("lua_enabled", set is not null);
        w.WriteString("scripts_dir", lua.ScriptsDir);
        w.WriteNumber("budget_ms", lua.Budget.TotalMilliseconds);
        w.WriteNumber("memory_bytes", lua.MemoryBytes);
        w.WriteNumber("live_states", Scripting.LuaState.Live);
        if (set is not null)
        {
            w.WriteNumber("shared_entries", set.Shared.Count);
            w.WriteNumber("shared_bytes", set.Shared.UsedBytes);
        }
        w.WriteStartArray("scripts");
        for (int i = 0; set is not null && i < set.Scripts.Count; i++)
        {
            var script = set.Scripts[i];
            w.WriteStartObject();
            w.WriteString("name", script.Name);
            w.WriteString("file", script.DisplayPath);
            w.WriteStartArray("functions");
            foreach (var function in new[] { Scripting.ScriptFunction.OnRequest, Scripting.ScriptFunction.OnResponse, Scripting.ScriptFunction.Handle })
                if (set.Defines(i, function)) w.WriteStringValue(Scripting.ScriptStage.PhaseName(function));
            w.WriteEndArray();
            w.WriteStartArray("routes");
            foreach (var route in set.Routes)
                if (route.Script == i) w.WriteStringValue(route.Key);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    public static void Reload(Utf8JsonWriter w, ReloadResult result)
    {
        w.WriteString("result", result.Ok ? "success" : "failure");
        w.WriteStartArray("errors");
        foreach (var e in result.Errors) w.WriteStringValue(e.ToString());
        w.WriteEndArray();
        w.WriteStartArray("restart_required");
        foreach (var s in result.RestartRequired) w.WriteStringValue(s);
        w.WriteEndArray();
    }

    private static bool HasHealthyTarget(Proxy.Upstream upstream)
    {
        foreach (var t in upstream.Targets) if (t.Health.IsHealthy) return true;
        return false;
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }

    private static void WriteNumberOrNull(Utf8JsonWriter w, string name, double? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteNumber(name, Math.Round(value.Value, 3));
    }
}
