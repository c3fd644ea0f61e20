using Keystone.Configuration;
using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>The user sees every mistake in one run, each once and at its own line.</summary>
public sealed class ErrorCollectionTests
{
    [Fact]
    public void Five_different_mistakes_yield_five_errors_each_at_its_own_line()
    {
        var result = Load("""
            listen: https://0.0.0.0:8443
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
                preserve_host: maybe
            routes:
              - name: users
                path: /users
                upstream: aip
              - name: orders
                path: /orders
                methods: [GET, FETCH]
                upstream: api
              - name: admin
                path: /admin
                upstream: api
                set_headers:
                  Bad Header: x
            """);
        var errors = result.Errors.OrderBy(e => e.Location.Line).Select(e => e.ToString()).ToList();

        Assert.Null(result.Config);
        Assert.Equal(5, errors.Count);
        Assert.Equal(
            [
                At(1, 9) + "listen 'https://0.0.0.0:8443': https listeners are not supported yet; terminate TLS in front of Keystone",
                At(5, 20) + "preserve_host must be true or false, not 'maybe'",
                At(7, 5) + "route 'users' uses unknown upstream 'aip' — did you mean 'api'?",
                At(12, 20) + "unknown method 'FETCH' (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE or '*')",
                At(18, 7) + "route 'admin': 'Bad Header' is not a valid header name",
            ],
            errors);
    }

    [Fact]
    public void Errors_in_upstreams_routes_and_tenants_are_all_reported()
    {
        var result = Load("""
            shutdown_timeout: later
            upstreams:
              api:
                targets: [ftp://127.0.0.1]
            routes:
              - name: a
                path: a
                respond: {}
            tenants:
              - name: acme
                routes:
                  - name: b
                    respond: {}
            """);

        Assert.Null(result.Config);
        Assert.Equal([1, 4, 7, 12], result.Errors.Select(e => e.Location.Line).Order());
        Assert.All(result.Errors, e => Assert.Equal(FileName, e.Location.File));
    }

    [Fact]
    public void Errors_are_listed_top_to_bottom_even_when_found_in_a_later_pass()
    {
        // The unknown upstream (line 2) is only found once every upstream is read (line 5).
        var errors = Load("""
            routes:
              - name: a
                path: /a
                upstream: nowhere
            upstreams:
              api:
                targets: [ftp://127.0.0.1]
            """).Errors;

        Assert.Equal([(2, 5), (7, 15)], errors.Select(e => (e.Location.Line, e.Location.Column)));
    }

    [Fact]
    public void Errors_print_as_file_line_column_and_message()
    {
        var error = new ConfigError(new SourceLocation("configs/keystone.yaml", 12, 7), "something is wrong");

        Assert.Equal("configs/keystone.yaml:12:7: something is wrong", error.ToString());
    }

    [Fact]
    public void A_malformed_upstream_is_not_also_reported_as_unknown_by_the_routes_using_it()
    {
        var errors = Errors("""
            upstreams:
              api: http://127.0.0.1:9001
            routes:
              - name: users
                path: /users
                upstream: api
            """);

        Assert.Equal([At(2, 8) + "upstream 'api' must be a mapping (key: value)"], errors);
    }

    [Fact]
    public void Load_file_reports_a_missing_file_as_an_error_at_its_path()
    {
        var path = Path.Combine(Path.GetTempPath(), $"keystone-missing-{Guid.NewGuid():N}.yaml");

        var result = ConfigLoader.LoadFile(path, _ => null);

        Assert.Null(result.Config);
        var error = Assert.Single(result.Errors);
        Assert.Equal(new SourceLocation(path, 1, 1), error.Location);
        Assert.StartsWith("cannot read config file: ", error.Message);
    }

    [Fact]
    public void Load_file_names_the_file_in_every_location()
    {
        var path = Path.Combine(Path.GetTempPath(), $"keystone-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "listen: []\n");
        try
        {
            var error = Assert.Single(ConfigLoader.LoadFile(path, _ => null).Errors);

            Assert.Equal($"{path}:1:9: listen must name at least one address", error.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
