using System.Text.Json;
using Xunit;

namespace Keystone.Tests.Integration;

/// <summary>Checks an answer Keystone wrote itself: DESIGN.md §5's JSON body, agreeing with the X-Request-Id header.</summary>
internal static class ErrorBody
{
    public static async Task<JsonElement> AssertAsync(HttpResponseMessage response, int status, CancellationToken cancellationToken)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.TryGetValues("X-Request-Id", out var ids), "no X-Request-Id header");
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        return Check(status, Assert.Single(ids), body);
    }

    public static JsonElement Check(RawResponse response, int status)
    {
        Assert.Equal(status, response.Status);
        Assert.StartsWith("application/json", response.Header("Content-Type"));
        return Check(status, Assert.Single(response.Values("X-Request-Id")), response.BodyText);
    }

    private static JsonElement Check(int status, string requestIdHeader, string body)
    {
        using var document = JsonDocument.Parse(body);
        var root = document.RootElement.Clone();
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        Assert.False(string.IsNullOrWhiteSpace(root.GetProperty("error").GetString()), $"empty error text in {body}");
        Assert.Equal(status, root.GetProperty("status").GetInt32());
        Assert.Equal(requestIdHeader, root.GetProperty("request_id").GetString());
        return root;
    }
}
