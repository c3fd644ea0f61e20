using System.Text;
using System.Text.Encodings.Web;

namespace Keystone;

/// <summary>Writes the JSON error body of every answer Keystone gives itself (DESIGN.md §5).</summary>
public static class ErrorResponse
{
    public static Task WriteAsync(HttpContext context, int status, string error, string requestId)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.Headers[Observability.RequestId.Header] = requestId;
        response.ContentType = "application/json";
        var body = Encoding.UTF8.GetBytes(
            $"{{\"error\":\"{JavaScriptEncoder.Default.Encode(error)}\",\"status\":{status},\"request_id\":\"{JavaScriptEncoder.Default.Encode(requestId)}\"}}");
        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body).AsTask();
    }
}
