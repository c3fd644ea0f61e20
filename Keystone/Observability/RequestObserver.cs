using System.Diagnostics;
using Keystone.Proxy;
using Keystone.Routing;
using Yarp.ReverseProxy.Forwarder;

namespace Keystone.Observability;

/// <summary>
/// The pipeline's last stage: counts the request in the route's metrics and hands a line to the access
/// log. Only resolved children and a struct cross here; formatting happens on the log's own task.
/// </summary>
public sealed class RequestObserver
{
    private readonly bool _metrics;
    private readonly AccessLog? _accessLog;

    public RequestObserver(bool metrics, AccessLog? accessLog)
    {
        _metrics = metrics;
        _accessLog = accessLog;
    }

    public void Record(HttpContext context, Exchange exchange)
    {
        long now = Stopwatch.GetTimestamp();
        var request = context.Request;
        int status = context.Response.StatusCode;
        var total = Stopwatch.GetElapsedTime(exchange.Started, now);
        if (_metrics)
            (exchange.Route?.Metrics ?? RouteMetrics.NoRoute).Record(Methods.Parse(request.Method), status, total.TotalSeconds);

        if (_accessLog is null) return;
        var route = exchange.Route;
        _accessLog.Write(new AccessLogEntry(
            DateTimeOffset.UtcNow, exchange.RequestId, context.Connection.RemoteIpAddress, request.Method,
            request.Host.Value ?? "", request.Path.Value ?? "", route?.Name ?? GatewayMetrics.NoRoute,
            (exchange.Upstream ?? route?.Upstream)?.Name, exchange.Target?.Name, status,
            request.ContentLength, context.Response.ContentLength,
            total.TotalMilliseconds,
            exchange.UpstreamTicks == 0 ? null : Stopwatch.GetElapsedTime(0, exchange.UpstreamTicks).TotalMilliseconds,
            exchange.Script is { } script ? Stopwatch.GetElapsedTime(0, script.LuaTicks).TotalMilliseconds : null));
    }

    /// <summary>Failures caused by the client (it went away or sent a broken body), not by the target.</summary>
    public static bool IsClientSide(ForwarderError error) => error is ForwarderError.RequestCanceled
        or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient or ForwarderError.ResponseBodyCanceled
        or ForwarderError.ResponseBodyClient or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeRequestClient
        or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeResponseClient;

    public void RecordUpstream(Upstream upstream, Target target, ForwarderError error, long ticks)
    {
        if (!_metrics) return;
        var outcome = error switch
        {
            ForwarderError.None => UpstreamOutcome.Success,
            ForwarderError.RequestTimedOut => UpstreamOutcome.Timeout,
            _ when IsClientSide(error) => UpstreamOutcome.Canceled,
            _ => UpstreamOutcome.Error,
        };
        target.Outcomes[(int)outcome].Inc();
        upstream.Duration.Observe(Stopwatch.GetElapsedTime(0, ticks).TotalSeconds);
    }
}
