namespace Keystone.Cli;

/// <summary><c>keystone serve</c>: validate, bind, serve until SIGTERM or Ctrl-C, then drain.</summary>
public static class ServeCommand
{
    public static async Task<int> RunAsync(string path, TextWriter stdout, TextWriter stderr)
    {
        Scripting.ScriptWarmup.Start();
        var snapshot = CommandLine.LoadOrReport(path, stderr);
        if (snapshot is null) return 1;

        GatewayHost host;
        try
        {
            host = GatewayHost.Build(snapshot);
        }
        catch (IOException e)
        {
            await stderr.WriteLineAsync($"keystone: {e.Message}");
            return 1;
        }
        await using (host)
        {
            try
            {
                await host.StartAsync();
            }
            catch (IOException e)
            {
                host.Log.LogCritical("cannot listen: {Reason}", e.Message);
                return 1;
            }
            host.Log.LogInformation("keystone {Version} serving {Config}: {Routes} routes, {Upstreams} upstreams, listening on {Addresses}, admin on {Admin}",
                CommandLine.Version, path, snapshot.Config.Routes.Count, snapshot.Config.Upstreams.Count,
                string.Join(", ", host.TrafficAddresses), host.AdminAddress ?? "off");
            await host.WaitForShutdownAsync();
            await host.StopAsync();
            host.Log.LogInformation("keystone stopped");
        }
        return 0;
    }
}
