using System.Numerics;

namespace Keystone.Routing;

/// <summary>One host's routes: a compressed radix tree over the path with a method table at each leaf (chi style).</summary>
/// <remarks>
/// Build it with <see cref="Add"/> from one thread, then share it read-only: <see cref="Lookup"/> never mutates, so any
/// number of requests may look up concurrently. Static text beats a parameter, which beats a catch-all, whatever the
/// order routes were added in; a leaf whose path matches but which has no entry for the method does not end the
/// search, lower-priority branches are tried next.
/// </remarks>
public sealed class RadixTree<T>
    where T : class
{
    private const int GetSlot = 0;
    private const int HeadSlot = 1;

    // One slot per MethodSet flag, plus one for methods MethodSet cannot name, which only MethodSet.All routes take.
    private const int OtherSlot = 8;
    private const int SlotCount = 9;

    private readonly Node _root = new(string.Empty);

    /// <summary>Number of routes added.</summary>
    public int Count { get; private set; }

    /// <summary>Adds a route; returns null, or why the pattern is invalid or which route it conflicts with.</summary>
    /// <param name="pattern">"/users/{id}", "/files/{*rest}", or "/files/*" (a catch-all named "*").</param>
    /// <param name="methods">The methods the route answers; <see cref="MethodSet.All"/> also takes methods it cannot name.</param>
    public string? Add(string pattern, MethodSet methods, T value, string routeName)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (methods == MethodSet.None || (methods & ~MethodSet.All) != 0)
        {
            return $"route '{routeName}' ({pattern}) must name at least one known method";
        }

        var parsed = RoutePattern.Parse(pattern, out string? error);
        if (parsed is null)
        {
            return $"route '{routeName}' has an invalid pattern '{pattern}': {error}";
        }

        // A conflict means a route of the same shape exists, so this walk creates no nodes for a rejected route.
        var node = _root;
        foreach (var part in parsed.Parts)
        {
            node = part.Kind switch
            {
                PartKind.Static => InsertStatic(node, part.Text),
                PartKind.Param => node.Param ??= new Node(string.Empty),
                _ => node.CatchAll ??= new Node(string.Empty),
            };
        }

        var route = new Entry(value, parsed.ParamNames, routeName, pattern, methods);
        var slots = node.Routes ??= new Entry?[SlotCount];
        for (int slot = 0; slot < SlotCount; slot++)
        {
            if (Covers(methods, slot) && slots[slot] is { } existing)
            {
                return $"route '{routeName}' ({Methods.Describe(methods)} {pattern}) conflicts with "
                    + $"route '{existing.Name}' ({Methods.Describe(existing.Methods)} {existing.Pattern})";
            }
        }

        for (int slot = 0; slot < SlotCount; slot++)
        {
            if (Covers(methods, slot))
            {
                slots[slot] = route;
            }
        }

        // HEAD is answered by a GET route (see Resolve), so an Allow header must list it too.
        node.Allowed |= (methods & MethodSet.Get) != 0 ? methods | MethodSet.Head : methods;
        Count++;
        return null;
    }

    /// <summary>Finds the route for a decoded request path and one method.</summary>
    /// <param name="path">The decoded path; an encoded slash ("%2F") is text, not a separator.</param>
    /// <param name="method">A single flag, or <see cref="MethodSet.None"/> for a method only <see cref="MethodSet.All"/> routes take.</param>
    /// <param name="paramValues">
    /// Receives the range of each parameter value inside <paramref name="path"/>. A branch that needs more parameters
    /// than it holds is treated as not matching (16 covers any sane pattern).
    /// </param>
    public RouteMatch<T> Lookup(ReadOnlySpan<char> path, MethodSet method, Span<Range> paramValues)
    {
        int slot = method != MethodSet.None && BitOperations.IsPow2((uint)method) && method < MethodSet.All
            ? BitOperations.TrailingZeroCount((uint)method)
            : OtherSlot;
        var allowed = MethodSet.None;
        var route = Find(_root, path, 0, slot, paramValues, 0, ref allowed);
        if (route is not null)
        {
            return new RouteMatch<T>(MatchKind.Found, route.Value, route.ParamNames, route.ParamNames.Length, MethodSet.None);
        }

        return allowed != MethodSet.None ? RouteMatch<T>.MethodNotAllowed(allowed) : RouteMatch<T>.NotFound;
    }

    private static bool Covers(MethodSet methods, int slot) =>
        slot == OtherSlot ? methods == MethodSet.All : ((int)methods & (1 << slot)) != 0;

    // Walks to the node that ends exactly at the end of text, splitting an edge when text ends inside it.
    private static Node InsertStatic(Node node, string text)
    {
        while (text.Length > 0)
        {
            int index = node.IndexOf(text[0]);
            if (index < 0)
            {
                var leaf = new Node(text);
                node.AddChild(leaf);
                return leaf;
            }

            var child = node.Children[index];
            int common = text.AsSpan().CommonPrefixLength(child.Prefix);
            if (common < child.Prefix.Length)
            {
                var split = new Node(child.Prefix[..common]);
                child.Prefix = child.Prefix[common..];
                split.AddChild(child);
                node.Children[index] = split;
                child = split;
            }

            node = child;
            text = text[common..];
        }

        return node;
    }

    // Depth-first in priority order: the first route found is the best. Every node is reached at most once per
    // lookup (its position in the path is fixed by the nodes above it), so backtracking stays linear in the tree
    // it touches. `allowed` collects the methods of leaves whose path matched but whose method did not.
    // A node without a parameter or catch-all child has nothing to fall back to, so its static child is walked
    // in the loop rather than by a call: most of a lookup is such nodes.
    private static Entry? Find(Node node, ReadOnlySpan<char> path, int pos, int slot, Span<Range> values, int count, ref MethodSet allowed)
    {
        Entry? found;
        while (true)
        {
            if (pos == path.Length)
            {
                if ((found = node.Resolve(slot, ref allowed)) is not null)
                {
                    return found;
                }

                break;
            }

            var child = node.StaticChild(path[pos]);
            bool staticMatches = child is not null && path[pos..].StartsWith(child.Prefix);
            if (node.Param is null && node.CatchAll is null)
            {
                if (!staticMatches)
                {
                    return null;
                }

                node = child!;
                pos += child!.Prefix.Length;
                continue;
            }

            if (staticMatches && (found = Find(child!, path, pos + child!.Prefix.Length, slot, values, count, ref allowed)) is not null)
            {
                return found;
            }

            if (node.Param is { } param && count < values.Length)
            {
                int length = path[pos..].IndexOf('/');
                int end = length < 0 ? path.Length : pos + length;
                if (end > pos)
                {
                    values[count] = new Range(pos, end);
                    if ((found = Find(param, path, end, slot, values, count + 1, ref allowed)) is not null)
                    {
                        return found;
                    }
                }
            }

            break;
        }

        // The catch-all owns the slash before it, so "/files" and "/files/" both match "/files/{*rest}" with rest "".
        if (node.CatchAll is { } catchAll && count < values.Length && (pos == path.Length || path[pos] == '/'))
        {
            values[count] = new Range(Math.Min(pos + 1, path.Length), path.Length);
            return catchAll.Resolve(slot, ref allowed);
        }

        return null;
    }

    /// <summary>A static edge of the tree; a parameter or catch-all node has an empty prefix.</summary>
    private sealed class Node(string prefix)
    {
        public string Prefix = prefix;

        // First character of each static child, kept sorted; Children is parallel to it.
        public char[] Indices = [];
        public Node[] Children = [];
        public Node? Param;
        public Node? CatchAll;

        // Set when some pattern ends here: the route per method slot, and the union of their methods for 405s.
        public Entry?[]? Routes;
        public MethodSet Allowed;

        // A plain scan: nodes have a handful of children, too few for the vectorised IndexOf to pay off.
        public int IndexOf(char first)
        {
            var indices = Indices;
            for (int i = 0; i < indices.Length; i++)
            {
                if (indices[i] == first)
                {
                    return i;
                }
            }

            return -1;
        }

        public Node? StaticChild(char first)
        {
            int index = IndexOf(first);
            return index < 0 ? null : Children[index];
        }

        public void AddChild(Node child)
        {
            int at = ~Array.BinarySearch(Indices, child.Prefix[0]);
            Indices = [.. Indices.AsSpan(0, at), child.Prefix[0], .. Indices.AsSpan(at)];
            Children = [.. Children.AsSpan(0, at), child, .. Children.AsSpan(at)];
        }

        // HEAD falls back to GET only when no route of this leaf takes HEAD itself.
        public Entry? Resolve(int slot, ref MethodSet allowed)
        {
            if (Routes is null)
            {
                return null;
            }

            var route = Routes[slot] ?? (slot == HeadSlot ? Routes[GetSlot] : null);
            if (route is null)
            {
                allowed |= Allowed;
            }

            return route;
        }
    }

    private sealed record Entry(T Value, string[] ParamNames, string Name, string Pattern, MethodSet Methods);
}
