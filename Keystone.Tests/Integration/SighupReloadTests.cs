using System.Diagnostics;

namespace Keystone.Tests.Integration;

/// <summary>SIGHUP reloads the config, like nginx -s reload. A child process gets the signal, never the test host.</summary>
public class SighupReloadTests
{
    private const string Config = """
        listen: [http://127.0.0.1:0]
        admin: off
        access_log: off
        log_level: information
        routes:
          - { name: version, path: /version, respond: { status: 200, body: "BODY" } }
        """;

    [Fact]
    public async Task Sighup_reloads_the_config_file()
    {
        await using var keystone = await KeystoneProcess.StartAsync(Config.Replace("BODY", "one"));
        Assert.Equal("one", await keystone.Client.GetStringAsync("/version"));

        // Written in place with the watcher's settle time in mind: the signal, not the file event, is under test,
        // so the file is changed first and the reload asked for at once.
        var port = new Uri(keystone.Client.BaseAddress!.ToString()).Port;
        await File.WriteAllTextAsync(keystone.ConfigPath, Config.Replace("BODY", "two").Replace("127.0.0.1:0", $"127.0.0.1:{port}"));
        using (var kill = Process.Start("kill", ["-HUP", keystone.ProcessId.ToString()]))
        {
            await kill.WaitForExitAsync();
            Assert.Equal(0, kill.ExitCode);
        }

        var body = "";
        for (int i = 0; i < 100 && body != "two"; i++)
        {
            await Task.Delay(50);
            body = await keystone.Client.GetStringAsync("/version");
        }
        Assert.Equal("two", body);
        // The file watcher may reload too; the log shows the signal did.
        for (int i = 0; i < 100 && !keystone.Output.Contains("reload (SIGHUP) applied"); i++) await Task.Delay(50);
        Assert.Contains("reload (SIGHUP) applied", keystone.Output);
        // The process is still serving: SIGHUP must not stop it the way it stops most programs.
        Assert.Equal("two", await keystone.Client.GetStringAsync("/version"));
    }
}
