using Keystone.Routing;
using Keystone.Tests.Support;
using static Keystone.Tests.Routing.Resolved;

namespace Keystone.Tests.Routing;

public sealed class RouteTableTests
{
    private const MethodSet Get = MethodSet.Get;

    private static RouteTable<string> Table(params (string? Host, string Name, string Pattern, MethodSet Methods)[] routes)
    {
        var table = new RouteTable<string>();
        foreach (var (host, name, pattern, methods) in routes)
        {
            Assert.Null(table.Add(host, pattern, methods, name, name));
        }

        return table;
    }

    [Fact]
    public void Exact_host_beats_wildcard_which_beats_any_host()
    {
        var table = Table(
            (null, "any", "/", Get),
            ("*.example.com", "wildcard", "/", Get),
            ("api.example.com", "exact", "/", Get));

        Assert.Equal("exact", Match(table, "api.example.com", "/").Value);
        Assert.Equal("wildcard", Match(table, "www.example.com", "/").Value);
        Assert.Equal("any", Match(table, "example.org", "/").Value);
    }

    [Fact]
    public void Wildcard_matches_any_depth_of_subdomain_but_not_the_domain_itself()
    {
        var table = Table(("*.example.com", "wildcard", "/", Get));

        Assert.Equal("wildcard", Match(table, "a.example.com", "/").Value);
        Assert.Equal("wildcard", Match(table, "a.b.c.example.com", "/").Value);
        Assert.Equal(MatchKind.NotFound, Match(table, "example.com", "/").Kind);
        Assert.Equal(MatchKind.NotFound, Match(table, "badexample.com", "/").Kind);
        Assert.Equal(MatchKind.NotFound, Match(table, ".example.com", "/").Kind);
    }

    [Fact]
    public void Longest_wildcard_suffix_wins()
    {
        var table = Table(("*.example.com", "short", "/", Get), ("*.eu.example.com", "long", "/", Get));

        Assert.Equal("long", Match(table, "shop.eu.example.com", "/").Value);
        Assert.Equal("long", Match(table, "a.shop.eu.example.com", "/").Value);
        Assert.Equal("short", Match(table, "eu.example.com", "/").Value);
        Assert.Equal("short", Match(table, "shop.us.example.com", "/").Value);
    }

    [Theory]
    [InlineData("API.Example.COM")]
    [InlineData("api.example.com:8080")]
    [InlineData("Api.Example.Com:443")]
    [InlineData("api.example.com.")]
    public void Host_match_ignores_case_port_and_trailing_dot(string host)
    {
        var table = Table(("api.example.com", "exact", "/", Get), (null, "any", "/", Get));

        Assert.Equal("exact", Match(table, host, "/").Value);
    }

    [Fact]
    public void Wildcard_host_match_ignores_case_and_port()
    {
        var table = Table(("*.Example.com", "wildcard", "/", Get));

        Assert.Equal("wildcard", Match(table, "WWW.EXAMPLE.COM:8443", "/").Value);
    }

    [Theory]
    [InlineData("[::1]:80")]
    [InlineData("[::1]")]
    public void Ipv6_literal_host_matches_without_its_port(string host)
    {
        var table = Table(("[::1]", "loopback", "/", Get), ("127.0.0.1", "v4", "/", Get));

        Assert.Equal("loopback", Match(table, host, "/").Value);
        Assert.Equal("v4", Match(table, "127.0.0.1:5000", "/").Value);
    }

    [Fact]
    public void Route_without_host_serves_paths_the_host_tree_lacks()
    {
        var table = Table(
            ("api.example.com", "users", "/users", Get),
            ("*.example.com", "assets", "/assets/{*file}", Get),
            (null, "health", "/health", Get));

        Assert.Equal("users", Match(table, "api.example.com", "/users").Value);
        Assert.Equal("assets", Match(table, "api.example.com", "/assets/app.js").Value);
        Assert.Equal("health", Match(table, "api.example.com", "/health").Value);
        Assert.Equal(MatchKind.NotFound, Match(table, "api.example.com", "/nothing").Kind);
    }

    [Fact]
    public void Method_found_in_a_less_specific_host_tree_wins_over_405()
    {
        var table = Table(("api.example.com", "get", "/users", Get), (null, "post", "/users", MethodSet.Post));

        Assert.Equal("post", Match(table, "api.example.com", "/users", MethodSet.Post).Value);
    }

    [Fact]
    public void Not_allowed_anywhere_gives_405_with_the_union_over_host_trees()
    {
        var table = Table(
            ("api.example.com", "get", "/users", Get),
            ("*.example.com", "put", "/users", MethodSet.Put),
            (null, "post", "/users", MethodSet.Post),
            ("other.org", "delete", "/users", MethodSet.Delete));

        var match = Match(table, "api.example.com", "/users", MethodSet.Patch);

        Assert.Equal(MatchKind.MethodNotAllowed, match.Kind);
        Assert.Equal(Get | MethodSet.Head | MethodSet.Put | MethodSet.Post, match.Allowed);
    }

    [Fact]
    public void Unknown_host_without_any_host_routes_is_not_found()
    {
        var table = Table(("api.example.com", "users", "/users", Get));

        Assert.Equal(MatchKind.NotFound, Match(table, "example.org", "/users").Kind);
        Assert.Equal(MatchKind.NotFound, Match(table, "", "/users").Kind);
    }

    [Fact]
    public void Empty_host_string_means_any_host()
    {
        var table = Table(("", "any", "/", Get));

        Assert.Equal("any", Match(table, "whatever.test", "/").Value);
    }

    [Fact]
    public void Conflicts_are_per_host()
    {
        var table = Table(("a.example.com", "a", "/users", Get), ("b.example.com", "b", "/users", Get), (null, "c", "/users", Get));

        string? error = table.Add("A.EXAMPLE.COM", "/users", Get, "d", "d");

        Assert.Equal("route 'd' (GET /users) conflicts with route 'a' (GET /users)", error);
        Assert.Equal(3, table.Count);
    }

    [Theory]
    [InlineData("example.*")]
    [InlineData("a.*.example.com")]
    [InlineData("*")]
    [InlineData("*example.com")]
    [InlineData("*.")]
    [InlineData("example.com:8080")]
    [InlineData("a..example.com")]
    [InlineData("exa mple.com")]
    [InlineData("[::1")]
    [InlineData("[zz]")]
    public void Invalid_host_is_rejected_naming_route_and_host(string host)
    {
        var table = new RouteTable<string>();

        string? error = table.Add(host, "/", Get, "r", "r");

        Assert.NotNull(error);
        Assert.Contains("'r'", error);
        Assert.Contains($"'{host}'", error);
        Assert.Equal(0, table.Count);
        Assert.Equal(MatchKind.NotFound, Match(table, "example.com", "/").Kind);
    }

    [Fact]
    public void Rejected_first_route_for_a_host_leaves_no_tree_behind()
    {
        var table = new RouteTable<string>();
        Assert.NotNull(table.Add("api.example.com", "/a{b}", Get, "bad", "bad"));
        Assert.Null(table.Add(null, "/{*rest}", Get, "any", "any"));

        Assert.Equal("any", Match(table, "api.example.com", "/x").Value);
    }

    [Fact]
    public void Count_counts_every_accepted_route()
    {
        var table = Table((null, "a", "/a", Get), ("x.test", "b", "/b", Get), ("*.x.test", "c", "/c", Get));
        table.Add(null, "/a", Get, "dup", "dup");

        Assert.Equal(3, table.Count);
    }

    [Fact]
    public void Match_does_not_allocate()
    {
        var table = new RouteTable<string>();
        for (int i = 0; i < 200; i++)
        {
            Assert.Null(table.Add($"host{i}.example.com", "/users/{id}", Get, $"exact{i}", $"exact{i}"));
            Assert.Null(table.Add($"*.zone{i}.example.com", "/items/{*rest}", Get, $"wild{i}", $"wild{i}"));
        }

        Assert.Null(table.Add(null, "/health", Get, "health", "health"));
        string[] hosts = ["HOST7.example.com:8080", "a.b.zone9.example.com", "nobody.example.org", "[::1]:443"];
        string[] paths = ["/users/1", "/items/a/b", "/health", "/missing"];
        var ranges = new Range[16];
        int found = 0;
        long allocated = Allocations.LeastOf(3, () =>
        {
            for (int i = 0; i < 5_000; i++)
            {
                foreach (string host in hosts)
                {
                    foreach (string path in paths)
                    {
                        found += table.Match(host, path, Get, ranges).Kind == MatchKind.Found ? 1 : 0;
                    }
                }
            }
        });

        Assert.Equal(0, allocated);
        Assert.True(found > 0);
    }
}
