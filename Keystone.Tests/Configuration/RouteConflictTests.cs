using Keystone.Configuration;
using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>Conflicts the router finds when the snapshot is built come back as config errors naming both routes.</summary>
public sealed class RouteConflictTests
{
    private static List<ConfigError> Build(string yaml)
    {
        var config = Valid(yaml);
        var errors = new List<ConfigError>();
        var snapshot = Snapshot.Build(config, errors);
        Assert.Equal(errors.Count == 0, snapshot is not null);
        return errors;
    }

    [Fact]
    public void Same_path_and_methods_twice_is_a_conflict_naming_both_routes()
    {
        var errors = Build("""
            routes:
              - name: users-a
                path: /users/{id}
                respond: {}
              - name: users-b
                path: /users/{id}
                respond: {}
            """);

        var error = Assert.Single(errors);
        Assert.Equal(new SourceLocation(FileName, 5, 5), error.Location);
        Assert.Contains("'users-a'", error.Message);
        Assert.Contains("'users-b'", error.Message);
        Assert.Contains("conflict", error.Message);
    }

    [Fact]
    public void Parameters_with_different_names_in_the_same_place_conflict()
    {
        var errors = Build("""
            routes:
              - name: by-id
                path: /users/{id}
                respond: {}
              - name: by-name
                path: /users/{name}
                respond: {}
            """);

        var error = Assert.Single(errors);
        Assert.Equal(5, error.Location.Line);
        Assert.Contains("'by-id'", error.Message);
        Assert.Contains("'by-name'", error.Message);
    }

    [Fact]
    public void Overlapping_method_sets_conflict()
    {
        var errors = Build("""
            routes:
              - name: read
                path: /items
                methods: [GET]
                respond: {}
              - name: write
                path: /items
                methods: [GET, POST]
                respond: {}
            """);

        var error = Assert.Single(errors);
        Assert.Contains("'read'", error.Message);
        Assert.Contains("'write'", error.Message);
    }

    [Fact]
    public void Conflicting_tenant_routes_are_named_with_their_tenant()
    {
        var errors = Build("""
            tenants:
              - name: acme
                hosts: [acme.example.com]
                routes:
                  - name: one
                    path: /
                    respond: {}
                  - name: two
                    path: /
                    respond: {}
            """);

        var error = Assert.Single(errors);
        Assert.Equal(new SourceLocation(FileName, 8, 9), error.Location);
        Assert.Contains("'acme/one'", error.Message);
        Assert.Contains("'acme/two'", error.Message);
    }

    [Fact]
    public void Same_path_with_disjoint_methods_or_hosts_is_not_a_conflict()
    {
        var errors = Build("""
            routes:
              - name: read
                path: /items
                methods: [GET]
                respond: {}
              - name: write
                path: /items
                methods: [POST, PUT]
                respond: {}
              - name: other-host
                host: other.example.com
                path: /items
                respond: {}
            tenants:
              - name: a
                hosts: [a.example.com]
                routes:
                  - name: home
                    path: /
                    respond: {}
              - name: b
                hosts: [b.example.com]
                routes:
                  - name: home
                    path: /
                    respond: {}
            """);

        Assert.Empty(errors);
    }

    [Fact]
    public void Static_parameter_and_catch_all_at_the_same_place_do_not_conflict()
    {
        var errors = Build("""
            routes:
              - name: me
                path: /users/me
                respond: {}
              - name: user
                path: /users/{id}
                respond: {}
              - name: rest
                path: /users/{*rest}
                respond: {}
            """);

        Assert.Empty(errors);
    }

    [Fact]
    public void Every_conflict_is_reported()
    {
        var errors = Build("""
            routes:
              - name: a1
                path: /a
                respond: {}
              - name: a2
                path: /a
                respond: {}
              - name: b1
                path: /b/{id}
                respond: {}
              - name: b2
                path: /b/{key}
                respond: {}
            """);

        Assert.Equal([5, 11], errors.Select(e => e.Location.Line));
    }

    [Fact]
    public void Invalid_path_pattern_is_reported_with_the_route_name()
    {
        var errors = Build("""
            routes:
              - name: files
                path: /files/{*rest}/more
                respond: {}
            """);

        var error = Assert.Single(errors);
        Assert.Equal(new SourceLocation(FileName, 2, 5), error.Location);
        Assert.Contains("'files'", error.Message);
    }

    [Fact]
    public void Valid_config_builds_a_snapshot()
    {
        var config = Valid("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: api
                path: /api/{*rest}
                upstream: api
                strip_prefix: true
              - name: users
                path: /users/{id}
                upstream: api
                rewrite: /v2/users/{id}
            """);
        var errors = new List<ConfigError>();

        var snapshot = Snapshot.Build(config, errors);

        Assert.Empty(errors);
        Assert.NotNull(snapshot);
        Assert.Same(config, snapshot.Config);
        Assert.True(snapshot.Upstreams.ContainsKey("api"));
    }
}
