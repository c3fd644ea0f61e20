using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>Errors about the file as a whole: YAML syntax, the root, unknown keys and the shape of values.</summary>
public sealed class ConfigFileErrorTests
{
    [Fact]
    public void Invalid_yaml_syntax_is_reported_where_the_parser_stopped()
    {
        var error = SingleError("""
            routes:
              - name: a
                path: /a
               upstream: b
            """);

        Assert.StartsWith(At(4, 4) + "invalid YAML: ", error);
        Assert.Contains("did not find expected '-' indicator", error);
    }

    [Fact]
    public void Unterminated_quote_is_invalid_yaml_at_the_quote()
    {
        var error = SingleError("""
            listen: "http://0.0.0.0:8080
            """);

        Assert.StartsWith(At(1, 9) + "invalid YAML: ", error);
        Assert.Contains("quoted scalar", error);
    }

    [Fact]
    public void Mapping_value_in_a_plain_scalar_is_invalid_yaml_at_the_colon()
    {
        var error = SingleError("listen: http: //0.0.0.0:8080");

        Assert.StartsWith(At(1, 13) + "invalid YAML: ", error);
    }

    [Fact]
    public void Root_that_is_a_list_is_rejected_at_the_first_line()
    {
        var error = SingleError("""
            - listen: http://0.0.0.0:8080
            - routes: []
            """);

        Assert.Equal(At(1, 1) + "the config file must be a mapping (key: value)", error);
    }

    [Fact]
    public void Root_that_is_a_scalar_is_rejected()
    {
        Assert.Equal(At(1, 1) + "the config file must be a mapping (key: value)", SingleError("just some text"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("# nothing here yet\n")]
    public void Empty_file_is_an_error(string yaml)
    {
        Assert.Equal(At(1, 1) + "config file is empty", SingleError(yaml));
    }

    [Fact]
    public void Unknown_top_level_key_suggests_upstreams_for_services()
    {
        var error = SingleError("""
            listen: http://0.0.0.0:8080
            services:
              api:
                targets: [http://127.0.0.1:9001]
            """);

        Assert.Equal(At(2, 1) + "unknown key 'services' in the config file — did you mean 'upstreams'?", error);
    }

    [Fact]
    public void Unknown_route_key_upstream_url_suggests_upstream()
    {
        var errors = Errors("""
            routes:
              - name: a
                path: /a
                upstream_url: http://127.0.0.1:9001
            """);

        Assert.Contains(At(4, 5) + "unknown key 'upstream_url' in a route — did you mean 'upstream'?", errors);
    }

    [Fact]
    public void Unknown_key_suggests_the_closest_known_key_for_a_typo()
    {
        var errors = Errors("""
            upstreams:
              api:
                targts: [http://127.0.0.1:9001]
            """);

        // The missing 'targets' is reported too: the upstream really has none.
        Assert.Equal(
            [At(3, 5) + "unknown key 'targts' in upstream 'api' — did you mean 'targets'?", At(3, 5) + "upstream 'api' has no targets"],
            errors);
    }

    [Fact]
    public void Unknown_target_key_suggests_weight_for_a_typo()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets:
                  - url: http://127.0.0.1:9001
                    wieght: 2
            """);

        Assert.Equal(At(5, 9) + "unknown key 'wieght' in a target of upstream 'api' — did you mean 'weight'?", error);
    }

    [Fact]
    public void Unknown_tenant_key_prefix_suggests_path_prefix()
    {
        var error = SingleError("""
            tenants:
              - name: acme
                prefix: /acme
                routes:
                  - name: home
                    path: /
                    respond: {}
            """);

        Assert.Equal(At(3, 5) + "unknown key 'prefix' in a tenant — did you mean 'path_prefix'?", error);
    }

    [Fact]
    public void Unknown_key_in_a_different_case_suggests_the_known_key()
    {
        var error = SingleError("Listen: http://0.0.0.0:8080");

        Assert.Equal(At(1, 1) + "unknown key 'Listen' in the config file — did you mean 'listen'?", error);
    }

    [Fact]
    public void Unknown_key_with_no_near_miss_lists_the_known_keys()
    {
        var error = SingleError("completely_unrelated: 1");

        Assert.Equal(At(1, 1)
            + "unknown key 'completely_unrelated' in the config file (expected one of: listen, shutdown_timeout, upstreams, routes, tenants, admin, access_log, metrics, log_format, log_level, lua)",
            error);
    }

    [Fact]
    public void List_where_a_single_value_is_expected_is_rejected_at_the_list()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
                timeout: [1s, 2s]
            """);

        Assert.Equal(At(4, 14) + "timeout must be a single value, not a list or mapping", error);
    }

    [Fact]
    public void Mapping_where_a_list_is_expected_is_rejected()
    {
        var error = SingleError("""
            routes:
              name: a
              path: /
            """);

        Assert.Equal(At(2, 3) + "routes must be a list", error);
    }

    [Fact]
    public void List_where_a_mapping_is_expected_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              - api
            """);

        Assert.Equal(At(2, 3) + "upstreams must be a mapping (key: value)", error);
    }

    [Fact]
    public void Route_that_is_not_a_mapping_is_rejected()
    {
        var error = SingleError("""
            routes:
              - /users
            """);

        Assert.Equal(At(2, 5) + "a route must be a mapping (key: value)", error);
    }

    [Fact]
    public void Listen_given_as_a_mapping_is_rejected()
    {
        var error = SingleError("""
            listen:
              http: 0.0.0.0:8080
            """);

        Assert.Equal(At(2, 3) + "listen must be a list", error);
    }
}
