using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Keystone.Tests.Integration;

/// <summary>`keystone serve` in a child process (a fresh runtime: nothing compiled yet) on a free loopback port.</summary>
public sealed class KeystoneProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _configPath;
    private readonly StringBuilder _output;

    private KeystoneProcess(Process process, string configPath, string baseUrl, StringBuilder output)
    {
        _process = process;
        _output = output;
        _configPath = configPath;
        Client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, UseProxy = false })
        { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(30) };
    }

    public HttpClient Client { get; }

    /// <summary>Everything the child wrote to stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    /// <summary>The child's process id, for sending it signals.</summary>
    public int ProcessId => _process.Id;

    /// <summary>The config file the child serves; tests rewrite it to exercise reloads.</summary>
    public string ConfigPath => _configPath;

    /// <summary>Serves <paramref name="yaml"/>, which must listen on 127.0.0.1:0; returns once the listener is up.</summary>
    public static async Task<KeystoneProcess> StartAsync(string yaml, params (string Name, string Value)[] environment)
    {
        var path = Path.Combine(Path.GetTempPath(), $"keystone-process-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, yaml);
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "keystone.dll"), "serve", "--config", path])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        var process = Process.Start(start)!;
        var output = new StringBuilder();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Read(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (Regex.Match(e.Data, @"listening on (http://127\.0\.0\.1:\d+)") is { Success: true } m) listening.TrySetResult(m.Groups[1].Value);
        }
        process.OutputDataReceived += Read;
        process.ErrorDataReceived += Read;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var exited = process.WaitForExitAsync();
        if (await Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromSeconds(30))) != listening.Task)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            File.Delete(path);
            string text;
            lock (output) text = output.ToString();
            throw new InvalidOperationException("keystone serve did not start:\n" + text);
        }
        return new KeystoneProcess(process, path, await listening.Task, output);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        File.Delete(_configPath);
    }
}
