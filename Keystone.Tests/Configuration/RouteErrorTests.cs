using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>Errors in <c>routes</c>: required keys, handlers, path changes and methods.</summary>
public sealed class RouteErrorTests
{
    [Fact]
    public void Route_without_path_is_reported_at_the_route()
    {
        var error = SingleError("""
            routes:
              - name: users
                respond: {}
            """);

        Assert.Equal(At(2, 5) + "route 'users' needs a 'path'", error);
    }

    [Fact]
    public void Route_without_name_is_reported_at_the_route()
    {
        var error = SingleError("""
            routes:
              - path: /users
                respond: {}
            """);

        Assert.Equal(At(2, 5) + "a route needs a 'name'", error);
    }

    [Fact]
    public void Route_name_with_a_slash_is_rejected_at_the_name()
    {
        var error = SingleError("""
            routes:
              - name: api/users
                path: /users
                respond: {}
            """);

        Assert.Equal(At(2, 11) + "route name 'api/users' may only use letters, digits, '-', '_' and '.'", error);
    }

    [Fact]
    public void Path_without_leading_slash_is_rejected_at_the_path()
    {
        var error = SingleError("""
            routes:
              - name: users
                path: users
                respond: {}
            """);

        Assert.Equal(At(3, 11) + "route 'users': path 'users' must start with '/'", error);
    }

    [Fact]
    public void Duplicate_route_name_points_at_the_second_and_names_the_first()
    {
        var error = SingleError("""
            routes:
              - name: home
                path: /
                respond: {}
              - name: home
                path: /other
                respond: {}
            """);

        Assert.Equal(At(5, 5) + $"duplicate route name 'home' (first defined at {FileName}:2:5)", error);
    }

    [Fact]
    public void Route_with_both_upstream_and_respond_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: users
                path: /users
                upstream: api
                respond: {status: 204}
            """);

        Assert.Equal(At(5, 5) + "route 'users' needs exactly one of 'upstream', 'respond' or 'handler'", error);
    }

    [Fact]
    public void Route_with_neither_upstream_nor_respond_is_rejected()
    {
        var error = SingleError("""
            routes:
              - name: users
                path: /users
            """);

        Assert.Equal(At(2, 5) + "route 'users' needs exactly one of 'upstream', 'respond' or 'handler'", error);
    }

    [Theory]
    [InlineData("/api", "/v1/{*rest}")]
    [InlineData("/fil", "/files/{*rest}")]
    [InlineData("/users/42", "/users/{id}")]
    [InlineData("files", "/files/{*rest}")]
    public void Strip_prefix_that_is_not_a_leading_part_of_the_path_is_rejected(string strip, string path)
    {
        var error = SingleError($"""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: r
                path: {path}
                upstream: api
                strip_prefix: {strip}
            """);

        Assert.Equal(At(8, 19) + $"route 'r': strip_prefix '{strip}' must start with '/' and be a leading part of the path '{path}'", error);
    }

    [Fact]
    public void Strip_prefix_and_rewrite_together_are_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: r
                path: /api/{*rest}
                upstream: api
                strip_prefix: true
                rewrite: /v2/{rest}
            """);

        Assert.Equal(At(5, 5) + "route 'r': use either 'strip_prefix' or 'rewrite', not both", error);
    }

    [Theory]
    [InlineData("rewrite: /v2/{rest}", "rewrite")]
    [InlineData("strip_prefix: true", "strip_prefix")]
    [InlineData("set_headers: {X-A: b}", "set_headers")]
    [InlineData("remove_headers: [X-A]", "remove_headers")]
    public void Upstream_only_keys_on_a_respond_route_are_rejected_at_the_value(string line, string key)
    {
        var error = SingleError($$"""
            routes:
              - name: r
                path: /api/{*rest}
                respond: {}
                {{line}}
            """);

        Assert.Equal(At(5, key.Length + 7) + $"route 'r': '{key}' only applies to routes with an upstream", error);
    }

    [Fact]
    public void Path_with_more_than_16_parameters_is_rejected()
    {
        var path = string.Concat(Enumerable.Range(1, 17).Select(i => $"/{{p{i}}}"));

        var error = SingleError($$"""
            routes:
              - name: r
                path: {{path}}
                respond: {}
            """);

        Assert.Equal(At(3, 11) + $"route 'r': path '{path}' has more than 16 parameters", error);
    }

    [Fact]
    public void Path_with_16_parameters_is_accepted()
    {
        var path = string.Concat(Enumerable.Range(1, 16).Select(i => $"/{{p{i}}}"));

        var route = Valid($$"""
            routes:
              - name: r
                path: {{path}}
                respond: {}
            """).Routes.Single();

        Assert.Equal(path, route.Path);
    }

    [Fact]
    public void Rewrite_with_a_parameter_the_path_does_not_define_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: users
                path: /users/{id}
                upstream: api
                rewrite: /v2/users/{user_id}
            """);

        Assert.Equal(At(8, 14) + "route 'users': rewrite '/v2/users/{user_id}': uses '{user_id}', which the route's path does not define", error);
    }

    [Fact]
    public void Rewrite_that_climbs_out_with_dot_dot_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: users
                path: /users/{id}
                upstream: api
                rewrite: /v2/../admin/{id}
            """);

        Assert.Equal(At(8, 14) + "route 'users': rewrite '/v2/../admin/{id}': may not contain '.' or '..' segments", error);
    }

    [Fact]
    public void Unknown_method_lists_the_known_ones()
    {
        var error = SingleError("""
            routes:
              - name: r
                path: /
                methods: [GET, FETCH]
                respond: {}
            """);

        Assert.Equal(At(4, 20) + "unknown method 'FETCH' (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE or '*')", error);
    }

    [Fact]
    public void Strip_prefix_true_on_a_path_without_leading_slash_reports_the_path_instead_of_crashing()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: all
                path: "*"
                upstream: api
                strip_prefix: true
            """);

        Assert.Equal(At(6, 11) + "route 'all': path '*' must start with '/'", error);
    }
}
