using System.Text.Encodings.Web;
using System.Text.Json;
using Keystone.Observability;

namespace Keystone.Admin;

/// <summary>
/// The admin listener's one RequestDelegate: /metrics, /health and /ready for probes and scrapers, and
/// the bearer-protected /admin/* API for operators.
/// </summary>
public sealed class AdminEndpoints
{
    private readonly Gateway _gateway;
    private readonly Reloader _reloader;
    private readonly AdminAuth _auth;

    public AdminEndpoints(Gateway gateway, Reloader reloader, AdminAuth auth)
    {
        _gateway = gateway;
        _reloader = reloader;
        _auth = auth;
    }

    public static bool IsMetricsRequest(HttpRequest request) =>
        request.Path.Equals("/metrics", StringComparison.Ordinal) && HttpMethods.IsGet(request.Method);

    public static async Task WriteMetricsAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await GatewayMetrics.ExportAsync(context.Response.Body, context.RequestAborted);
    }

    public Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        var requestId = RequestId.Resolve(context);
        context.Response.Headers[RequestId.Header] = requestId;

        if (path.StartsWith("/admin/", StringComparison.Ordinal) && !_auth.Allows(request))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            return ErrorResponse.WriteAsync(context, 401, "admin token required", requestId);
        }

        // HEAD is a GET without the body (Kestrel drops it): load balancers probe with either.
        bool get = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method);
        return (path, get) switch
        {
            ("/metrics", true) => WriteMetricsAsync(context),
            ("/health", true) => WriteJsonAsync(context, 200, static w => w.WriteString("status", "ok")),
            ("/ready", true) => WriteReadyAsync(context),
            ("/admin/routes", true) => WriteJsonAsync(context, 200, w => AdminReports.Routes(w, _gateway.Current, _reloader)),
            ("/admin/upstreams", true) => WriteJsonAsync(context, 200, w => AdminReports.Upstreams(w, _gateway.Current)),
            ("/admin/scripts", true) => WriteJsonAsync(context, 200, w => AdminReports.Scripts(w, _gateway.Current)),
            ("/admin/reload", false) when HttpMethods.IsPost(request.Method) => ReloadAsync(context),
            ("/metrics" or "/health" or "/ready" or "/admin/routes" or "/admin/upstreams" or "/admin/scripts" or "/admin/reload", _) =>
                MethodNotAllowed(context, path == "/admin/reload" ? "POST" : "GET", requestId),
            _ => ErrorResponse.WriteAsync(context, 404, "no such admin endpoint", requestId),
        };
    }

    private Task WriteReadyAsync(HttpContext context)
    {
        var snapshot = _gateway.Current;
        bool ready = AdminReports.IsReady(snapshot);
        return WriteJsonAsync(context, ready ? 200 : 503, w => AdminReports.Readiness(w, snapshot, ready));
    }

    private Task ReloadAsync(HttpContext context)
    {
        var result = _reloader.Reload("admin API");
        return WriteJsonAsync(context, result.Ok ? 200 : 422, w => AdminReports.Reload(w, result));
    }

    private static Task MethodNotAllowed(HttpContext context, string allow, string requestId)
    {
        context.Response.Headers.Allow = allow;
        return ErrorResponse.WriteAsync(context, 405, "method not allowed", requestId);
    }

    private static async Task WriteJsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        writer.WriteStartObject();
        body(writer);
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted);
    }
}
