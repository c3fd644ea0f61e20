using System.Text.Json;
using Keystone.Tests.Observability;

namespace Keystone.Tests.Admin;

/// <summary>A JSON answer of the admin listener (or of Keystone's error bodies).</summary>
public sealed record JsonAnswer(int Status, JsonElement Body, HttpResponseMessage Response, string Text);

/// <summary>Small helpers shared by the admin and metrics tests.</summary>
public static class AdminHttp
{
    public static async Task<JsonAnswer> GetJsonAsync(HttpClient client, string path, CancellationToken cancel, string? bearer = null) =>
        await SendJsonAsync(client, HttpMethod.Get, path, cancel, bearer);

    public static async Task<JsonAnswer> SendJsonAsync(HttpClient client, HttpMethod method, string path, CancellationToken cancel, string? bearer = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (bearer is not null) request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
        var response = await client.SendAsync(request, cancel);
        var text = await response.Content.ReadAsStringAsync(cancel);
        Assert.True(response.Content.Headers.ContentType?.MediaType == "application/json",
            $"{method} {path} answered {(int)response.StatusCode} with content type '{response.Content.Headers.ContentType}', not JSON: {text}");
        JsonElement body;
        try
        {
            using var doc = JsonDocument.Parse(text);
            body = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"{method} {path} answered invalid JSON ({e.Message}): {text}");
        }
        return new JsonAnswer((int)response.StatusCode, body, response, text);
    }

    /// <summary>Repeats <paramref name="probe"/> until it returns a non-null value or <paramref name="within"/> passes; then fails with <paramref name="what"/> and the last observation.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<(bool Done, T Value)>> probe, TimeSpan within, string what, CancellationToken cancel)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var (done, value) = await probe();
            if (done) return value;
            if (DateTime.UtcNow > deadline || cancel.IsCancellationRequested)
                throw new Xunit.Sdk.XunitException($"timed out after {within.TotalSeconds:0.#}s waiting for {what}; last seen: {Describe(value)}");
            await Task.Delay(50, CancellationToken.None);
        }
    }

    /// <summary>Scrapes <c>/metrics</c> until <paramref name="done"/> holds (metrics are recorded just after a response is sent) or 5 s pass; returns the last scrape either way.</summary>
    public static async Task<PromExposition> ScrapeUntilAsync(HttpClient client, Func<PromExposition, bool> done, CancellationToken cancel)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            var (metrics, _) = await PromExposition.ScrapeAsync(client, cancel);
            if (done(metrics) || DateTime.UtcNow > deadline || cancel.IsCancellationRequested) return metrics;
            await Task.Delay(50, CancellationToken.None);
        }
    }

    /// <summary>A loopback port nothing listens on (bound and released, so the kernel just handed it out).</summary>

    /// <summary>A name unique to one test, so its metric label sets are its own in this process-global registry.</summary>
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    private static string Describe(object? value) => value switch
    {
        null => "nothing",
        JsonAnswer a => $"{a.Status} {a.Text}",
        _ => value.ToString() ?? "",
    };
}
