namespace Keystone.Observability;

/// <summary>
/// The id that ties a request's logs, error body and upstream call together: a well-formed incoming
/// <c>X-Request-Id</c> is kept (so ids flow through chains of proxies), anything else is replaced.
/// </summary>
public static class RequestId
{
    public const string Header = "X-Request-Id";

    public static string Resolve(HttpContext context)
    {
        var incoming = context.Request.Headers[Header];
        if (incoming.Count == 1 && IsWellFormed(incoming[0])) return incoming[0]!;
        // Kestrel's connection-scoped trace identifier is unique and already allocated.
        return context.TraceIdentifier;
    }

    private static bool IsWellFormed(ReadOnlySpan<char> id)
    {
        if (id.Length is 0 or > 128) return false;
        foreach (var c in id)
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.' or ':')) return false;
        return true;
    }
}
