namespace Keystone.Cli;

/// <summary><c>keystone validate</c>: every problem of a config file, before anything binds a port.</summary>
public static class ValidateCommand
{
    public static int Run(string path, TextWriter stdout, TextWriter stderr)
    {
        var snapshot = CommandLine.LoadOrReport(path, stderr);
        if (snapshot is null) return 1;
        stdout.WriteLine($"{path}: ok ({snapshot.Config.Routes.Count} routes, {snapshot.Config.Upstreams.Count} upstreams)");
        return 0;
    }
}
