using Keystone.Configuration;
using Keystone.Routing;

namespace Keystone.Tests.Configuration;

public sealed class ConfigLoaderModelTests
{
    private const string Complete = """
        listen:
          - http://0.0.0.0:8080
          - http://127.0.0.1:9090
        shutdown_timeout: 10s
        upstreams:
          api:
            targets:
              - http://10.0.0.1:3000
              - url: https://10.0.0.2:3443/base
                weight: 3
            preserve_host: false
            timeout: 1500ms
          web:
            targets: [http://10.0.0.3]
        routes:
          - name: users
            host: api.example.com
            path: /users/{id}
            methods: [GET, post]
            upstream: api
            rewrite: /v2/users/{id}
            set_headers:
              X-Env: prod
              X-Team: core
            remove_headers: [X-Debug, Cookie]
          - name: files
            host: [a.example.com, "*.b.example.com"]
            path: /files/{*rest}
            upstream: web
            strip_prefix: true
          - name: docs
            path: /docs/v1/{*rest}
            upstream: web
            strip_prefix: /docs
          - name: health
            path: /healthz
            methods: GET
            respond:
              status: 200
              headers:
                Cache-Control: no-store
              body: ok
        tenants:
          - name: acme
            hosts: [acme.example.com, www.acme.example.com]
            path_prefix: /acme/
            routes:
              - name: api
                path: /api/{*rest}
                upstream: api
                strip_prefix: true
              - name: home
                path: /
                upstream: web
          - name: solo
            hosts: solo.example.com
            routes:
              - name: api
                path: /api/{*rest}
                upstream: api
                strip_prefix: /api
        """;

    private static GatewayConfig Load() => TestConfig.Valid(Complete);

    private static RouteConfig Route(GatewayConfig config, string name) => config.Routes.Single(r => r.Name == name);

    [Fact]
    public void Complete_config_loads_without_errors()
    {
        var result = TestConfig.Load(Complete);

        Assert.Empty(result.Errors);
        Assert.True(result.Ok);
        Assert.Equal(TestConfig.FileName, result.Config!.File);
    }

    [Fact]
    public void Listen_list_and_shutdown_timeout_are_read()
    {
        var config = Load();

        Assert.Equal(["http://0.0.0.0:8080", "http://127.0.0.1:9090"], config.Listen);
        Assert.Equal(TimeSpan.FromSeconds(10), config.ShutdownTimeout);
    }

    [Fact]
    public void Upstream_targets_accept_a_plain_url_or_a_url_with_a_weight()
    {
        var api = Load().Upstreams.Single(u => u.Name == "api");

        Assert.Equal(2, api.Targets.Count);
        Assert.Equal(new Uri("http://10.0.0.1:3000"), api.Targets[0].Url);
        Assert.Equal(1, api.Targets[0].Weight);
        Assert.Equal(new Uri("https://10.0.0.2:3443/base"), api.Targets[1].Url);
        Assert.Equal("/base", api.Targets[1].Url.AbsolutePath);
        Assert.Equal(3, api.Targets[1].Weight);
    }

    [Fact]
    public void Upstream_preserve_host_and_timeout_are_read()
    {
        var config = Load();
        var api = config.Upstreams.Single(u => u.Name == "api");
        var web = config.Upstreams.Single(u => u.Name == "web");

        Assert.False(api.PreserveHost);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), api.Timeout);
        Assert.True(web.PreserveHost);
        Assert.Equal(TimeSpan.FromSeconds(30), web.Timeout);
    }

    [Fact]
    public void Upstreams_and_targets_remember_where_they_were_written()
    {
        var api = Load().Upstreams.Single(u => u.Name == "api");

        Assert.Equal(new SourceLocation(TestConfig.FileName, 6, 3), api.Location);
        Assert.Equal(new SourceLocation(TestConfig.FileName, 8, 9), api.Targets[0].Location);
        Assert.Equal(new SourceLocation(TestConfig.FileName, 9, 14), api.Targets[1].Location);
    }

    [Fact]
    public void Route_with_host_methods_rewrite_and_header_changes_maps_to_the_model()
    {
        var users = Route(Load(), "users");

        Assert.Null(users.Tenant);
        Assert.Equal(["api.example.com"], users.Hosts);
        Assert.Equal("/users/{id}", users.Path);
        Assert.Equal(MethodSet.Get | MethodSet.Post, users.Methods);
        Assert.Equal("api", users.Upstream);
        Assert.Null(users.Respond);
        Assert.Null(users.StripPrefix);
        Assert.Equal("/v2/users/{id}", users.Rewrite);
        Assert.Equal([new("X-Env", "prod"), new("X-Team", "core")], users.SetHeaders);
        Assert.Equal(["X-Debug", "Cookie"], users.RemoveHeaders);
        Assert.Equal(new SourceLocation(TestConfig.FileName, 16, 5), users.Location);
    }

    [Fact]
    public void Host_accepts_a_list_including_wildcards()
    {
        var files = Route(Load(), "files");

        Assert.Equal(["a.example.com", "*.b.example.com"], files.Hosts);
    }

    [Fact]
    public void Strip_prefix_true_strips_the_static_start_of_the_path()
    {
        Assert.Equal("/files", Route(Load(), "files").StripPrefix);
    }

    [Fact]
    public void Strip_prefix_literal_strips_exactly_that_prefix()
    {
        Assert.Equal("/docs", Route(Load(), "docs").StripPrefix);
    }

    [Fact]
    public void Respond_route_carries_status_headers_and_body_and_no_upstream()
    {
        var health = Route(Load(), "health");

        Assert.Null(health.Upstream);
        Assert.Equal(MethodSet.Get, health.Methods);
        Assert.NotNull(health.Respond);
        Assert.Equal(200, health.Respond.Status);
        Assert.Equal([new("Cache-Control", "no-store")], health.Respond.Headers);
        Assert.Equal("ok", health.Respond.Body);
    }

    [Fact]
    public void Tenant_routes_are_flattened_with_tenant_name_hosts_and_path_prefix()
    {
        var config = Load();
        var api = Route(config, "acme/api");
        var home = Route(config, "acme/home");

        Assert.Equal("acme", api.Tenant);
        Assert.Equal(["acme.example.com", "www.acme.example.com"], api.Hosts);
        Assert.Equal("/acme/api/{*rest}", api.Path);
        Assert.Equal("api", api.Upstream);
        Assert.Equal(["acme.example.com", "www.acme.example.com"], home.Hosts);
        Assert.Equal("/acme/", home.Path);
        Assert.Equal(new SourceLocation(TestConfig.FileName, 48, 9), api.Location);
    }

    [Fact]
    public void Tenant_strip_prefix_true_includes_the_tenant_prefix()
    {
        Assert.Equal("/acme/api", Route(Load(), "acme/api").StripPrefix);
    }

    [Fact]
    public void Tenant_without_path_prefix_keeps_paths_and_takes_a_single_host()
    {
        var api = Route(Load(), "solo/api");

        Assert.Equal("solo", api.Tenant);
        Assert.Equal(["solo.example.com"], api.Hosts);
        Assert.Equal("/api/{*rest}", api.Path);
        Assert.Equal("/api", api.StripPrefix);
    }

    [Fact]
    public void Routes_keep_declaration_order_with_tenant_routes_after_top_level_routes()
    {
        var names = Load().Routes.Select(r => r.Name);

        Assert.Equal(["users", "files", "docs", "health", "acme/api", "acme/home", "solo/api"], names);
    }

    [Fact]
    public void Same_route_name_in_two_tenants_is_not_a_duplicate()
    {
        var config = TestConfig.Valid("""
            tenants:
              - name: a
                routes:
                  - name: home
                    path: /
                    respond: {}
              - name: b
                routes:
                  - name: home
                    path: /
                    respond: {}
            """);

        Assert.Equal(["a/home", "b/home"], config.Routes.Select(r => r.Name));
    }
}
