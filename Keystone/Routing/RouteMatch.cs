namespace Keystone.Routing;

/// <summary>Outcome of a route lookup.</summary>
public enum MatchKind : byte
{
    Found,
    NotFound,
    MethodNotAllowed,
}

/// <summary>Result of a lookup; parameter values are ranges in the caller's span, so nothing is allocated.</summary>
public readonly struct RouteMatch<T>
    where T : class
{
    internal RouteMatch(MatchKind kind, T? value, string[] paramNames, int paramCount, MethodSet allowed)
    {
        Kind = kind;
        Value = value;
        ParamNames = paramNames;
        ParamCount = paramCount;
        Allowed = allowed;
    }

    public MatchKind Kind { get; }

    /// <summary>The matched route's value; set only when <see cref="Kind"/> is <see cref="MatchKind.Found"/>.</summary>
    public T? Value { get; }

    /// <summary>Names of the matched pattern's parameters in pattern order; shared with the route, never copied.</summary>
    public string[] ParamNames { get; }

    /// <summary>How many entries of the caller's range span hold parameter values (one per name).</summary>
    public int ParamCount { get; }

    /// <summary>When <see cref="MatchKind.MethodNotAllowed"/>: every method some route on this path accepts, for the <c>Allow</c> header.</summary>
    public MethodSet Allowed { get; }

    internal static RouteMatch<T> NotFound => new(MatchKind.NotFound, null, [], 0, MethodSet.None);

    internal static RouteMatch<T> MethodNotAllowed(MethodSet allowed) => new(MatchKind.MethodNotAllowed, null, [], 0, allowed);
}
