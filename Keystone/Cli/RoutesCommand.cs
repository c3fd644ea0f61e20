using Keystone.Routing;

namespace Keystone.Cli;

/// <summary><c>keystone routes</c>: the table as Keystone resolved it, tenants flattened, one route per line.</summary>
public static class RoutesCommand
{
    private static string MethodsText(MethodSet methods) =>
        methods == MethodSet.All ? "*" : Methods.AllowHeader(methods).Replace(" ", "", StringComparison.Ordinal);

    public static int Run(string path, TextWriter stdout, TextWriter stderr)
    {
        var snapshot = CommandLine.LoadOrReport(path, stderr);
        if (snapshot is null) return 1;

        var rows = new List<string[]> { new[] { "ROUTE", "HOST", "METHODS", "PATH", "ACTION" } };
        foreach (var r in snapshot.Config.Routes)
        {
            var action = r.Upstream is not null
                ? $"-> {r.Upstream}{(r.Rewrite is not null ? $" rewrite {r.Rewrite}" : r.StripPrefix is not null ? $" strip {r.StripPrefix}" : "")}"
                : r.Handler is not null ? $"lua {r.Handler}.handle" : $"respond {r.Respond!.Status}";
            if (r.Hooks.Count > 0) action += $" hooks {string.Join(",", r.Hooks.Select(h => h.Script))}";
            rows.Add([r.Name, r.Hosts.Count == 0 ? "*" : string.Join(",", r.Hosts), MethodsText(r.Methods), r.Path, action]);
        }
        // Routes that scripts declare in their routes table answer on any host.
        if (snapshot.Scripts is { } scripts)
            foreach (var route in scripts.Routes)
            {
                var script = scripts.Scripts[route.Script].Name;
                rows.Add([$"{script}:{route.Key}", "*", MethodsText(route.Methods), route.Path, $"lua {script}.routes"]);
            }

        var widths = new int[rows[0].Length];
        foreach (var row in rows)
            for (int i = 0; i < row.Length; i++) widths[i] = Math.Max(widths[i], row[i].Length);
        foreach (var row in rows)
        {
            var line = "";
            for (int i = 0; i < row.Length; i++)
                line += i == row.Length - 1 ? row[i] : row[i].PadRight(widths[i] + 2);
            stdout.WriteLine(line);
        }
        return 0;
    }
}
