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
    /// continuation may block (see <see cref="InlineScheduling"/> for the one thing that can run long).
    /// </summary>
    public const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    public static void Apply()
    {
        // Read once by the socket engine when it first starts, so this must come before any socket is made.
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
            Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
    }

    /// <summary>
    /// Whether Kestrel runs requests on the socket engine's thread that read them (its
    /// <c>UnsafePreferInlineScheduling</c>) instead of queueing each one to the thread pool: with inline
    /// completions, a proxied request then makes no thread hop at all (+19% req/s, -14% CPU per request on one
    /// core). Only safe when nothing on the request path blocks: the one thing that can run long, a Lua hook, is
    /// bounded by its budget, and a script set that once overran it runs off these threads from then on
    /// (<see cref="Scripting.ScriptSet.Overran"/>). Follows the inline completions switch, so
    /// <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0</c> turns both off.
    /// </summary>
    public static bool InlineScheduling =>
        Environment.GetEnvironmentVariable(InlineSocketCompletions) is { } value
        && (value == "1" || value.Equals("true", StringComparison.OrdinalIgnoreCase)); // as the socket engine reads it
}
