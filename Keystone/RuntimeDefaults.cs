namespace Keystone;

/// <summary>
/// Runtime settings Keystone is measured fastest with, applied before the first socket exists. A value the
/// operator set in the environment wins. Figures: docs/BENCHMARKS.md, "Runtime settings".
/// </summary>
public static class RuntimeDefaults
{
    /// <summary>
    /// Socket completions run on the epoll thread instead of being queued to the thread pool: one thread hop less
    /// per read of an upstream response (+7-12% req/s, -7% CPU per request on the plain route). Nothing on that
    /// continuation may block; Lua response hooks, the one thing that can run long, move off it first
    /// (see <c>UpstreamRequestTransformer.TransformResponseAsync</c>).
    /// </summary>
    public const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    public static void Apply()
    {
        // Read once by the socket engine when it first starts, so this must come before any socket is made.
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
            Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
    }
}
