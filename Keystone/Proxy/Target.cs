namespace Keystone.Proxy;

/// <summary>One backend server of an upstream.</summary>
public sealed class Target
{
    public Target(Uri url, int weight)
    {
        Url = url;
        Weight = weight;
        Origin = url.GetLeftPart(UriPartial.Authority);
        BasePath = url.AbsolutePath.TrimEnd('/');
        Name = url.Authority;
    }

    public Uri Url { get; }
    public int Weight { get; }

    /// <summary><c>scheme://host:port</c>, the part every upstream request URI starts with.</summary>
    public string Origin { get; }

    /// <summary>The target URL's path without a trailing slash ("" for none), prepended to every upstream path.</summary>
    public string BasePath { get; }

    /// <summary><c>host:port</c>: how the target is named in logs and metrics.</summary>
    public string Name { get; }

    // Smooth weighted round-robin state; guarded by the owning balancer's lock.
    internal int CurrentWeight;
}
