using Keystone.Configuration;
using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

public sealed class EnvSubstitutionTests
{
    private static readonly Dictionary<string, string> Vars = new()
    {
        ["HOST"] = "10.0.0.5",
        ["PORT"] = "9000",
        ["EMPTY"] = "",
    };

    private static string Expand(string text)
    {
        var result = EnvSubstitution.Expand(text, name => Vars.TryGetValue(name, out var v) ? v : null, out var error);
        Assert.Null(error);
        return result;
    }

    private static string ExpandError(string text)
    {
        EnvSubstitution.Expand(text, name => Vars.TryGetValue(name, out var v) ? v : null, out var error);
        Assert.NotNull(error);
        return error;
    }

    [Theory]
    [InlineData("${HOST}", "10.0.0.5")]
    [InlineData("http://${HOST}:${PORT}/api", "http://10.0.0.5:9000/api")]
    [InlineData("${EMPTY}", "")]
    public void Set_variables_are_substituted(string text, string expected)
    {
        Assert.Equal(expected, Expand(text));
    }

    [Theory]
    [InlineData("${MISSING:-8080}", "8080")]
    [InlineData("${PORT:-8080}", "9000")]
    [InlineData("${EMPTY:-fallback}", "fallback")]
    [InlineData("${MISSING:-}", "")]
    [InlineData("${MISSING:-http://a:1}", "http://a:1")]
    public void Default_is_used_when_the_variable_is_unset_or_empty(string text, string expected)
    {
        Assert.Equal(expected, Expand(text));
    }

    [Theory]
    [InlineData("$${HOST}", "${HOST}")]
    [InlineData("a$${b}c", "a${b}c")]
    [InlineData("cost: $5", "cost: $5")]
    [InlineData("$$", "$$")]
    [InlineData("end$", "end$")]
    public void Double_dollar_brace_is_a_literal_and_other_dollars_stay(string text, string expected)
    {
        Assert.Equal(expected, Expand(text));
    }

    [Fact]
    public void Text_without_a_dollar_is_returned_as_is_without_lookups()
    {
        const string text = "http://127.0.0.1:9001";
        var result = EnvSubstitution.Expand(text, _ => throw new InvalidOperationException("no lookup expected"), out var error);

        Assert.Null(error);
        Assert.Same(text, result);
    }

    [Fact]
    public void Unset_variable_without_default_is_an_error_that_shows_the_default_syntax()
    {
        Assert.Equal("environment variable 'MISSING' is not set (use ${MISSING:-default} to give a default)", ExpandError("${MISSING}"));
    }

    [Fact]
    public void Unterminated_reference_is_an_error()
    {
        Assert.Equal("unterminated '${' in 'http://${HOST'", ExpandError("http://${HOST"));
    }

    [Theory]
    [InlineData("${}", "")]
    [InlineData("${1X}", "1X")]
    [InlineData("${MY-VAR}", "MY-VAR")]
    public void Invalid_variable_name_is_an_error(string text, string name)
    {
        Assert.Equal($"invalid environment variable name '{name}'", ExpandError(text));
    }

    [Fact]
    public void Loader_substitutes_variables_in_values()
    {
        var config = Valid("""
            listen: http://0.0.0.0:${PORT:-8080}
            upstreams:
              api:
                targets: ["http://${API_HOST}:3000"]
                timeout: ${API_TIMEOUT:-5s}
            routes:
              - name: a
                path: /
                upstream: api
                set_headers:
                  X-Price: "$${not_a_var}"
            """, ("PORT", "9000"), ("API_HOST", "10.1.2.3"));

        Assert.Equal(["http://0.0.0.0:9000"], config.Listen);
        Assert.Equal(new Uri("http://10.1.2.3:3000"), config.Upstreams.Single().Targets.Single().Url);
        Assert.Equal(TimeSpan.FromSeconds(5), config.Upstreams.Single().Timeout);
        Assert.Equal([new("X-Price", "${not_a_var}")], config.Routes.Single().SetHeaders);
    }

    [Fact]
    public void Loader_reports_an_unset_variable_at_the_value_that_uses_it()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets:
                  - http://${API_HOST}:3000
            """);

        Assert.Equal(At(4, 9) + "target url: environment variable 'API_HOST' is not set (use ${API_HOST:-default} to give a default)", error);
    }

    [Fact]
    public void Loader_validates_the_substituted_value()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: ["${API_URL}"]
            """, ("API_URL", "localhost:3000"));

        Assert.Equal(At(3, 15) + "target 'localhost:3000' of upstream 'api' must be an http:// or https:// URL with a host, and no query or fragment", error);
    }

    [Fact]
    public void Substituted_header_value_with_a_newline_is_rejected()
    {
        var error = SingleError("""
            routes:
              - name: r
                path: /
                respond:
                  headers:
                    X-Token: ${TOKEN}
            """, ("TOKEN", "abc\r\nX-Admin: 1"));

        Assert.Equal(At(6, 9) + "route 'r': header 'X-Token' has a CR, LF or NUL in its value", error);
    }
}
