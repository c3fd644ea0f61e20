namespace Keystone.Scripting;

/// <summary>One entry of a route's hook list, resolved to a script of the snapshot's <see cref="ScriptSet"/>.</summary>
internal readonly record struct HookRef(int Script, bool ContinueOnError);

/// <summary>
/// The scripts one route runs, resolved when the snapshot is built: which hooks run in each phase and
/// what answers the request. A route without scripts has none of this and pays nothing.
/// </summary>
internal sealed class RouteScripts(LuaStatePool pool)
{
    public LuaStatePool Pool { get; } = pool;

    /// <summary>Hooks whose script defines <c>on_request</c>, in order: global, tenant, route.</summary>
    public HookRef[] OnRequest { get; init; } = [];

    /// <summary>Hooks whose script defines <c>on_response</c>, in the same order.</summary>
    public HookRef[] OnResponse { get; init; } = [];

    /// <summary>The script whose <c>handle(req)</c> answers, or -1.</summary>
    public int HandlerScript { get; init; } = -1;

    /// <summary>The <see cref="ScriptSet.Routes"/> entry whose function answers, or -1.</summary>
    public int HandlerRoute { get; init; } = -1;

    public bool BufferResponse { get; init; }

    public bool IsHandler => HandlerScript >= 0 || HandlerRoute >= 0;

    /// <summary>A proxied request comes back to the scripts once the upstream answered.</summary>
    public bool HasResponsePhase => !IsHandler && (OnResponse.Length > 0 || BufferResponse);

    /// <summary>The script that owns the handler function, for metrics and logs.</summary>
    public int HandlerOwner => HandlerRoute >= 0 ? Pool.Scripts.Routes[HandlerRoute].Script : HandlerScript;
}
