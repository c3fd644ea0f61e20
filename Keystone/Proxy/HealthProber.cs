using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Keystone.Configuration;

namespace Keystone.Proxy;

/// <summary>
/// Active health checks: one background loop per target of every upstream with a <c>health:</c> block,
/// each running one check at a time and feeding the result to <see cref="TargetHealth"/>. Off the request path.
/// </summary>
public sealed class HealthProber : IAsyncDisposable
{
    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxFirstDelay = TimeSpan.FromSeconds(1);

    private readonly ILogger _logger;
    // Apart from the traffic pool so probes neither queue behind nor count against request connections.
    private readonly HttpMessageInvoker _invoker = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        ActivityHeadersPropagator = null,
    });
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _loops = [];
    private readonly Lock _lock = new();
    private bool _started;
    private bool _disposed;

    public HealthProber(ILogger logger)
    {
        _logger = logger;
    }

    /// <summary>Starts one loop per target of each upstream that has health checks configured; call once.</summary>
    public void Start(IEnumerable<Upstream> upstreams)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_started) throw new InvalidOperationException("the health prober is already started");
            _started = true;
            foreach (var upstream in upstreams)
            {
                if (upstream.Health is not { } health) continue;
                foreach (var target in upstream.Targets)
                    _loops.Add(Task.Run(() => RunAsync(upstream, target, health, _stopping.Token)));
            }
        }
    }

    /// <summary>Stops every loop, cancelling checks in flight, and waits (bounded) for them to end.</summary>
    public async ValueTask DisposeAsync()
    {
        Task[] loops;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            loops = [.. _loops];
        }
        _stopping.Cancel();
        try
        {
            await Task.WhenAll(loops).WaitAsync(StopWait);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("health checks did not stop within {Wait}s", StopWait.TotalSeconds);
        }
        _invoker.Dispose();
    }

    private async Task RunAsync(Upstream upstream, Target target, HealthCheckConfig health, CancellationToken stopping)
    {
        var check = health.Path is null ? null : new Uri(target.Origin + target.BasePath + health.Path);
        // Spread the first checks so a start or reload does not probe every target in the same instant.
        var delay = Jittered(health.Interval < MaxFirstDelay ? health.Interval : MaxFirstDelay, 0, 1);
        while (true)
        {
            try
            {
                await Task.Delay(delay, stopping);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            long started = Stopwatch.GetTimestamp();
            try
            {
                var result = check is null
                    ? await ConnectAsync(target, health.Timeout, stopping)
                    : await GetAsync(check, target, health, stopping);
                if (stopping.IsCancellationRequested) return;
                Record(upstream, target, health, result, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            catch (Exception e)
            {
                if (stopping.IsCancellationRequested) return;
                _logger.LogError(e, "health check of upstream {Upstream} target {Target} threw", upstream.Name, target.Name);
            }
            // Checks start one interval apart (not one interval after the last ended), so a slow target is not probed less often.
            var next = Jittered(health.Interval, 0.9, 1.1) - Stopwatch.GetElapsedTime(started);
            delay = next > TimeSpan.Zero ? next : TimeSpan.Zero;
        }
    }

    private void Record(Upstream upstream, Target target, HealthCheckConfig health, HealthCheckResult result, double milliseconds)
    {
        var state = target.Health;
        bool wasHealthy = state.IsHealthy;
        state.Record(result.Passed, milliseconds, result.Error, health.HealthyThreshold, health.UnhealthyThreshold);
        bool isHealthy = state.IsHealthy;
        if (wasHealthy && !isHealthy)
            _logger.LogWarning("upstream {Upstream} target {Target} is unhealthy, out of rotation: {Reason} ({Failures} failed checks in a row)",
                upstream.Name, target.Name, result.Error, health.UnhealthyThreshold);
        else if (!wasHealthy && isHealthy)
            _logger.LogInformation("upstream {Upstream} target {Target} is healthy again, back in rotation ({Passes} passed checks in a row, last took {Milliseconds:0}ms)",
                upstream.Name, target.Name, health.HealthyThreshold, milliseconds);
        else if (!result.Passed && _logger.IsEnabled(LogLevel.Debug))
            _logger.LogDebug("health check of upstream {Upstream} target {Target} failed: {Reason}", upstream.Name, target.Name, result.Error);
    }

    /// <summary>One HTTP check: GET the health path; passes on the expected status, or any 2xx/3xx when none is set.</summary>
    internal async Task<HealthCheckResult> GetAsync(Uri uri, Target target, HealthCheckConfig health, CancellationToken stopping)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(health.Timeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Host = target.Name;
        request.Headers.TryAddWithoutValidation("User-Agent", "keystone-health-check");
        try
        {
            // Headers are enough to judge; disposing the response drains or drops the body.
            using var response = await _invoker.SendAsync(request, timeout.Token);
            int status = (int)response.StatusCode;
            bool passed = health.ExpectStatus == 0 ? status is >= 200 and < 400 : status == health.ExpectStatus;
            if (passed) return HealthCheckResult.Pass;
            return HealthCheckResult.Fail(health.ExpectStatus == 0 ? $"status {status}" : $"status {status}, expected {health.ExpectStatus}");
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return HealthCheckResult.Fail(TimedOut(health.Timeout));
        }
        catch (Exception e) when (e is HttpRequestException or IOException or SocketException)
        {
            return HealthCheckResult.Fail(Describe(e));
        }
    }

    /// <summary>One TCP check: the target passes when a connection to its host and port opens within the timeout.</summary>
    internal static async Task<HealthCheckResult> ConnectAsync(Target target, TimeSpan limit, CancellationToken stopping)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(limit);
        try
        {
            var host = target.Url.IdnHost;
            IPAddress[] addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, timeout.Token);
            if (addresses.Length == 0) return HealthCheckResult.Fail("name not resolved");
            SocketException? last = null;
            foreach (var address in addresses)
            {
                using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(address, target.Url.Port), timeout.Token);
                    return HealthCheckResult.Pass;
                }
                catch (SocketException e)
                {
                    last = e;
                }
            }
            return HealthCheckResult.Fail(Describe(last!));
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return HealthCheckResult.Fail(TimedOut(limit));
        }
        catch (SocketException e)
        {
            return HealthCheckResult.Fail(Describe(e));
        }
    }

    private static string TimedOut(TimeSpan limit) => $"timed out after {limit.TotalMilliseconds:0}ms";

    /// <summary>A short reason for a log line or the admin API, from the socket error under the exception when there is one.</summary>
    private static string Describe(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connect refused",
                    SocketError.ConnectionReset => "connection reset",
                    SocketError.TimedOut => "connect timed out",
                    SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => "name not resolved",
                    SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
                    _ => socket.Message,
                };
            }
        }
        return e is HttpRequestException http ? http.HttpRequestError switch
        {
            HttpRequestError.NameResolutionError => "name not resolved",
            HttpRequestError.ResponseEnded => "connection closed before a response",
            HttpRequestError.SecureConnectionError => "TLS handshake failed",
            HttpRequestError.InvalidResponse => "invalid response",
            _ => http.Message,
        } : e.Message;
    }

    private static TimeSpan Jittered(TimeSpan span, double low, double high) =>
        span * (low + (high - low) * Random.Shared.NextDouble());
}

/// <summary>The outcome of one check: passed, or failed with a short reason.</summary>
internal readonly record struct HealthCheckResult(bool Passed, string? Error)
{
    public static HealthCheckResult Pass => new(true, null);
    public static HealthCheckResult Fail(string error) => new(false, error);
}
