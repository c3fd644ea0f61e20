using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Keystone.Configuration;
using Keystone.Proxy;
using Keystone.Tests.Integration;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Keystone.Tests.Proxy;

/// <summary>Active health checks against real loopback servers: what passes, what fails, when a target flips.</summary>
[Collection(ProxySerialCollection.Name)] // timeouts and latencies are measured: keep them off a busy machine
public sealed class HealthProberTests : IDisposable
{
    private static readonly SourceLocation Here = new("test.yaml", 1, 1);
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(15));

    public void Dispose() => _timeout.Dispose();

    [Theory]
    [InlineData(200, true)]
    [InlineData(204, true)]
    [InlineData(302, true)]
    [InlineData(399, true)]
    [InlineData(404, false)]
    [InlineData(500, false)]
    [InlineData(503, false)]
    public async Task Http_check_without_expect_status_passes_on_2xx_and_3xx_only(int status, bool passes)
    {
        await using var backend = await TestBackend.StartAsync(context => { context.Response.StatusCode = status; return Task.CompletedTask; });
        await using var prober = new HealthProber(new LogLines());
        var upstream = UpstreamOf(backend.Url, Http("/healthz"));

        var result = await prober.GetAsync(new Uri(backend.Url + "/healthz"), upstream.Targets[0], upstream.Health!, _timeout.Token);

        Assert.Equal(passes, result.Passed);
        Assert.Equal(passes ? null : $"status {status}", result.Error);
    }

    [Theory]
    [InlineData(204, true)]
    [InlineData(200, false)]
    [InlineData(500, false)]
    public async Task Http_check_with_expect_status_passes_on_that_status_only(int status, bool passes)
    {
        await using var backend = await TestBackend.StartAsync(context => { context.Response.StatusCode = status; return Task.CompletedTask; });
        await using var prober = new HealthProber(new LogLines());
        var upstream = UpstreamOf(backend.Url, Http("/healthz", expect: 204));

        var result = await prober.GetAsync(new Uri(backend.Url + "/healthz"), upstream.Targets[0], upstream.Health!, _timeout.Token);

        Assert.Equal(passes, result.Passed);
        Assert.Equal(passes ? null : $"status {status}, expected 204", result.Error);
    }

    [Fact]
    public async Task Http_check_gets_base_path_plus_health_path_with_the_target_as_host()
    {
        var seen = new TaskCompletionSource<(string Path, string Host, string Method)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(context =>
        {
            seen.TrySetResult((context.Request.Path.Value ?? "", context.Request.Host.Value ?? "", context.Request.Method));
            return Task.CompletedTask;
        });
        await using var prober = new HealthProber(new LogLines());
        var upstream = UpstreamOf(backend.Url + "/base/", Http("/healthz"));

        prober.Start([upstream]);
        var (path, host, method) = await seen.Task.WaitAsync(TimeSpan.FromSeconds(3), _timeout.Token);

        Assert.Equal("/base/healthz", path);
        Assert.Equal($"127.0.0.1:{backend.Port}", host);
        Assert.Equal("GET", method);
    }

    [Fact]
    public async Task Http_check_of_a_closed_port_fails_with_connect_refused()
    {
        int port = Ports.Closed();
        await using var prober = new HealthProber(new LogLines());
        var upstream = UpstreamOf($"http://127.0.0.1:{port}", Http("/healthz"));

        var result = await prober.GetAsync(new Uri($"http://127.0.0.1:{port}/healthz"), upstream.Targets[0], upstream.Health!, _timeout.Token);

        Assert.False(result.Passed);
        Assert.Equal("connect refused", result.Error);
    }

    [Fact]
    public async Task Tcp_check_passes_on_a_listening_port_and_fails_on_a_closed_one()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            int open = ((IPEndPoint)listener.LocalEndpoint).Port;
            var listening = UpstreamOf($"http://127.0.0.1:{open}", Tcp()).Targets[0];
            var closed = UpstreamOf($"http://127.0.0.1:{Ports.Closed()}", Tcp()).Targets[0];

            var pass = await HealthProber.ConnectAsync(listening, TimeSpan.FromSeconds(1), _timeout.Token);
            var fail = await HealthProber.ConnectAsync(closed, TimeSpan.FromSeconds(1), _timeout.Token);

            Assert.Equal(new HealthCheckResult(true, null), pass);
            Assert.Equal(new HealthCheckResult(false, "connect refused"), fail);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task Hanging_backend_fails_at_the_timeout()
    {
        await using var backend = await TestBackend.StartAsync(context => Task.Delay(Timeout.Infinite, context.RequestAborted));
        await using var prober = new HealthProber(new LogLines());
        var upstream = UpstreamOf(backend.Url, Http("/healthz", timeoutMs: 300));

        long started = Stopwatch.GetTimestamp();
        var result = await prober.GetAsync(new Uri(backend.Url + "/healthz"), upstream.Targets[0], upstream.Health!, _timeout.Token);
        var elapsed = Stopwatch.GetElapsedTime(started);

        Assert.Equal(new HealthCheckResult(false, "timed out after 300ms"), result);
        Assert.InRange(elapsed.TotalMilliseconds, 290, 1000);
    }

    [Fact]
    public async Task Target_leaves_after_unhealthy_threshold_failures_and_returns_after_healthy_threshold_passes()
    {
        int status = 500, failuresAnswered = 0, passesAnswered = 0;
        await using var backend = await TestBackend.StartAsync(context =>
        {
            int now = Volatile.Read(ref status);
            Interlocked.Increment(ref now == 200 ? ref passesAnswered : ref failuresAnswered);
            context.Response.StatusCode = now;
            return Task.CompletedTask;
        });
        var log = new LogLines();
        await using var prober = new HealthProber(log);
        var upstream = UpstreamOf(backend.Url, Http("/healthz", healthy: 2, unhealthy: 3));
        var health = upstream.Targets[0].Health;
        var down = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var up = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        // Runs on the prober loop right after the check that flipped the state, before the next check starts.
        health.Changed += healthy =>
        {
            if (healthy) up.TrySetResult(Volatile.Read(ref passesAnswered));
            else down.TrySetResult(Volatile.Read(ref failuresAnswered));
        };

        prober.Start([upstream]);
        Assert.Equal(3, await down.Task.WaitAsync(TimeSpan.FromSeconds(5), _timeout.Token));
        Assert.False(health.IsHealthy);
        Assert.Equal("status 500", health.LastError);
        Volatile.Write(ref status, 200);
        Assert.Equal(2, await up.Task.WaitAsync(TimeSpan.FromSeconds(5), _timeout.Token));
        Assert.True(health.IsHealthy);
        Assert.Null(health.LastError);

        var target = upstream.Targets[0].Name;
        var warning = Assert.Single(log.Lines, l => l.Level == LogLevel.Warning);
        Assert.Contains("upstream pool", warning.Text);
        Assert.Contains(target, warning.Text);
        Assert.Contains("status 500", warning.Text);
        var back = Assert.Single(log.Lines, l => l.Level == LogLevel.Information);
        Assert.Contains("upstream pool", back.Text);
        Assert.Contains(target, back.Text);
        Assert.Contains("healthy again", back.Text);
    }

    [Fact]
    public async Task Check_latency_time_and_reason_are_recorded()
    {
        await using var slow = await TestBackend.StartAsync(context => Task.Delay(150, context.RequestAborted));
        await using var prober = new HealthProber(new LogLines());
        var passing = UpstreamOf(slow.Url, Http("/healthz", timeoutMs: 2000));
        var refused = UpstreamOf($"http://127.0.0.1:{Ports.Closed()}", Tcp());

        prober.Start([passing, refused]);
        await WaitUntil(() => passing.Targets[0].Health.LastCheckedAt is not null && refused.Targets[0].Health.LastCheckedAt is not null, "both targets checked");

        var ok = passing.Targets[0].Health;
        Assert.InRange(ok.LastCheckMilliseconds!.Value, 140, 1500);
        Assert.Null(ok.LastError);
        Assert.InRange(ok.LastCheckedAt!.Value, DateTimeOffset.UtcNow.AddSeconds(-5), DateTimeOffset.UtcNow);
        var bad = refused.Targets[0].Health;
        Assert.Equal("connect refused", bad.LastError);
        Assert.InRange(bad.LastCheckMilliseconds!.Value, 0, 1000);
    }

    [Fact]
    public async Task Checks_of_one_target_never_overlap_even_when_slower_than_the_interval()
    {
        int inFlight = 0, mostInFlight = 0, checks = 0;
        await using var backend = await TestBackend.StartAsync(async context =>
        {
            int now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref mostInFlight, now);
            Interlocked.Increment(ref checks);
            try { await Task.Delay(300); }
            finally { Interlocked.Decrement(ref inFlight); }
        });
        await using var prober = new HealthProber(new LogLines());
        // The config reader would refuse timeout > interval; the prober must not rely on it to stay one-at-a-time.
        var upstream = UpstreamOf(backend.Url, Http("/healthz", intervalMs: 100, timeoutMs: 2000));

        prober.Start([upstream]);
        await Task.Delay(TimeSpan.FromSeconds(2), _timeout.Token);

        Assert.Equal(1, Volatile.Read(ref mostInFlight));
        Assert.InRange(Volatile.Read(ref checks), 3, 8);
        Assert.True(upstream.Targets[0].Health.IsHealthy);
    }

    [Fact]
    public async Task First_check_comes_within_a_second_even_with_a_long_interval_then_checks_follow_the_jittered_interval()
    {
        var arrivals = new ConcurrentQueue<long>();
        await using var backend = await TestBackend.StartAsync(context =>
        {
            arrivals.Enqueue(Stopwatch.GetTimestamp());
            return Task.CompletedTask;
        });
        await using var prober = new HealthProber(new LogLines());
        var slow = UpstreamOf(backend.Url + "/slow", Http("/healthz", intervalMs: 60_000, timeoutMs: 1000));
        var fast = UpstreamOf(backend.Url + "/fast", Http("/healthz", intervalMs: 200, timeoutMs: 200));

        long started = Stopwatch.GetTimestamp();
        prober.Start([slow]);
        await WaitUntil(() => slow.Targets[0].Health.LastCheckedAt is not null, "first check of a 60s-interval target");
        Assert.InRange(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 0, 1500);

        await using var second = new HealthProber(new LogLines());
        arrivals.Clear();
        second.Start([fast]);
        await WaitUntil(() => arrivals.Count >= 8, "eight checks at 200ms");
        var times = arrivals.ToArray();
        var gaps = new List<double>();
        for (int i = 1; i < times.Length; i++)
            gaps.Add(Stopwatch.GetElapsedTime(times[i - 1], times[i]).TotalMilliseconds);
        // 200ms +-10%: never early; late only by what a busy machine adds (a single timer can fire
        // 500ms+ late on this 2-core box even with no prober running), so the typical gap is what is held.
        Assert.All(gaps, gap => Assert.InRange(gap, 170, 2000));
        gaps.Sort();
        Assert.InRange(gaps[gaps.Count / 2], 175, 240);
    }

    [Fact]
    public async Task Upstream_without_health_config_is_never_probed()
    {
        int hits = 0;
        await using var backend = await TestBackend.StartAsync(context => { Interlocked.Increment(ref hits); return Task.CompletedTask; });
        await using var prober = new HealthProber(new LogLines());
        var upstream = new Upstream(new UpstreamConfig("plain", [new TargetConfig(new Uri(backend.Url), 1, Here)], false, TimeSpan.FromSeconds(30), Here));

        prober.Start([upstream]);
        await Task.Delay(1200, _timeout.Token);

        Assert.Equal(0, Volatile.Read(ref hits));
        Assert.Null(upstream.Targets[0].Health.LastCheckedAt);
    }

    [Fact]
    public async Task Dispose_cancels_a_check_in_flight_and_stops_probing()
    {
        int hits = 0;
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(context =>
        {
            Interlocked.Increment(ref hits);
            arrived.TrySetResult();
            return Task.Delay(Timeout.Infinite, context.RequestAborted);
        });
        var prober = new HealthProber(new LogLines());
        var upstream = UpstreamOf(backend.Url, Http("/healthz", intervalMs: 10_000, timeoutMs: 10_000));
        prober.Start([upstream]);
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(3), _timeout.Token);

        long started = Stopwatch.GetTimestamp();
        await prober.DisposeAsync();
        var disposal = Stopwatch.GetElapsedTime(started);
        await Task.Delay(300, _timeout.Token);

        Assert.InRange(disposal.TotalMilliseconds, 0, 1000);
        Assert.Equal(1, Volatile.Read(ref hits));
        // A cancelled check is not a verdict on the target.
        Assert.Null(upstream.Targets[0].Health.LastCheckedAt);
        Assert.Throws<ObjectDisposedException>(() => prober.Start([upstream]));
    }

    private static Upstream UpstreamOf(string url, HealthCheckConfig health) =>
        new(new UpstreamConfig("pool", [new TargetConfig(new Uri(url), 1, Here)], false, TimeSpan.FromSeconds(30), Here) { Health = health });

    private static HealthCheckConfig Http(string path, int expect = 0, int intervalMs = 100, int timeoutMs = 1000, int healthy = 1, int unhealthy = 1) =>
        new(path, TimeSpan.FromMilliseconds(intervalMs), TimeSpan.FromMilliseconds(timeoutMs), healthy, unhealthy, expect);

    private static HealthCheckConfig Tcp() =>
        new(null, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1), 1, 1, 0);

    /// <summary>A port nothing listens on: bound, read, released.</summary>

    private async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 5;
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline) Assert.Fail($"timed out waiting for: {what}");
            await Task.Delay(10, _timeout.Token);
        }
    }

    private static void InterlockedMax(ref int location, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref location)) < value && Interlocked.CompareExchange(ref location, value, seen) != seen) { }
    }

    /// <summary>Keeps every formatted log line, to check what an operator would read.</summary>
    private sealed class LogLines : ILogger
    {
        private readonly ConcurrentQueue<(LogLevel Level, string Text)> _lines = new();

        public IReadOnlyCollection<(LogLevel Level, string Text)> Lines => _lines;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue((logLevel, formatter(state, exception)));
    }
}
