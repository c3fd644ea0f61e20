using System.Text;

namespace Keystone.Benchmarks.Configuration;

/// <summary>
/// Writes a 1,000-route keystone.yaml into a new temp folder: four upstreams of two targets (one with active health
/// checks), and routes mixing what real configs hold (static and parameterised paths, method lists, rewrites, prefix
/// stripping, header edits, fixed responses, a few host-bound routes), so loading exercises every route reader.
/// </summary>
internal static class ThousandRouteConfig
{
    public const int Routes = 1_000;
    private const int Upstreams = 4;

    private const string Hook = """
        function on_request(req)
          if req.headers["x-api-key"] == nil then return { status = 401 } end
        end
        """;

    /// <summary>Returns the config file's path; its folder also holds <c>scripts/</c> (with one hook script when asked).</summary>
    /// <param name="withLuaHook">Writes scripts/auth.lua and puts it on every other route.</param>
    public static string Write(bool withLuaHook)
    {
        var dir = Directory.CreateTempSubdirectory("keystone-bench-").FullName;
        // Always named explicitly: the default, ./scripts, would depend on the benchmark process's working directory.
        var scripts = Path.Combine(dir, "scripts");
        Directory.CreateDirectory(scripts);
        if (withLuaHook) File.WriteAllText(Path.Combine(scripts, "auth.lua"), Hook);

        var yaml = new StringBuilder();
        yaml.Append($"""
            listen: http://127.0.0.1:8080
            lua:
              scripts_dir: '{scripts}'
            upstreams:

            """);
        for (int u = 0; u < Upstreams; u++)
        {
            yaml.Append($"""
                  svc{u}:
                    targets:
                      - http://127.0.0.1:{9000 + (2 * u)}
                      - url: http://127.0.0.1:{9001 + (2 * u)}/base
                        weight: 2
                    timeout: 10s

                """);
            if (u == 0) yaml.Append("    health: { path: /healthz, interval: 5s }\n");
        }

        yaml.Append("routes:\n");
        for (int i = 0; i < Routes; i++)
        {
            AppendRoute(yaml, i, withLuaHook && i % 2 == 0);
        }

        var file = Path.Combine(dir, "keystone.yaml");
        File.WriteAllText(file, yaml.ToString());
        return file;
    }

    /// <summary>Deletes the folder <see cref="Write"/> made.</summary>
    public static void Delete(string file) => Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);

    private static void AppendRoute(StringBuilder yaml, int i, bool hooked)
    {
        int u = i % Upstreams;
        bool param = i % 2 == 1;
        string path = param ? $"/svc{u}/v{i % 7}/resource{i}/{{id}}" : $"/svc{u}/v{i % 7}/resource{i}";
        yaml.Append($"  - name: route-{i}\n    path: {path}\n");
        yaml.Append(i % 3 == 0 ? "    methods: [GET, HEAD]\n" : "    methods: [GET, POST, PUT, DELETE]\n");
        if (i % 50 == 0) yaml.Append($"    host: shop{i}.example.com\n");
        if (hooked) yaml.Append("    hooks: [auth]\n");

        if (i % 10 == 9)
        {
            yaml.Append("    respond: { status: 200, headers: { content-type: application/json }, body: '{\"ok\":true}' }\n");
            return;
        }

        yaml.Append($"    upstream: svc{u}\n");
        if (param && i % 3 == 1) yaml.Append($"    rewrite: /resource{i}/{{id}}\n");
        else if (i % 3 == 2) yaml.Append($"    strip_prefix: /svc{u}\n");
        if (i % 5 == 0) yaml.Append($"    set_headers: {{ X-Route: route-{i} }}\n");
        if (i % 4 == 0) yaml.Append("    remove_headers: [Cookie]\n");
    }
}
