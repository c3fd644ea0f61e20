using System.Diagnostics;
using System.Net;

namespace Keystone.Tests.Integration;

/// <summary>
/// An endless stream whose byte at any offset is known: a pseudo-random block repeated. Its period is a prime, so
/// no buffer size lines up with it and a lost, repeated or reordered chunk shows up as a mismatch.
/// </summary>
internal static class StreamPattern
{
    public const int Period = 65_521;
    public const int MaxSlice = 128 * 1024;

    // The block, tiled far enough that any slice up to MaxSlice starting inside the first period is contiguous.
    private static readonly byte[] Tiled = Build();

    /// <summary>The <paramref name="length"/> bytes at <paramref name="offset"/> (length at most <see cref="MaxSlice"/>).</summary>
    public static ReadOnlyMemory<byte> At(long offset, int length) => Tiled.AsMemory((int)(offset % Period), length);

    private static byte[] Build()
    {
        var block = new byte[Period];
        new Random(20_240_611).NextBytes(block);
        var tiled = new byte[Period + MaxSlice];
        for (int i = 0; i < tiled.Length; i++) tiled[i] = block[i % Period];
        return tiled;
    }
}

/// <summary>Checks received bytes against <see cref="StreamPattern"/> as they arrive, keeping nothing but counters.</summary>
internal sealed class PatternCheck
{
    public long Count { get; private set; }

    /// <summary>Offset of the first byte that differs from the pattern; -1 when none has.</summary>
    public long FirstMismatch { get; private set; } = -1;

    public void Append(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = Math.Min(data.Length, StreamPattern.MaxSlice);
            var expected = StreamPattern.At(Count, n).Span;
            if (FirstMismatch < 0 && !data[..n].SequenceEqual(expected))
                FirstMismatch = Count + data[..n].CommonPrefixLength(expected);
            Count += n;
            data = data[n..];
        }
    }

    public override string ToString() => $"{Count} bytes, first mismatch at {FirstMismatch}";
}

/// <summary>A request body of <see cref="StreamPattern"/> bytes, produced as it is sent and never held.</summary>
internal sealed class PatternContent : HttpContent
{
    private const int Chunk = 64 * 1024;
    private readonly long _length;
    private readonly bool _announceLength;

    public PatternContent(long length, bool announceLength = true)
    {
        _length = length;
        _announceLength = announceLength;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        for (long sent = 0; sent < _length;)
        {
            int n = (int)Math.Min(Chunk, _length - sent);
            await stream.WriteAsync(StreamPattern.At(sent, n), cancellationToken);
            sent += n;
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _length;
        return _announceLength;
    }
}

/// <summary>
/// Samples the process's managed heap while a transfer runs. Keystone, the backend and the client share this
/// process, so a body buffered anywhere along the way shows up here.
/// </summary>
internal sealed class HeapWatch : IAsyncDisposable
{
    private readonly long _baseline;
    private readonly long _baselineWorkingSet;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampler;
    private long _peak;
    private long _peakWorkingSet;

    public HeapWatch()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        _baseline = _peak = GC.GetTotalMemory(false);
        _baselineWorkingSet = _peakWorkingSet = Environment.WorkingSet;
        _sampler = Task.Run(SampleAsync);
    }

    /// <summary>Highest managed heap size seen, above the heap at the start.</summary>
    public long PeakGrowth => Interlocked.Read(ref _peak) - _baseline;

    /// <summary>Highest working set seen, above the one at the start (native buffers and GC segments included).</summary>
    public long PeakWorkingSetGrowth => Interlocked.Read(ref _peakWorkingSet) - _baselineWorkingSet;

    private async Task SampleAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                Sample();
            }
        }
        catch (OperationCanceledException) { }
    }

    private void Sample()
    {
        long heap = GC.GetTotalMemory(false);
        if (heap > Interlocked.Read(ref _peak)) Interlocked.Exchange(ref _peak, heap);
        long ws = Environment.WorkingSet;
        if (ws > Interlocked.Read(ref _peakWorkingSet)) Interlocked.Exchange(ref _peakWorkingSet, ws);
    }

    /// <summary>Takes a last sample and stops; the peaks stay readable.</summary>
    public async Task StopAsync()
    {
        if (_stop.IsCancellationRequested) return;
        Sample();
        _stop.Cancel();
        await _sampler;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    public override string ToString() =>
        $"managed heap peak +{PeakGrowth / (1024 * 1024)} MiB, working set peak +{PeakWorkingSetGrowth / (1024 * 1024)} MiB";
}

internal static class Throughput
{
    public static string Describe(long bytes, Stopwatch clock) =>
        $"{bytes / (1024 * 1024)} MiB in {clock.Elapsed.TotalSeconds:F1} s ({bytes / (1024.0 * 1024) / clock.Elapsed.TotalSeconds:F0} MiB/s)";
}
