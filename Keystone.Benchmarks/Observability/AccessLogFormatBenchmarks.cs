using System.Buffers;
using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Keystone.Observability;

namespace Keystone.Benchmarks.Observability;

/// <summary>The access log writer task's cost per line: formatting one entry as JSON.</summary>
[MemoryDiagnoser]
public class AccessLogFormatBenchmarks
{
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private Utf8JsonWriter _json = null!;
    private AccessLogEntry _entry;

    [GlobalSetup]
    public void Setup()
    {
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        _entry = new AccessLogEntry(DateTimeOffset.UtcNow, "0HNQA7T51AP29:00000001", IPAddress.Loopback, "GET", "example.com",
            "/api/hello", "api", "backend", "127.0.0.1:18080", 200, null, 6, 0.812, 0.640, null);
    }

    [Benchmark]
    public int FormatLine()
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        _entry.WriteTo(_json);
        _json.Flush();
        return _buffer.WrittenCount;
    }
}
