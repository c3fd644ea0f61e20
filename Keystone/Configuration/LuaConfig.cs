namespace Keystone.Configuration;

/// <summary>The <c>lua:</c> section: where scripts live and what each call and state may spend.</summary>
/// <param name="ScriptsDir">Folder of <c>&lt;name&gt;.lua</c> scripts and <c>lib/</c>; relative to the working directory.</param>
/// <param name="Budget">Wall time one hook call may take.</param>
/// <param name="MemoryBytes">Memory cap of one Lua state.</param>
/// <param name="States">Lua states created at start (the pool grows past this under load and shrinks back).</param>
/// <param name="Env">Environment variables <c>keystone.env</c> may read.</param>
/// <param name="MaxBody">Largest request body scripts see as <c>req.body</c>, and largest buffered response.</param>
/// <param name="SharedMemoryBytes">Capacity of <c>keystone.shared</c>.</param>
/// <param name="GlobalHooks">Hooks that run on every route, before tenant and route hooks.</param>
public sealed record LuaConfig(
    string ScriptsDir,
    TimeSpan Budget,
    long MemoryBytes,
    int States,
    IReadOnlyList<string> Env,
    long MaxBody,
    long SharedMemoryBytes,
    IReadOnlyList<HookConfig> GlobalHooks)
{
    public static readonly LuaConfig Default = new(
        "scripts", TimeSpan.FromMilliseconds(1), 10L << 20, 2 * Environment.ProcessorCount, [], 1L << 20, 64L << 20, []);
}

/// <summary>One entry of a <c>hooks:</c> list: a script whose <c>on_request</c>/<c>on_response</c> run on the route.</summary>
/// <param name="ContinueOnError">When the hook fails, skip it and go on instead of answering 500.</param>
public sealed record HookConfig(string Script, bool ContinueOnError, SourceLocation Location);
