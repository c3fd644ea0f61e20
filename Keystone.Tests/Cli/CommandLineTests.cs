using System.Text.Json;
using Keystone.Cli;

namespace Keystone.Tests.Cli;

public sealed class CommandLineTests : IDisposable
{
    private readonly List<string> _written = [];

    public void Dispose()
    {
        foreach (var path in _written) File.Delete(path);
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private string WriteConfig(string yaml)
    {
        var path = Path.Combine(Path.GetTempPath(), $"keystone-cli-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        _written.Add(path);
        return path;
    }

    [Fact]
    public async Task Validate_prints_every_problem_with_line_and_column_and_exits_1()
    {
        var path = WriteConfig("""
            upstreams:
              api:
                targets: []
            routes:
              - name: a
                path: /a
                upstream: nope
              - name: b
                pathh: /b
                respond: { status: 200 }
            """);
        var (code, _, err) = await Run("validate", "--config", path);

        Assert.Equal(1, code);
        Assert.Contains($"{path}:3:14: upstream 'api' has no targets", err);
        Assert.Contains($"{path}:5:5: route 'a' uses unknown upstream 'nope'", err);
        Assert.Contains($"{path}:9:5: unknown key 'pathh' in a route — did you mean 'path'?", err);
        Assert.Contains($"{path}:8:5: route 'b' needs a 'path'", err);
        Assert.True(err.IndexOf(":3:14:", StringComparison.Ordinal) < err.IndexOf(":9:5:", StringComparison.Ordinal), "errors are listed in file order");
    }

    [Fact]
    public async Task Validate_accepts_a_good_file_and_exits_0()
    {
        var path = WriteConfig("routes:\n  - { name: a, path: /, respond: { status: 204 } }\n");
        var (code, output, err) = await Run("validate", "--config", path);
        Assert.Equal(0, code);
        Assert.Contains("ok (1 routes, 0 upstreams)", output);
        Assert.Equal("", err);
    }

    [Fact]
    public async Task Validate_reports_a_missing_file()
    {
        var (code, _, err) = await Run("validate", "--config", "/nonexistent/keystone.yaml");
        Assert.Equal(1, code);
        Assert.Contains("/nonexistent/keystone.yaml:1:1: cannot read config file", err);
    }

    [Fact]
    public async Task Routes_prints_the_resolved_table_with_tenants_flattened()
    {
        var path = WriteConfig("""
            upstreams:
              api: { targets: [http://127.0.0.1:9] }
            routes:
              - { name: home, path: /, methods: [GET], respond: { status: 200 } }
            tenants:
              - name: acme
                hosts: [acme.test]
                path_prefix: /acme
                routes:
                  - { name: users, path: "/users/{id}", upstream: api, rewrite: "/v2/users/{id}" }
            """);
        var (code, output, _) = await Run("routes", "--config", path);
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("ROUTE", lines[0]);
        Assert.Matches(@"^home\s+\*\s+GET\s+/\s+respond 200", lines[1]);
        Assert.Matches(@"^acme/users\s+acme\.test\s+\*\s+/acme/users/\{id\}\s+-> api rewrite /v2/users/\{id\}", lines[2]);
    }

    [Fact]
    public async Task Version_prints_the_version()
    {
        var (code, output, _) = await Run("version");
        Assert.Equal(0, code);
        Assert.Matches(@"^keystone \d+\.\d+\.\d+", output);
    }

    [Fact]
    public async Task Unknown_command_exits_2_with_usage()
    {
        var (code, _, err) = await Run("frobnicate");
        Assert.Equal(2, code);
        Assert.Contains("usage: keystone", err);
    }

    [Fact]
    public async Task Serve_with_a_broken_config_exits_1_before_binding()
    {
        var path = WriteConfig("listen: [http://127.0.0.1:0]\nroutes: 5\n");
        var (code, _, err) = await Run("serve", "--config", path);
        Assert.Equal(1, code);
        Assert.Contains(":2:9: routes must be a list", err);
    }

    [Fact]
    public async Task Shipped_configs_are_valid()
    {
        var root = RepositoryRoot();
        var files = new List<string> { Path.Combine(root, "configs", "keystone.yaml") };
        files.AddRange(Directory.GetFiles(Path.Combine(root, "configs", "examples"), "*.yaml"));
        foreach (var file in files)
        {
            // scripts_dir is relative to the working directory: the repository root for users (each example's header
            // says so), the test binaries' folder here. A copy of such a config names the folder absolutely.
            var yaml = File.ReadAllText(file);
            var config = yaml.Contains("scripts_dir: scripts", StringComparison.Ordinal)
                ? WriteConfig(yaml.Replace("scripts_dir: scripts", "scripts_dir: " + JsonSerializer.Serialize(Path.Combine(root, "scripts")), StringComparison.Ordinal))
                : file;
            var (code, _, err) = await Run("validate", "--config", config);
            Assert.True(code == 0, $"{file}:\n{err}");
        }
    }

    internal static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "keystone.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("keystone.sln not found above the test binaries");
    }
}
