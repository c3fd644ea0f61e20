using Keystone.Proxy;
using YamlDotNet.RepresentationModel;

namespace Keystone.Configuration;

/// <summary>Reads an upstream's <c>eject:</c> and <c>circuit_breaker:</c> blocks; <c>false</c> turns either off.</summary>
internal static class ResilienceReader
{
    private static readonly string[] EjectKeys = ["consecutive_failures", "eject_for", "max_eject_for", "on_5xx"];
    private static readonly string[] BreakerKeys = ["failures", "window", "open_for", "half_open_probes"];

    public static PassiveEjectionConfig? ReadEject(YamlNodeReader reader, YamlMappingNode upstream, string name)
    {
        var d = PassiveEjectionConfig.Default;
        if (Block(reader, upstream, "eject", name, EjectKeys, out var map) is { } enabled) return enabled ? d : null;
        int failures = reader.IntOr(map!, "consecutive_failures", d.ConsecutiveFailures, 1, 1000);
        var ejectFor = reader.DurationOr(map!, "eject_for", d.EjectFor);
        var maxEjectFor = reader.DurationOr(map!, "max_eject_for", TimeSpan.FromTicks(Math.Max(d.MaxEjectFor.Ticks, ejectFor.Ticks)));
        bool on5xx = YamlNodeReader.Get(map!, "on_5xx") is { } n && reader.Bool(n, "on_5xx") == true;
        if (ejectFor <= TimeSpan.Zero) reader.Error(map!, $"upstream '{name}': eject_for must be greater than zero");
        if (maxEjectFor < ejectFor) reader.Error(map!, $"upstream '{name}': max_eject_for must be at least eject_for");
        return new PassiveEjectionConfig(failures, ejectFor, maxEjectFor, on5xx);
    }

    public static CircuitBreakerConfig? ReadCircuitBreaker(YamlNodeReader reader, YamlMappingNode upstream, string name)
    {
        var d = CircuitBreakerConfig.Default;
        if (Block(reader, upstream, "circuit_breaker", name, BreakerKeys, out var map) is { } enabled) return enabled ? d : null;
        int failures = reader.IntOr(map!, "failures", d.FailureThreshold, 1, 1000);
        var window = reader.DurationOr(map!, "window", d.Window);
        var openFor = reader.DurationOr(map!, "open_for", d.OpenFor);
        int probes = reader.IntOr(map!, "half_open_probes", d.HalfOpenProbes, 1, 100);
        if (window < TimeSpan.FromMilliseconds(100)) reader.Error(map!, $"upstream '{name}': circuit_breaker window must be at least 100ms");
        if (openFor < TimeSpan.FromMilliseconds(100)) reader.Error(map!, $"upstream '{name}': circuit_breaker open_for must be at least 100ms");
        return new CircuitBreakerConfig(failures, window, openFor, probes);
    }

    /// <summary>Null with <paramref name="map"/> set for a block to read; true (defaults) when absent; false when turned off.</summary>
    private static bool? Block(YamlNodeReader reader, YamlMappingNode upstream, string key, string name, string[] keys, out YamlMappingNode? map)
    {
        map = null;
        if (YamlNodeReader.Get(upstream, key) is not { } node) return true;
        if (node is YamlScalarNode) return reader.Bool(node, key) ?? true;
        map = reader.Mapping(node, $"{key} of upstream '{name}'");
        if (map is null) return true;
        reader.RejectUnknownKeys(map, $"{key} of upstream '{name}'", keys);
        return null;
    }
}
