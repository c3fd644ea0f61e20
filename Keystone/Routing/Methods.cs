namespace Keystone.Routing;

/// <summary>The HTTP methods a route can name, as flags so a route can accept several.</summary>
[Flags]
public enum MethodSet : ushort
{
    None = 0,
    Get = 1,
    Head = 2,
    Post = 4,
    Put = 8,
    Delete = 16,
    Patch = 32,
    Options = 64,
    Trace = 128,
    All = 255,
}

/// <summary>Parses request methods and renders <c>Allow</c> headers without allocating.</summary>
public static class Methods
{
    // In the order an Allow header lists them; index = bit position in MethodSet.
    private static readonly string[] Names = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"];

    // Every combination is rendered once up front (256 short strings), so AllowHeader never builds a string per response.
    private static readonly string[] AllowHeaders = BuildAllowHeaders();

    /// <summary>Maps a method token to its flag; anything else (lower case, CONNECT, extension methods) is <see cref="MethodSet.None"/>.</summary>
    public static MethodSet Parse(ReadOnlySpan<char> method) => method switch
    {
        "GET" => MethodSet.Get,
        "HEAD" => MethodSet.Head,
        "POST" => MethodSet.Post,
        "PUT" => MethodSet.Put,
        "DELETE" => MethodSet.Delete,
        "PATCH" => MethodSet.Patch,
        "OPTIONS" => MethodSet.Options,
        "TRACE" => MethodSet.Trace,
        _ => MethodSet.None,
    };

    /// <summary>The value of an <c>Allow</c> header for <paramref name="set"/>, e.g. "GET, HEAD, POST".</summary>
    public static string AllowHeader(MethodSet set) => AllowHeaders[(int)(set & MethodSet.All)];

    // For configuration errors and the routes listing, where "ANY" reads better than eight method names.
    internal static string Describe(MethodSet set) =>
        (set & MethodSet.All) == MethodSet.All ? "ANY" : AllowHeader(set).Replace(", ", ",", StringComparison.Ordinal);

    private static string[] BuildAllowHeaders()
    {
        var headers = new string[256];
        var parts = new List<string>(Names.Length);
        for (int set = 0; set < headers.Length; set++)
        {
            parts.Clear();
            for (int bit = 0; bit < Names.Length; bit++)
            {
                if ((set & (1 << bit)) != 0)
                {
                    parts.Add(Names[bit]);
                }
            }

            headers[set] = string.Join(", ", parts);
        }

        return headers;
    }
}
