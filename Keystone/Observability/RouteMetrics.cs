using System.Collections.Concurrent;
using Keystone.Routing;
using Prometheus;

namespace Keystone.Observability;

/// <summary>
/// One route's metric children, resolved when the snapshot is built. Request counters are keyed by
/// (method, status) in an int-keyed map: a hit costs a lookup, never a label array or string.
/// </summary>
public sealed class RouteMetrics
{
    private static readonly string[] MethodLabels = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "OTHER"];
    private static readonly ConcurrentDictionary<string, RouteMetrics> ByRoute = new(StringComparer.Ordinal);

    private readonly string _route;
    private readonly ConcurrentDictionary<int, Counter.Child> _requests = new();

    private RouteMetrics(string route)
    {
        _route = route;
        Duration = GatewayMetrics.RequestDuration.WithLabels(route);
    }

    public Histogram.Child Duration { get; }

    /// <summary>Children are shared by every snapshot that has a route of this name, so reloads keep counting.</summary>
    public static RouteMetrics For(string route) => ByRoute.GetOrAdd(route, static name => new RouteMetrics(name));

    public static RouteMetrics NoRoute { get; } = For(GatewayMetrics.NoRoute);

    public void Record(MethodSet method, int status, double seconds)
    {
        int methodIndex = method == MethodSet.None ? 8 : System.Numerics.BitOperations.TrailingZeroCount((uint)method);
        int key = (methodIndex << 16) | status;
        if (!_requests.TryGetValue(key, out var counter))
            counter = _requests.GetOrAdd(key, static (k, route) =>
                GatewayMetrics.Requests.WithLabels(route, MethodLabels[k >> 16], (k & 0xFFFF).ToString(System.Globalization.CultureInfo.InvariantCulture)), _route);
        counter.Inc();
        Duration.Observe(seconds);
    }
}
