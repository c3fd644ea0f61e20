using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>Errors in <c>listen</c> and <c>upstreams</c>: addresses, targets and names.</summary>
public sealed class UpstreamErrorTests
{
    [Fact]
    public void Https_listener_is_rejected_with_advice_to_terminate_tls_in_front()
    {
        var error = SingleError("""
            listen:
              - http://0.0.0.0:8080
              - https://0.0.0.0:8443
            """);

        Assert.Equal(At(3, 5) + "listen 'https://0.0.0.0:8443': https listeners are not supported yet; terminate TLS in front of Keystone", error);
    }

    [Theory]
    [InlineData("0.0.0.0:8080")]
    [InlineData("localhost:8080")]
    [InlineData("http://0.0.0.0:8080/api")]
    [InlineData("http://0.0.0.0:8080/?x=1")]
    [InlineData("tcp://0.0.0.0:8080")]
    public void Listen_that_is_not_a_plain_http_url_shows_an_example(string listen)
    {
        var error = SingleError($"listen: {listen}");

        Assert.Equal(At(1, 9) + $"listen '{listen}' must be an http URL such as http://0.0.0.0:8080", error);
    }

    [Fact]
    public void Empty_listen_list_is_rejected()
    {
        Assert.Equal(At(1, 9) + "listen must name at least one address", SingleError("listen: []"));
    }

    [Fact]
    public void Empty_listen_list_is_reported_even_when_other_keys_have_errors()
    {
        var errors = Errors("""
            lisen: http://0.0.0.0:8080
            listen: []
            """);

        Assert.Equal(
            [At(1, 1) + "unknown key 'lisen' in the config file — did you mean 'listen'?", At(2, 9) + "listen must name at least one address"],
            errors);
    }

    [Theory]
    [InlineData("127.0.0.1:9001")]
    [InlineData("localhost:9001")]
    [InlineData("ftp://127.0.0.1")]
    [InlineData("http://127.0.0.1:9001/?debug=1")]
    [InlineData("http://127.0.0.1:9001/#top")]
    [InlineData("http://user:secret@127.0.0.1:9001")]
    public void Target_must_be_an_http_url_with_a_host_and_no_query(string target)
    {
        var error = SingleError($"""
            upstreams:
              api:
                targets:
                  - {target}
            """);

        Assert.Equal(At(4, 9) + $"target '{target}' of upstream 'api' must be an http:// or https:// URL with a host, and no query or fragment", error);
    }

    [Fact]
    public void Bad_target_url_in_a_mapping_is_reported_at_the_url()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets:
                  - url: 127.0.0.1:9001
                    weight: 2
            """);

        Assert.StartsWith(At(4, 14) + "target '127.0.0.1:9001' of upstream 'api' must be an http:// or https:// URL", error);
    }

    [Fact]
    public void Target_mapping_without_url_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets:
                  - weight: 2
            """);

        Assert.Equal(At(4, 9) + "a target of upstream 'api' needs a 'url'", error);
    }

    [Fact]
    public void Empty_targets_list_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: []
            """);

        Assert.Equal(At(3, 14) + "upstream 'api' has no targets", error);
    }

    [Fact]
    public void Upstream_without_targets_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                timeout: 5s
            """);

        Assert.Equal(At(3, 5) + "upstream 'api' has no targets", error);
    }

    [Fact]
    public void Single_target_not_in_a_list_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: http://127.0.0.1:9001
            """);

        Assert.Equal(At(3, 14) + "targets of upstream 'api' must be a list", error);
    }

    [Fact]
    public void Upstream_that_is_a_bare_url_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api: http://127.0.0.1:9001
            """);

        Assert.Equal(At(2, 8) + "upstream 'api' must be a mapping (key: value)", error);
    }

    [Fact]
    public void Upstream_name_with_spaces_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              my api:
                targets: [http://127.0.0.1:9001]
            """);

        Assert.Equal(At(2, 3) + "upstream name 'my api' may only use letters, digits, '-', '_' and '.'", error);
    }

    [Fact]
    public void Duplicate_upstream_name_is_reported_at_the_second_definition()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
              api:
                targets: [http://127.0.0.1:9002]
            """);

        Assert.StartsWith(At(4, 3), error);
        Assert.Contains("Duplicate key", error);
        Assert.Contains("api", error);
    }

    [Fact]
    public void Unknown_upstream_suggests_the_closest_configured_name()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: users
                path: /users
                upstream: apii
            """);

        Assert.Equal(At(5, 5) + "route 'users' uses unknown upstream 'apii' — did you mean 'api'?", error);
    }

    [Fact]
    public void Unknown_upstream_with_no_near_name_has_no_suggestion()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: users
                path: /users
                upstream: billing-service
            """);

        Assert.Equal(At(5, 5) + "route 'users' uses unknown upstream 'billing-service'", error);
    }
}
