using System.Diagnostics;
using Keystone.Proxy;
using Keystone.Routing;

namespace Keystone;

/// <summary>
/// One request's trip through the pipeline: what each stage decided, read afterwards by metrics and the
/// access log, and by the upstream request transformer (as an HttpContext feature).
/// </summary>
public sealed class Exchange
{
    public Exchange(string requestId)
    {
        RequestId = requestId;
        Started = Stopwatch.GetTimestamp();
    }

    public string RequestId { get; }
    public long Started { get; }
    public Route? Route { get; set; }
    public Target? Target { get; set; }

    /// <summary>The upstream the request is forwarded to: the route's, or another one a script picked.</summary>
    public Upstream? Upstream { get; set; }

    /// <summary>What the route's scripts see and changed; null on routes without scripts.</summary>
    internal Scripting.ScriptCall? Script { get; set; }

    /// <summary>The absolute URI sent upstream; set before forwarding.</summary>
    public string UpstreamUri { get; set; } = "";

    /// <summary>Set for an attempt that may be retried: the transformer may then drop a 502/503/504 for a retry.</summary>
    public bool MayRetryStatus { get; set; }

    /// <summary>The status of an upstream response dropped in favour of a retry; 0 when none was.</summary>
    public int DiscardedStatus { get; set; }

    /// <summary>Stopwatch ticks spent forwarding; 0 when nothing was forwarded.</summary>
    public long UpstreamTicks { get; set; }
}
