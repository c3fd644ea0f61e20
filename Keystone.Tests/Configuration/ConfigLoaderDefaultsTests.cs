using Keystone.Configuration;
using Keystone.Routing;

namespace Keystone.Tests.Configuration;

public sealed class ConfigLoaderDefaultsTests
{
    private const string Minimal = """
        upstreams:
          api:
            targets: [http://127.0.0.1:9001]
        routes:
          - name: all
            path: /
            upstream: api
        """;

    [Fact]
    public void Listen_defaults_to_all_interfaces_on_port_8080()
    {
        Assert.Equal(["http://0.0.0.0:8080"], TestConfig.Valid(Minimal).Listen);
        Assert.Equal("http://0.0.0.0:8080", ConfigLoader.DefaultListen);
    }

    [Fact]
    public void Shutdown_timeout_defaults_to_30_seconds()
    {
        Assert.Equal(TimeSpan.FromSeconds(30), TestConfig.Valid(Minimal).ShutdownTimeout);
    }

    [Fact]
    public void Upstream_defaults_to_preserve_host_and_a_30_second_timeout()
    {
        var api = TestConfig.Valid(Minimal).Upstreams.Single();

        Assert.True(api.PreserveHost);
        Assert.Equal(TimeSpan.FromSeconds(30), api.Timeout);
    }

    [Fact]
    public void Target_weight_defaults_to_1()
    {
        Assert.Equal(1, TestConfig.Valid(Minimal).Upstreams.Single().Targets.Single().Weight);
    }

    [Fact]
    public void Route_defaults_to_all_methods_any_host_and_no_path_changes()
    {
        var route = TestConfig.Valid(Minimal).Routes.Single();

        Assert.Equal(MethodSet.All, route.Methods);
        Assert.Empty(route.Hosts);
        Assert.Null(route.Tenant);
        Assert.Null(route.StripPrefix);
        Assert.Null(route.Rewrite);
        Assert.Empty(route.SetHeaders);
        Assert.Empty(route.RemoveHeaders);
    }

    [Fact]
    public void Respond_defaults_to_200_with_an_empty_body()
    {
        var route = TestConfig.Valid("""
            routes:
              - name: ok
                path: /
                respond: {}
            """).Routes.Single();

        Assert.NotNull(route.Respond);
        Assert.Equal(200, route.Respond.Status);
        Assert.Equal("", route.Respond.Body);
        Assert.Empty(route.Respond.Headers);
    }

    [Theory]
    [InlineData("'*'")]
    [InlineData("ANY")]
    [InlineData("[GET, '*']")]
    public void Star_or_ANY_in_methods_means_all_methods(string methods)
    {
        var route = TestConfig.Valid($$"""
            routes:
              - name: ok
                path: /
                methods: {{methods}}
                respond: {}
            """).Routes.Single();

        Assert.Equal(MethodSet.All, route.Methods);
    }

    [Fact]
    public void Methods_are_case_insensitive()
    {
        var route = TestConfig.Valid("""
            routes:
              - name: ok
                path: /
                methods: [get, Delete]
                respond: {}
            """).Routes.Single();

        Assert.Equal(MethodSet.Get | MethodSet.Delete, route.Methods);
    }

    [Theory]
    [InlineData("false")]
    [InlineData("no")]
    [InlineData("off")]
    [InlineData("False")]
    public void Strip_prefix_false_strips_nothing(string value)
    {
        var route = TestConfig.Valid($$"""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: files
                path: /files/{*rest}
                upstream: api
                strip_prefix: {{value}}
            """).Routes.Single();

        Assert.Null(route.StripPrefix);
    }

    [Theory]
    [InlineData("true")]
    [InlineData("True")]
    [InlineData("yes")]
    [InlineData("on")]
    public void Strip_prefix_true_words_strip_the_static_start(string value)
    {
        var route = TestConfig.Valid($$"""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: files
                path: /files/{*rest}
                upstream: api
                strip_prefix: {{value}}
            """).Routes.Single();

        Assert.Equal("/files", route.StripPrefix);
    }

    [Theory]
    [InlineData("yes", true)]
    [InlineData("on", true)]
    [InlineData("true", true)]
    [InlineData("no", false)]
    [InlineData("off", false)]
    [InlineData("False", false)]
    public void Preserve_host_accepts_yaml_booleans(string value, bool expected)
    {
        var api = TestConfig.Valid($"""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
                preserve_host: {value}
            """).Upstreams.Single();

        Assert.Equal(expected, api.PreserveHost);
    }

    [Fact]
    public void A_file_with_no_routes_or_upstreams_is_valid()
    {
        var config = TestConfig.Valid("""
            listen: http://127.0.0.1:8081
            upstreams:
            routes:
            """);

        Assert.Equal(["http://127.0.0.1:8081"], config.Listen);
        Assert.Empty(config.Upstreams);
        Assert.Empty(config.Routes);
    }
}
