using Keystone.Routing;

namespace Keystone.Tests.Routing;

public sealed class PathTemplateTests
{
    /// <summary>Rewrites <paramref name="path"/>, given the values of the route's parameters in pattern order.</summary>
    private static string Rewrite(string template, string pattern, string path, params string[] values)
    {
        var compiled = PathTemplate.Compile(template, pattern);
        var ranges = new Range[values.Length];
        int from = 0;
        for (int i = 0; i < values.Length; i++)
        {
            int at = path.IndexOf(values[i], from, StringComparison.Ordinal);
            Assert.True(at >= 0, $"'{values[i]}' not found in '{path}'");
            ranges[i] = new Range(at, at + values[i].Length);
            from = at + values[i].Length;
        }

        var writer = new UpstreamPathWriter(8);
        try
        {
            compiled.Write(ref writer, path, ranges);
            return writer.ToString();
        }
        finally
        {
            writer.Dispose();
        }
    }

    [Theory]
    [InlineData("/v2/users/{id}", "/users/{id}")]
    [InlineData("/static/{rest}", "/files/{*rest}")]
    [InlineData("/static/{*rest}", "/files/{*rest}")]
    [InlineData("/fixed", "/users/{id}")]
    [InlineData("/", "/")]
    [InlineData("/{b}/{a}/{a}", "/{a}/{b}")]
    [InlineData("/v2/user-{id}.json", "/users/{id}")]
    public void Valid_templates_have_no_error(string template, string pattern)
    {
        Assert.Null(PathTemplate.Validate(template, pattern));
    }

    [Theory]
    [InlineData("v2/{id}", "must start with '/'")]
    [InlineData("", "must start with '/'")]
    [InlineData("/v2/{id}?x=1", "may not contain '?' or '#'")]
    [InlineData("/v2/{id}#top", "may not contain '?' or '#'")]
    [InlineData("/v2/../{id}", "may not contain '.' or '..' segments")]
    [InlineData("/v2/./{id}", "may not contain '.' or '..' segments")]
    [InlineData("/v2/{id}/..", "may not contain '.' or '..' segments")]
    [InlineData("/v2/{id", "has an unclosed '{'")]
    [InlineData("/v2/id}", "has an unmatched '}'")]
    [InlineData("/v2/{name}", "uses '{name}', which the route's path does not define")]
    public void Invalid_templates_say_why(string template, string expected)
    {
        Assert.Equal(expected, PathTemplate.Validate(template, "/users/{id}"));
    }

    [Fact]
    public void Compile_throws_for_an_invalid_template()
    {
        var e = Assert.Throws<ArgumentException>(() => PathTemplate.Compile("/v2/{name}", "/users/{id}"));

        Assert.Contains("{name}", e.Message);
    }

    [Fact]
    public void Compile_counts_parameter_uses()
    {
        Assert.Equal(0, PathTemplate.Compile("/fixed", "/users/{id}").ParameterCount);
        Assert.Equal(3, PathTemplate.Compile("/{b}/{a}/{a}", "/{a}/{b}").ParameterCount);
    }

    [Theory]
    [InlineData("/users/{id}", new[] { "id" })]
    [InlineData("/orgs/{org}/repos/{repo}", new[] { "org", "repo" })]
    [InlineData("/files/{*rest}", new[] { "rest" })]
    [InlineData("/files/*", new[] { "*" })]
    [InlineData("/static/path", new string[0])]
    public void Parameter_names_come_in_pattern_order(string pattern, string[] expected)
    {
        Assert.Equal(expected, PathTemplate.ParameterNames(pattern));
    }

    [Fact]
    public void Write_puts_parameter_values_into_the_template()
    {
        Assert.Equal("/v2/users/42", Rewrite("/v2/users/{id}", "/users/{id}", "/users/42", "42"));
    }

    [Fact]
    public void Write_follows_template_order_not_pattern_order()
    {
        var result = Rewrite("/posts/{post}/by/{user}", "/users/{user}/posts/{post}", "/users/ann/posts/7", "ann", "7");

        Assert.Equal("/posts/7/by/ann", result);
    }

    [Fact]
    public void Write_can_use_a_parameter_twice_or_not_at_all()
    {
        Assert.Equal("/a/x/x", Rewrite("/a/{id}/{id}", "/u/{id}", "/u/x", "x"));
        Assert.Equal("/fixed", Rewrite("/fixed", "/u/{id}", "/u/x", "x"));
    }

    [Fact]
    public void Write_copies_a_catch_all_with_its_slashes()
    {
        var result = Rewrite("/static/{rest}", "/files/{*rest}", "/files/css/site.css", "css/site.css");

        Assert.Equal("/static/css/site.css", result);
    }

    [Fact]
    public void Write_encodes_parameter_values_but_copies_template_literals()
    {
        var result = Rewrite("/v2%20beta/{q}", "/search/{q}", "/search/a b?", "a b?");

        Assert.Equal("/v2%20beta/a%20b%3F", result);
    }

    [Fact]
    public void Trailing_star_catch_all_can_be_used_in_a_rewrite()
    {
        // ParameterNames calls a trailing '*' segment "*", so "{*}" is how a template refers to it.
        Assert.Null(PathTemplate.Validate("/static/{*}", "/files/*"));
    }
}
