using Prometheus;

namespace Keystone.Observability;

/// <summary>How a forwarded request ended, as the upstream metrics count it.</summary>
public enum UpstreamOutcome { Success, Error, Timeout, Canceled }

/// <summary>Metric children of upstreams and targets, resolved once when the snapshot is built.</summary>
public static class UpstreamMetrics
{
    public static Histogram.Child Duration(string upstream) => GatewayMetrics.UpstreamDuration.WithLabels(upstream);

    /// <summary>A target's request counters, indexed by <see cref="UpstreamOutcome"/>.</summary>
    public static Counter.Child[] Outcomes(string upstream, string target) =>
    [
        GatewayMetrics.UpstreamRequests.WithLabels(upstream, target, "success"),
        GatewayMetrics.UpstreamRequests.WithLabels(upstream, target, "error"),
        GatewayMetrics.UpstreamRequests.WithLabels(upstream, target, "timeout"),
        GatewayMetrics.UpstreamRequests.WithLabels(upstream, target, "canceled"),
    ];

    public static Gauge.Child CircuitState(string upstream, string target) => GatewayMetrics.CircuitState.WithLabels(upstream, target);

    public static Gauge.Child Healthy(string upstream, string target) => GatewayMetrics.TargetHealthy.WithLabels(upstream, target);
}
