namespace Keystone.Cli;

/// <summary>Parses <c>keystone [serve|validate|routes|version] [--config PATH]</c> and runs the command.</summary>
public static class CommandLine
{
    public const string Usage = """
        usage: keystone [serve] [--config PATH]    run the gateway (default)
               keystone validate --config PATH     check a config; prints file:line:col: message per problem
               keystone routes --config PATH       print the resolved route table
               keystone version                    print the version
        The config defaults to ./keystone.yaml, else configs/keystone.yaml.
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string command = "serve";
        string? config = null;
        for (int i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "--config" or "-c" && i + 1 < args.Length) config = args[++i];
            else if (arg.StartsWith("--config=", StringComparison.Ordinal)) config = arg["--config=".Length..];
            else if (arg is "--help" or "-h" or "help") { await stdout.WriteLineAsync(Usage); return 0; }
            else if (arg is "--version") command = "version";
            else if (i == 0 && !arg.StartsWith('-')) command = arg;
            else
            {
                await stderr.WriteLineAsync($"keystone: unexpected argument '{arg}'\n{Usage}");
                return 2;
            }
        }

        switch (command)
        {
            case "version":
                await stdout.WriteLineAsync($"keystone {Version}");
                return 0;
            case "serve" or "validate" or "routes":
                var path = config ?? DefaultConfigPath();
                return command switch
                {
                    "serve" => await ServeCommand.RunAsync(path, stdout, stderr),
                    "validate" => ValidateCommand.Run(path, stdout, stderr),
                    _ => RoutesCommand.Run(path, stdout, stderr),
                };
            default:
                await stderr.WriteLineAsync($"keystone: unknown command '{command}'\n{Usage}");
                return 2;
        }
    }

    public static string Version =>
        typeof(CommandLine).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public static string DefaultConfigPath() =>
        File.Exists("keystone.yaml") ? "keystone.yaml" : Path.Combine("configs", "keystone.yaml");

    /// <summary>Loads and builds a snapshot, printing every error as <c>file:line:col: message</c>.</summary>
    internal static Snapshot? LoadOrReport(string path, TextWriter stderr)
    {
        var (snapshot, errors) = Snapshot.Load(path);
        foreach (var error in errors) stderr.WriteLine(error.ToString());
        if (snapshot is null && errors.Count > 0)
            stderr.WriteLine($"keystone: {errors.Count} problem{(errors.Count == 1 ? "" : "s")} in {path}");
        return snapshot;
    }
}
