using Keystone.Configuration;

namespace Keystone.Tests.Configuration;

public sealed class KeySuggestionsTests
{
    private static readonly string[] RouteKeys =
        ["name", "host", "path", "methods", "upstream", "respond", "strip_prefix", "rewrite", "set_headers", "remove_headers"];

    [Theory]
    [InlineData("upstream_url", "upstream")]
    [InlineData("proxy_pass", "upstream")]
    [InlineData("domain", "host")]
    [InlineData("method", "methods")]
    [InlineData("strip_path", "strip_prefix")]
    [InlineData("headers", "set_headers")]
    public void Keys_from_other_gateways_map_to_the_keystone_key(string key, string expected)
    {
        Assert.Equal(expected, KeySuggestions.Closest(key, RouteKeys));
    }

    [Theory]
    [InlineData("pth", "path")]
    [InlineData("rewite", "rewrite")]
    [InlineData("strip_prefx", "strip_prefix")]
    [InlineData("PATH", "path")]
    public void Typos_suggest_the_nearest_key(string key, string expected)
    {
        Assert.Equal(expected, KeySuggestions.Closest(key, RouteKeys));
    }

    [Theory]
    [InlineData("timeout_seconds")]
    [InlineData("completely_different")]
    public void Far_away_keys_get_no_suggestion(string key)
    {
        Assert.Null(KeySuggestions.Closest(key, RouteKeys));
    }

    [Fact]
    public void Alias_is_only_suggested_where_that_key_is_allowed()
    {
        // "services" means "upstreams", which is not a route key; fall back to edit distance.
        Assert.Null(KeySuggestions.Closest("services", RouteKeys));
        Assert.Equal("upstreams", KeySuggestions.Closest("services", ["listen", "upstreams", "routes"]));
    }

    [Fact]
    public void Nothing_to_choose_from_gives_no_suggestion()
    {
        Assert.Null(KeySuggestions.Closest("api", []));
    }
}
