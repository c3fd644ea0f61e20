using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Keystone.Observability;

namespace Keystone.Tests.Observability;

public sealed class AccessLogTests
{
    private static readonly string[] Keys =
    [
        "time", "request_id", "client_ip", "method", "host", "path", "route", "upstream", "target",
        "status", "bytes_in", "bytes_out", "total_ms", "upstream_ms", "lua_ms",
    ];

    private static AccessLogEntry Entry(string requestId = "req-1", string host = "api.example.com", string path = "/users/42") => new(
        Time: new DateTimeOffset(2024, 5, 1, 14, 34, 56, 789, TimeSpan.FromHours(2)),
        RequestId: requestId,
        ClientIp: IPAddress.Parse("203.0.113.7"),
        Method: "GET",
        Host: host,
        Path: path,
        Route: "users",
        Upstream: "backend",
        Target: "http://10.0.0.5:8080",
        Status: 200,
        BytesIn: 0,
        BytesOut: 1234,
        TotalMs: 12.3456,
        UpstreamMs: 10,
        LuaMs: 0.5);

    [Fact]
    public async Task Every_field_is_written_with_its_value()
    {
        var sink = new RecordingStream();
        await using (var log = new AccessLog(sink)) log.Write(Entry());

        var line = Assert.Single(sink.Lines());
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        Assert.Equal(Keys, root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("2024-05-01T12:34:56.789Z", root.GetProperty("time").GetString());
        Assert.Equal("req-1", root.GetProperty("request_id").GetString());
        Assert.Equal("203.0.113.7", root.GetProperty("client_ip").GetString());
        Assert.Equal("GET", root.GetProperty("method").GetString());
        Assert.Equal("api.example.com", root.GetProperty("host").GetString());
        Assert.Equal("/users/42", root.GetProperty("path").GetString());
        Assert.Equal("users", root.GetProperty("route").GetString());
        Assert.Equal("backend", root.GetProperty("upstream").GetString());
        Assert.Equal("http://10.0.0.5:8080", root.GetProperty("target").GetString());
        Assert.Equal(200, root.GetProperty("status").GetInt32());
        Assert.Equal(0, root.GetProperty("bytes_in").GetInt64());
        Assert.Equal(1234, root.GetProperty("bytes_out").GetInt64());
        // Milliseconds keep exactly three decimals.
        Assert.Equal("12.346", root.GetProperty("total_ms").GetRawText());
        Assert.Equal("10.000", root.GetProperty("upstream_ms").GetRawText());
        Assert.Equal("0.500", root.GetProperty("lua_ms").GetRawText());
    }

    [Fact]
    public async Task Unknown_values_are_null_and_keys_are_still_present()
    {
        var sink = new RecordingStream();
        await using (var log = new AccessLog(sink))
        {
            log.Write(Entry() with
            {
                ClientIp = null,
                Upstream = null,
                Target = null,
                BytesIn = null,
                BytesOut = null,
                UpstreamMs = null,
                LuaMs = double.NaN,
                TotalMs = double.PositiveInfinity,
            });
        }

        using var doc = JsonDocument.Parse(Assert.Single(sink.Lines()));
        var root = doc.RootElement;
        Assert.Equal(Keys, root.EnumerateObject().Select(p => p.Name));
        foreach (var key in new[] { "client_ip", "upstream", "target", "bytes_in", "bytes_out", "total_ms", "upstream_ms", "lua_ms" })
            Assert.Equal(JsonValueKind.Null, root.GetProperty(key).ValueKind);
    }

    [Theory]
    [InlineData("::ffff:192.0.2.1", "192.0.2.1")]
    [InlineData("2001:db8::1", "2001:db8::1")]
    [InlineData("127.0.0.1", "127.0.0.1")]
    public async Task Client_ip_is_written_as_operators_grep_for_it(string ip, string expected)
    {
        var sink = new RecordingStream();
        await using (var log = new AccessLog(sink)) log.Write(Entry() with { ClientIp = IPAddress.Parse(ip) });

        using var doc = JsonDocument.Parse(Assert.Single(sink.Lines()));
        Assert.Equal(expected, doc.RootElement.GetProperty("client_ip").GetString());
    }

    [Theory]
    [InlineData("/a\"b\\c")]
    [InlineData("/line\nbreak\r\n{\"injected\":true}")]
    [InlineData("/ctl\u0000\u0001\u001b[31m\t\u007f")]
    [InlineData("/caf\u00e9/\u6f22\u5b57/\U0001F600")]
    [InlineData("/sep\u2028\u2029</script>&'")]
    public async Task Hostile_path_and_host_stay_one_valid_json_line(string hostile)
    {
        var sink = new RecordingStream();
        await using (var log = new AccessLog(sink))
            log.Write(Entry(host: "h" + hostile, path: hostile) with { Route = hostile, Target = hostile });

        var line = Assert.Single(sink.Lines());
        using var doc = JsonDocument.Parse(line);
        Assert.Equal(hostile, doc.RootElement.GetProperty("path").GetString());
        Assert.Equal("h" + hostile, doc.RootElement.GetProperty("host").GetString());
        Assert.Equal(hostile, doc.RootElement.GetProperty("route").GetString());
        Assert.Equal(hostile, doc.RootElement.GetProperty("target").GetString());
    }

    [Fact]
    public async Task Lone_surrogates_become_replacement_characters_not_broken_lines()
    {
        var sink = new RecordingStream();
        await using (var log = new AccessLog(sink)) log.Write(Entry(path: "/bad\ud800end"));

        using var doc = JsonDocument.Parse(Assert.Single(sink.Lines()));
        Assert.Equal("/bad\ufffdend", doc.RootElement.GetProperty("path").GetString());
    }

    [Fact]
    public async Task Many_entries_come_out_in_order()
    {
        const int count = 5000;
        var sink = new RecordingStream();
        await using (var log = new AccessLog(sink))
        {
            for (int i = 0; i < count; i++) log.Write(Entry(requestId: i.ToString()));
            Assert.Equal(0, log.Dropped);
        }

        var ids = sink.Lines().Select(l => JsonDocument.Parse(l).RootElement.GetProperty("request_id").GetString()).ToList();
        Assert.Equal(Enumerable.Range(0, count).Select(i => i.ToString()), ids);
    }

    [Fact]
    public async Task A_line_shows_up_promptly_without_waiting_for_more_traffic()
    {
        var sink = new RecordingStream();
        await using var log = new AccessLog(sink);
        log.Write(Entry());

        await Eventually(() => sink.Lines().Count == 1 && sink.Flushes > 0);
    }

    [Fact]
    public async Task Slow_sink_never_slows_writers_and_every_missing_line_is_counted()
    {
        const int count = 10_000;
        long callbacks = 0;
        var sink = new RecordingStream { WriteDelay = TimeSpan.FromMilliseconds(50) };
        var log = new AccessLog(sink, onDropped: () => Interlocked.Increment(ref callbacks)) { DrainTimeout = TimeSpan.FromMilliseconds(500) };

        var clock = Stopwatch.StartNew();
        for (int i = 0; i < count; i++) log.Write(Entry(requestId: i.ToString()));
        clock.Stop();
        var shutdown = Stopwatch.StartNew();
        await log.DisposeAsync();
        shutdown.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"10,000 writes took {clock.Elapsed}");
        Assert.True(shutdown.Elapsed < TimeSpan.FromSeconds(3), $"dispose took {shutdown.Elapsed}");
        var written = sink.Lines();
        Assert.True(log.Dropped > 0);
        Assert.Equal(count - written.Count, log.Dropped);
        Assert.Equal(log.Dropped, Interlocked.Read(ref callbacks));
        // What did get through is intact and in order.
        var ids = written.Select(l => int.Parse(JsonDocument.Parse(l).RootElement.GetProperty("request_id").GetString()!)).ToList();
        Assert.Equal(ids.Order(), ids);
    }

    [Fact]
    public async Task Sink_stuck_forever_bounds_dispose_and_accounts_for_every_line_once_it_moves()
    {
        const int count = 300;
        var sink = new RecordingStream { Gate = new ManualResetEventSlim(false) };
        var log = new AccessLog(sink, capacity: 100) { DrainTimeout = TimeSpan.FromMilliseconds(200) };
        for (int i = 0; i < count; i++) log.Write(Entry(requestId: i.ToString()));

        var shutdown = Stopwatch.StartNew();
        await log.DisposeAsync();
        Assert.True(shutdown.Elapsed < TimeSpan.FromSeconds(3), $"dispose took {shutdown.Elapsed}");
        log.Write(Entry()); // after dispose: dropped, not thrown
        Assert.True(log.Dropped > 0);

        sink.Gate.Set();
        await Eventually(() => sink.Lines().Count + log.Dropped == count + 1);
    }

    [Fact]
    public async Task Throwing_sink_counts_drops_and_the_writer_keeps_going()
    {
        long callbacks = 0;
        var sink = new RecordingStream { FailingWrites = 1 };
        var log = new AccessLog(sink, onDropped: () => Interlocked.Increment(ref callbacks));
        for (int i = 0; i < 10; i++) log.Write(Entry(requestId: "lost"));
        await Eventually(() => sink.WriteCalls >= 1);
        await Eventually(() => sink.Lines().Count + log.Dropped == 10);

        log.Write(Entry(requestId: "kept"));
        await log.DisposeAsync();

        Assert.Contains(sink.Lines(), l => l.Contains("\"kept\"", StringComparison.Ordinal));
        Assert.True(log.Dropped > 0);
        Assert.Equal(11 - sink.Lines().Count, log.Dropped);
        Assert.Equal(log.Dropped, Interlocked.Read(ref callbacks));
    }

    [Fact]
    public async Task Sink_that_always_throws_loses_every_line_but_not_the_process()
    {
        var sink = new RecordingStream { FailingWrites = int.MaxValue };
        var log = new AccessLog(sink, onDropped: () => throw new InvalidOperationException("broken counter"));
        for (int i = 0; i < 100; i++) log.Write(Entry());
        await log.DisposeAsync();

        Assert.Equal(100, log.Dropped);
        Assert.Empty(sink.Lines());
    }

    [Fact]
    public async Task Dispose_flushes_lines_still_queued()
    {
        var sink = new RecordingStream { Gate = new ManualResetEventSlim(false) };
        var log = new AccessLog(sink);
        for (int i = 0; i < 200; i++) log.Write(Entry(requestId: i.ToString()));

        var disposing = log.DisposeAsync().AsTask();
        await Task.Delay(100);
        Assert.False(disposing.IsCompleted);
        sink.Gate.Set();
        await disposing;

        Assert.Equal(200, sink.Lines().Count);
        Assert.Equal(0, log.Dropped);
        Assert.True(sink.Disposed);
    }

    [Fact]
    public async Task Write_after_dispose_is_dropped_not_thrown()
    {
        var log = new AccessLog(new RecordingStream());
        await log.DisposeAsync();
        log.Write(Entry());
        await log.DisposeAsync();
        Assert.Equal(1, log.Dropped);
    }

    [Theory]
    [InlineData("off")]
    [InlineData("OFF")]
    public void Off_means_no_log(string setting) => Assert.Null(AccessLog.Create(setting));

    [Fact]
    public async Task Stdout_setting_gives_a_log()
    {
        var log = AccessLog.Create("stdout");
        Assert.NotNull(log);
        await log.DisposeAsync();
    }

    [Fact]
    public async Task File_sink_appends_to_what_is_already_there()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "access.log");
        await File.WriteAllTextAsync(path, "earlier\n");

        await using (var log = AccessLog.Create(path)!) log.Write(Entry(requestId: "a"));
        await using (var log = AccessLog.Create(path)!) log.Write(Entry(requestId: "b"));

        var lines = await File.ReadAllLinesAsync(path);
        Assert.Equal(3, lines.Length);
        Assert.Equal("earlier", lines[0]);
        Assert.Equal("a", JsonDocument.Parse(lines[1]).RootElement.GetProperty("request_id").GetString());
        Assert.Equal("b", JsonDocument.Parse(lines[2]).RootElement.GetProperty("request_id").GetString());
    }

    [Fact]
    public async Task File_truncated_by_log_rotation_is_written_from_its_new_end()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "access.log");
        await using (var log = AccessLog.Create(path)!)
        {
            log.Write(Entry(requestId: "before"));
            await Eventually(() => new FileInfo(path).Length > 0);
            // What logrotate's copytruncate does.
            using (var rotate = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite)) rotate.SetLength(0);
            log.Write(Entry(requestId: "after"));
        }

        var text = await File.ReadAllTextAsync(path);
        Assert.DoesNotContain('\0', text);
        var line = Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("after", JsonDocument.Parse(line).RootElement.GetProperty("request_id").GetString());
    }

    [Fact]
    public void Missing_directory_is_a_clear_io_error()
    {
        using var dir = new TempDirectory();
        var missing = Path.Combine(dir.Path, "nope");
        var error = Assert.Throws<IOException>(() => AccessLog.Create(Path.Combine(missing, "access.log")));
        Assert.Contains(missing, error.Message);
        Assert.Contains("does not exist", error.Message);
        Assert.False(Directory.Exists(missing));
    }

    private static async Task Eventually(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "condition not met within 10 s");
            await Task.Delay(10);
        }
    }

    /// <summary>A sink that records what reaches it and can be slow, stuck or failing.</summary>
    private sealed class RecordingStream : Stream
    {
        private readonly MemoryStream _bytes = new();
        private int _failingWrites;
        private int _writeCalls;
        private int _flushes;

        public TimeSpan WriteDelay { get; init; }
        public ManualResetEventSlim? Gate { get; init; }
        public int FailingWrites { init => _failingWrites = value; }
        public int WriteCalls => Volatile.Read(ref _writeCalls);
        public int Flushes => Volatile.Read(ref _flushes);
        public bool Disposed { get; private set; }

        public List<string> Lines()
        {
            string text;
            lock (_bytes) text = Encoding.UTF8.GetString(_bytes.GetBuffer(), 0, (int)_bytes.Length);
            Assert.True(text.Length == 0 || text.EndsWith('\n'), "output ends mid-line");
            return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Interlocked.Increment(ref _writeCalls);
            Gate?.Wait();
            if (WriteDelay > TimeSpan.Zero) Thread.Sleep(WriteDelay);
            if (Interlocked.Decrement(ref _failingWrites) >= 0) throw new IOException("disk full");
            lock (_bytes) _bytes.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Flush() => Interlocked.Increment(ref _flushes);
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }

    private sealed class TempDirectory : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("keystone-access-log-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
