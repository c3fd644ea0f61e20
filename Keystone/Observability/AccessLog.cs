using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading.Channels;

namespace Keystone.Observability;

/// <summary>
/// One JSON line per request, written off the request path: <see cref="Write"/> only enqueues into a bounded
/// queue, and a single writer task formats and writes batches to the sink. When the sink cannot keep up, lines
/// are dropped and counted; requests never wait for the log.
/// </summary>
public sealed class AccessLog : IAsyncDisposable
{
    public const int DefaultCapacity = 8192;

    // A batch goes to the sink when it reaches this size, or as soon as the queue is momentarily empty.
    private const int BatchBytes = 32 * 1024;

    /// <summary>How long lines gather between writes under load; also the most a line waits to appear.</summary>
    public static readonly TimeSpan GatherInterval = TimeSpan.FromMilliseconds(20);

    private static readonly JsonWriterOptions JsonOptions = new()
    {
        // Still escapes quotes, backslashes and control characters (valid JSON); leaves non-ASCII readable.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private readonly Stream _sink;
    private readonly Action? _onDropped;
    private readonly Channel<AccessLogEntry> _queue;
    private readonly ArrayBufferWriter<byte> _line = new(1024);
    private readonly ArrayBufferWriter<byte> _batch = new(BatchBytes * 2);
    private readonly Utf8JsonWriter _json;
    private readonly Task _writer;
    private int _batchLines;
    private long _dropped;
    private int _disposed;
    private volatile bool _abandoned;

    /// <param name="sink">Where lines go; the log owns it and disposes it once the writer has stopped.</param>
    /// <param name="capacity">Lines that may wait for the sink before new ones are dropped.</param>
    /// <param name="onDropped">Called once per dropped line, on whichever thread dropped it.</param>
    public AccessLog(Stream sink, int capacity = DefaultCapacity, Action? onDropped = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _sink = sink;
        _onDropped = onDropped;
        // Full mode Wait makes TryWrite answer false instead of dropping silently, so every loss is counted.
        _queue = Channel.CreateBounded<AccessLogEntry>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = false, // DisposeAsync drains what an abandoned writer left behind
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
        _json = new Utf8JsonWriter(_line, JsonOptions);
        _writer = Task.Run(RunAsync);
    }

    /// <summary>How long <see cref="DisposeAsync"/> lets queued lines drain before it gives up on them.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Lines lost so far: queue full, sink failed, or not written before shutdown gave up.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// The log for an <c>access_log</c> setting: null for <c>off</c>, standard output for <c>stdout</c>,
    /// else the file at that path, appended to (its directory must exist).
    /// </summary>
    public static AccessLog? Create(string setting, Action? onDropped = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(setting);
        if (setting.Equals("off", StringComparison.OrdinalIgnoreCase)) return null;
        if (setting.Equals("stdout", StringComparison.OrdinalIgnoreCase))
            return new AccessLog(Console.OpenStandardOutput(), onDropped: onDropped);
        return new AccessLog(OpenFile(setting), onDropped: onDropped);
    }

    private static FileStream OpenFile(string setting)
    {
        var path = Path.GetFullPath(setting);
        var directory = Path.GetDirectoryName(path);
        if (directory is not null && !Directory.Exists(directory))
            throw new IOException($"access_log: cannot open '{setting}': directory '{directory}' does not exist");
        try
        {
            // Unbuffered: batches are already large, and a line must not sit in a second buffer after a flush.
            // OpenOrCreate rather than Append so the writer can seek to the end again after a copytruncate rotation.
            var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, bufferSize: 0);
            if (file.CanSeek) file.Seek(0, SeekOrigin.End);
            return file;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"access_log: cannot open '{setting}' for appending: {e.Message}", e);
        }
    }

    /// <summary>Queues one line. Never blocks and never throws: when the queue is full the line is dropped and counted.</summary>
    public void Write(in AccessLogEntry entry)
    {
        if (!_queue.Writer.TryWrite(entry)) Drop(1);
    }

    /// <summary>Stops taking lines, drains the queue for at most <see cref="DrainTimeout"/>, flushes and closes the sink.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _queue.Writer.TryComplete();
        if (!await StoppedWithin(DrainTimeout))
        {
            // The sink is too slow or stuck: stop after the write in progress and count the rest as dropped.
            _abandoned = true;
            await StoppedWithin(TimeSpan.FromMilliseconds(500));
            while (_queue.Reader.TryRead(out _)) Drop(1);
        }
        // A writer still blocked in the sink keeps it; closing it underneath would only race that write.
        if (!_writer.IsCompleted) return;
        try
        {
            await _sink.DisposeAsync();
        }
        catch (Exception)
        {
            // Nothing left to tell: the lines it refused were already counted.
        }
        _json.Dispose();
    }

    private async Task<bool> StoppedWithin(TimeSpan timeout)
    {
        await Task.WhenAny(_writer, Task.Delay(timeout));
        return _writer.IsCompleted;
    }

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        while (!_abandoned && await reader.WaitToReadAsync())
        {
            while (!_abandoned && reader.TryRead(out var entry))
            {
                Append(entry);
                if (_batch.WrittenCount >= BatchBytes) WriteBatch(flush: false);
            }
            // Momentarily empty: hand the batch over now so lines show up promptly at low traffic.
            if (!_abandoned) WriteBatch(flush: true);
            // Then let lines gather for a moment. Waking for every line would cost each request a
            // thread-pool hop; this way a busy gateway pays one wake-up per interval.
            if (!_abandoned && !reader.Completion.IsCompleted) await Task.Delay(GatherInterval);
        }
        if (_batchLines > 0)
        {
            Drop(_batchLines);
            _batchLines = 0;
        }
        while (reader.TryRead(out _)) Drop(1);
    }

    private void Append(in AccessLogEntry entry)
    {
        // Each line is formatted apart, so one that fails cannot leave half an object in the batch.
        _line.ResetWrittenCount();
        _json.Reset(_line);
        try
        {
            entry.WriteTo(_json);
            _json.Flush();
        }
        catch (Exception)
        {
            // Not expected (the encoder replaces even lone surrogates), but a line is never worth the writer task.
            Drop(1);
            return;
        }
        _batch.Write(_line.WrittenSpan);
        _batch.GetSpan(1)[0] = (byte)'\n';
        _batch.Advance(1);
        _batchLines++;
    }

    private void WriteBatch(bool flush)
    {
        if (_batchLines == 0) return;
        try
        {
            // A file rotated by copytruncate shrinks under us; writing at our old offset would leave a hole.
            if (_sink is FileStream { CanSeek: true } file) file.Seek(0, SeekOrigin.End);
            _sink.Write(_batch.WrittenSpan);
            if (flush) _sink.Flush();
        }
        catch (Exception)
        {
            // Whatever the sink throws (disk full, closed pipe, a broken custom stream), the log keeps going.
            Drop(_batchLines);
        }
        _batch.ResetWrittenCount();
        _batchLines = 0;
    }

    private void Drop(int lines)
    {
        Interlocked.Add(ref _dropped, lines);
        if (_onDropped is null) return;
        for (int i = 0; i < lines; i++)
        {
            try
            {
                _onDropped();
            }
            catch (Exception)
            {
                // A failing counter must not turn a dropped log line into a failed request.
            }
        }
    }
}
