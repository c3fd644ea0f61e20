namespace Keystone.Proxy;

/// <summary>
/// An upstream's two waits when they differ: <see cref="FirstByte"/> (<c>timeout</c>) for the response headers and
/// <see cref="Idle"/> (<c>idle_timeout</c>) between reads of the response body. YARP's activity timeout watches
/// both phases with one value, the larger of the two; <see cref="UpstreamTimeoutHandler"/> enforces the smaller
/// one in its own phase. When both are equal (the default) the handler does nothing.
/// </summary>
public sealed record UpstreamTimeouts(TimeSpan FirstByte, TimeSpan Idle)
{
    public TimeSpan Activity => FirstByte > Idle ? FirstByte : Idle;
}

/// <summary>Sits in front of the shared upstream client; the limits ride on each request, like <c>connect_timeout</c>.</summary>
public sealed class UpstreamTimeoutHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    public static readonly HttpRequestOptionsKey<UpstreamTimeouts> Key = new("keystone.timeouts");

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!request.Options.TryGetValue(Key, out var timeouts)) return base.SendAsync(request, cancellationToken);
        return SendWithTimeoutsAsync(request, timeouts, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendWithTimeoutsAsync(HttpRequestMessage request, UpstreamTimeouts timeouts, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        // With a request body, the wait includes the upload; YARP's activity timeout bounds its gaps instead.
        if (timeouts.FirstByte < timeouts.Idle && request.Content is null)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(timeouts.FirstByte);
            try
            {
                response = await base.SendAsync(request, limit.Token);
            }
            catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new UpstreamTimeoutException($"no response headers within {timeouts.FirstByte.TotalMilliseconds:0}ms");
            }
        }
        else
        {
            response = await base.SendAsync(request, cancellationToken);
        }
        if (timeouts.Idle < timeouts.FirstByte) response.Content = new IdleTimeoutContent(response.Content, timeouts.Idle);
        return response;
    }
}

/// <summary>The upstream took longer than a configured limit; the gateway answers 504 when nothing was sent yet.</summary>
public class UpstreamTimeoutException(string message) : IOException(message);

/// <summary>A response body whose every read must make progress within the idle limit.</summary>
internal sealed class IdleTimeoutContent : HttpContent
{
    private readonly HttpContent _inner;
    private readonly TimeSpan _idle;

    public IdleTimeoutContent(HttpContent inner, TimeSpan idle)
    {
        _inner = inner;
        _idle = idle;
        foreach (var header in inner.Headers) Headers.TryAddWithoutValidation(header.Key, header.Value);
    }

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
        new IdleTimeoutStream(await _inner.ReadAsStreamAsync(cancellationToken), _idle);

    protected override async Task<Stream> CreateContentReadStreamAsync() => await CreateContentReadStreamAsync(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => _inner.CopyToAsync(stream);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }
}

internal sealed class IdleTimeoutStream(Stream inner, TimeSpan idle) : Stream
{
    private CancellationTokenSource _limit = new();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _limit.CancelAfter(idle);
        using var forward = cancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _limit);
        try
        {
            return await inner.ReadAsync(buffer, _limit.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UpstreamTimeoutException($"the response body was idle for more than {idle.TotalMilliseconds:0}ms");
        }
        finally
        {
            _limit.CancelAfter(Timeout.InfiniteTimeSpan);
            // The timer may have fired just as the read completed; the next read gets a fresh limit.
            if (_limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                _limit.Dispose();
                _limit = new CancellationTokenSource();
            }
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _limit.Dispose();
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
