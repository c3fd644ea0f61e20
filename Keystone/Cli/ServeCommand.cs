namespace Keystone.Cli;

/// <summary><c>keystone serve</c>: validate, bind, serve until SIGTERM or Ctrl-C, then drain.</summary>
public static class ServeCommand
{
    public static async Task<int> RunAsync(string path, TextWriter stdout, TextWriter stderr)
    {
        var snapshot = CommandLine.LoadOrReport(path, stderr);
        if (snapshot is null) return 1;

        var app = GatewayHost.Build(snapshot, out _);
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Keystone");
        try
        {
            await app.StartAsync();
        }
        catch (IOException e)
        {
            log.LogCritical("cannot listen: {Reason}", e.Message);
            return 1;
        }
        log.LogInformation("keystone {Version} serving {Config}: {Routes} routes, {Upstreams} upstreams, listening on {Addresses}",
            CommandLine.Version, path, snapshot.Config.Routes.Count, snapshot.Config.Upstreams.Count,
            string.Join(", ", GatewayHost.BoundAddresses(app)));
        await app.WaitForShutdownAsync();
        log.LogInformation("keystone stopped");
        await app.DisposeAsync();
        return 0;
    }
}
