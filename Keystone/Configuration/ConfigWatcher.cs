namespace Keystone.Configuration;

/// <summary>
/// Watches the config file and the scripts folder and asks for a reload once changes settle. The config
/// file's directory is watched rather than the file, because editors save by writing a new file and
/// renaming it over the old one, which a watch on the file itself would miss.
/// </summary>
public sealed class ConfigWatcher : IDisposable
{
    /// <summary>Quiet time after the last change before reloading: one save is several file events.</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly Timer _timer;
    private readonly Action<string> _reload;
    private string _trigger = "file change";

    public ConfigWatcher(string configFile, string? scriptsDir, Action<string> reload)
    {
        _reload = reload;
        _timer = new Timer(_ => _reload(Volatile.Read(ref _trigger)));
        var configPath = Path.GetFullPath(configFile);
        Watch(Path.GetDirectoryName(configPath)!, Path.GetFileName(configPath), recursive: false, "config file change");
        if (scriptsDir is not null && Directory.Exists(scriptsDir))
            Watch(Path.GetFullPath(scriptsDir), "*.lua", recursive: true, "script change");
    }

    private void Watch(string directory, string filter, bool recursive, string trigger)
    {
        var watcher = new FileSystemWatcher(directory, filter)
        {
            IncludeSubdirectories = recursive,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        FileSystemEventHandler changed = (_, _) => Poke(trigger);
        watcher.Changed += changed;
        watcher.Created += changed;
        watcher.Deleted += changed;
        watcher.Renamed += (_, _) => Poke(trigger);
        watcher.EnableRaisingEvents = true;
        _watchers.Add(watcher);
    }

    private void Poke(string trigger)
    {
        Volatile.Write(ref _trigger, trigger);
        _timer.Change(Settle, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        foreach (var watcher in _watchers) watcher.Dispose();
        _timer.Dispose();
    }
}
