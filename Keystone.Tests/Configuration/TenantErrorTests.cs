using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>Errors in <c>tenants</c>: names, hosts, path prefixes and their routes.</summary>
public sealed class TenantErrorTests
{
    [Fact]
    public void Route_of_a_tenant_may_not_set_its_own_host()
    {
        var error = SingleError("""
            tenants:
              - name: acme
                hosts: [acme.example.com]
                routes:
                  - name: home
                    host: other.example.com
                    path: /
                    respond: {}
            """);

        Assert.Equal(At(6, 15) + "route 'home': routes of a tenant take the tenant's hosts; remove 'host'", error);
    }

    [Theory]
    [InlineData("acme")]
    [InlineData("/{tenant}")]
    public void Tenant_path_prefix_must_be_a_static_absolute_path(string prefix)
    {
        var error = SingleError($$"""
            tenants:
              - name: acme
                path_prefix: "{{prefix}}"
                routes:
                  - name: home
                    path: /
                    respond: {}
            """);

        Assert.Equal(At(3, 18) + $"path_prefix '{prefix}' must start with '/' and contain no parameters", error);
    }

    [Fact]
    public void Tenant_without_routes_or_name_is_rejected()
    {
        var errors = Errors("""
            tenants:
              - name: acme
                hosts: [acme.example.com]
              - hosts: [other.example.com]
                routes: []
            """);

        Assert.Equal([At(2, 5) + "tenant 'acme' has no routes", At(4, 5) + "a tenant needs a 'name'"], errors);
    }

    [Fact]
    public void Duplicate_tenant_name_is_rejected()
    {
        var error = SingleError("""
            tenants:
              - name: acme
                routes: []
              - name: acme
                routes: []
            """);

        Assert.Equal(At(4, 5) + "duplicate tenant name 'acme'", error);
    }
}
