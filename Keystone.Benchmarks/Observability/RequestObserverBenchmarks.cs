using System.Net;
using BenchmarkDotNet.Attributes;
using Keystone.Configuration;
using Keystone.Observability;
using Keystone.Routing;
using Microsoft.AspNetCore.Http;

namespace Keystone.Benchmarks.Observability;

/// <summary>
/// What metrics and the access log add to one request, in process: the observer's Record call on a
/// finished request, with each part on or off. The access log sink is a null stream, so this is the
/// request-path cost (enqueue) plus, amortised, the writer task's formatting.
/// </summary>
[MemoryDiagnoser]
public class RequestObserverBenchmarks
{
    private DefaultHttpContext _context = null!;
    private Exchange _exchange = null!;
    private RequestObserver _metricsOnly = null!;
    private RequestObserver _metricsAndLog = null!;
    private AccessLog _log = null!;

    [GlobalSetup]
    public void Setup()
    {
        var config = new RouteConfig("bench-route", null, [], "/api/{*rest}", MethodSet.All, null,
            new RespondConfig(200, [], ""), null, null, [], [], new SourceLocation("bench.yaml", 1, 1));
        _context = new DefaultHttpContext();
        _context.Request.Method = "GET";
        _context.Request.Path = "/api/hello";
        _context.Request.Host = new HostString("example.com");
        _context.Connection.RemoteIpAddress = IPAddress.Loopback;
        _context.Response.StatusCode = 200;
        _exchange = new Exchange("0HNQA7T51AP29:00000001") { Route = new Route(config, null) };
        _metricsOnly = new RequestObserver(metrics: true, accessLog: null);
        _log = new AccessLog(Stream.Null, capacity: 65536);
        _metricsAndLog = new RequestObserver(metrics: true, accessLog: _log);
    }

    [GlobalCleanup]
    public void Cleanup() => _log.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark(Baseline = true)]
    public void MetricsOnly() => _metricsOnly.Record(_context, _exchange);

    [Benchmark]
    public void MetricsAndAccessLog() => _metricsAndLog.Record(_context, _exchange);
}
