using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Keystone.Tests.Integration;

/// <summary>What a <see cref="RecordingBackend"/> received.</summary>
public sealed record ReceivedRequest(string Path, string Query, Dictionary<string, string> Headers, string Body);

/// <summary>
/// A backend that records every request it gets and answers 200 with it as JSON, or (echoBody) with the request
/// body itself under the request's content type. <c>decorate</c> may add headers or change the status first.
/// </summary>
public sealed class RecordingBackend : IAsyncDisposable
{
    private readonly ConcurrentQueue<ReceivedRequest> _requests = new();
    private TestBackend _backend = null!;

    public string Url => _backend.Url;
    public IReadOnlyCollection<ReceivedRequest> Requests => _requests;

    public static async Task<RecordingBackend> StartAsync(string name, Action<HttpResponse>? decorate = null, bool echoBody = false)
    {
        var recorder = new RecordingBackend();
        recorder._backend = await TestBackend.StartAsync(async context =>
        {
            var request = context.Request;
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var h in request.Headers) headers[h.Key] = h.Value.ToString();
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            recorder._requests.Enqueue(new ReceivedRequest(request.Path.Value ?? "", request.QueryString.Value ?? "", headers, body));

            var response = context.Response;
            response.Headers["X-Backend"] = name;
            decorate?.Invoke(response);
            if (echoBody)
            {
                response.ContentType = request.ContentType;
                await response.WriteAsync(body, context.RequestAborted);
                return;
            }
            await response.WriteAsJsonAsync(new { backend = name, path = request.Path.Value, query = request.QueryString.Value, headers, body }, context.RequestAborted);
        });
        return recorder;
    }

    public ValueTask DisposeAsync() => _backend.DisposeAsync();
}
