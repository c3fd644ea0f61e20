namespace Keystone.Proxy;

/// <summary>How an upstream spreads requests over its targets: one method, called on every request, from any thread.</summary>
public interface ILoadBalancer
{
    /// <summary>A healthy target for this request, or null when none is healthy.</summary>
    Target? Pick(HttpContext context);
}
