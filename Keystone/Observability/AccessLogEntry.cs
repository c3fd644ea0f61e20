using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Keystone.Observability;

/// <summary>
/// Everything one access log line needs, captured cheaply on the request path; formatting happens on the
/// writer task. Null means unknown (no upstream, no body length, no Lua on the route...).
/// </summary>
public readonly record struct AccessLogEntry(
    DateTimeOffset Time,
    string RequestId,
    IPAddress? ClientIp,
    string Method,
    string Host,
    string Path,
    string Route,
    string? Upstream,
    string? Target,
    int Status,
    long? BytesIn,
    long? BytesOut,
    double TotalMs,
    double? UpstreamMs,
    double? LuaMs)
{
    private static readonly JsonEncodedText TimeKey = JsonEncodedText.Encode("time");
    private static readonly JsonEncodedText RequestIdKey = JsonEncodedText.Encode("request_id");
    private static readonly JsonEncodedText ClientIpKey = JsonEncodedText.Encode("client_ip");
    private static readonly JsonEncodedText MethodKey = JsonEncodedText.Encode("method");
    private static readonly JsonEncodedText HostKey = JsonEncodedText.Encode("host");
    private static readonly JsonEncodedText PathKey = JsonEncodedText.Encode("path");
    private static readonly JsonEncodedText RouteKey = JsonEncodedText.Encode("route");
    private static readonly JsonEncodedText UpstreamKey = JsonEncodedText.Encode("upstream");
    private static readonly JsonEncodedText TargetKey = JsonEncodedText.Encode("target");
    private static readonly JsonEncodedText StatusKey = JsonEncodedText.Encode("status");
    private static readonly JsonEncodedText BytesInKey = JsonEncodedText.Encode("bytes_in");
    private static readonly JsonEncodedText BytesOutKey = JsonEncodedText.Encode("bytes_out");
    private static readonly JsonEncodedText TotalMsKey = JsonEncodedText.Encode("total_ms");
    private static readonly JsonEncodedText UpstreamMsKey = JsonEncodedText.Encode("upstream_ms");
    private static readonly JsonEncodedText LuaMsKey = JsonEncodedText.Encode("lua_ms");

    /// <summary>Writes the entry as one JSON object; the writer's encoder escapes whatever clients sent.</summary>
    internal void WriteTo(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        Span<byte> scratch = stackalloc byte[64];

        // ISO-8601 UTC with milliseconds. "O" is the runtime's fast path (a custom pattern is parsed on every
        // call): it gives yyyy-MM-ddTHH:mm:ss.fffffffZ, cut here to the milliseconds.
        Time.UtcDateTime.TryFormat(scratch, out _, "O", CultureInfo.InvariantCulture);
        scratch[23] = (byte)'Z';
        json.WriteString(TimeKey, scratch[..24]);
        json.WriteString(RequestIdKey, RequestId);
        WriteClientIp(json, ClientIp, scratch);
        json.WriteString(MethodKey, Method);
        json.WriteString(HostKey, Host);
        json.WriteString(PathKey, Path);
        json.WriteString(RouteKey, Route);
        json.WriteString(UpstreamKey, Upstream);
        json.WriteString(TargetKey, Target);
        json.WriteNumber(StatusKey, Status);
        WriteNumber(json, BytesInKey, BytesIn);
        WriteNumber(json, BytesOutKey, BytesOut);
        WriteMilliseconds(json, TotalMsKey, TotalMs, scratch);
        WriteMilliseconds(json, UpstreamMsKey, UpstreamMs, scratch);
        WriteMilliseconds(json, LuaMsKey, LuaMs, scratch);

        json.WriteEndObject();
    }

    private static void WriteClientIp(Utf8JsonWriter json, IPAddress? ip, Span<byte> scratch)
    {
        if (ip is null)
        {
            json.WriteNull(ClientIpKey);
            return;
        }
        // Dual-mode sockets report IPv4 clients as ::ffff:a.b.c.d; operators grep for a.b.c.d.
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (ip.TryFormat(scratch, out int written))
            json.WriteString(ClientIpKey, scratch[..written]);
        else
            json.WriteString(ClientIpKey, ip.ToString());
    }

    private static void WriteNumber(Utf8JsonWriter json, JsonEncodedText key, long? value)
    {
        if (value is { } number) json.WriteNumber(key, number);
        else json.WriteNull(key);
    }

    private static void WriteMilliseconds(Utf8JsonWriter json, JsonEncodedText key, double? value, Span<byte> scratch)
    {
        // "F3" keeps a fixed three decimals (12.000, not 12); NaN and infinities are not JSON, so they are unknown.
        if (value is not { } ms || !double.IsFinite(ms) || !ms.TryFormat(scratch, out int written, "F3", CultureInfo.InvariantCulture))
        {
            json.WriteNull(key);
            return;
        }
        json.WritePropertyName(key);
        json.WriteRawValue(scratch[..written], skipInputValidation: true);
    }
}
