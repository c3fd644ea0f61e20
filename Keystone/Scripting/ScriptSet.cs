using Keystone.Configuration;
using Keystone.Observability;
using Keystone.Routing;
using Prometheus;

namespace Keystone.Scripting;

/// <summary>One script file: <c>scripts/&lt;Name&gt;.lua</c>.</summary>
internal sealed record ScriptSource(string Name, string FullPath, string DisplayPath, byte[] Source);

/// <summary>A route a script declared in its <c>routes</c> table: <c>"GET /hello"</c>.</summary>
internal sealed record ScriptRoute(int Script, string Key, MethodSet Methods, string Path);

/// <summary>What a state needs besides the sources: budget, memory cap, the readable environment, body limit.</summary>
internal sealed record ScriptSettings(TimeSpan Budget, long MemoryBytes, IReadOnlyDictionary<string, string?> Environment, long MaxBody);

/// <summary>
/// The scripts of one snapshot: every file of the scripts folder read once, compiled and checked by
/// building the first Lua state, plus the routes scripts declare. The pool builds its states from this.
/// </summary>
internal sealed class ScriptSet
{
    /// <summary>Scripts and library modules larger than this are refused: Lua's parser on a huge generated chunk is slow.</summary>
    public const int MaxSourceBytes = 256 * 1024;

    private static SharedDictionary? _shared;
    private readonly Dictionary<string, int> _byName = new(StringComparer.Ordinal);
    private readonly List<ScriptRoute> _routes = [];

    // Keystone's own warm-up script is timed and counted like any other, but not exported.
    private static readonly IMetricFactory Unexported = Prometheus.Metrics.WithCustomRegistry(Prometheus.Metrics.NewCustomRegistry());
    private static readonly Histogram UnexportedDuration = Unexported.CreateHistogram("lua_duration", "", ["script", "phase"]);
    private static readonly Counter UnexportedFailures = Unexported.CreateCounter("lua_failures", "", ["script", "reason"]);

    private ScriptSet(ScriptSettings settings, List<ScriptSource> scripts, List<KeyValuePair<string, byte[]>> libraries, SharedDictionary shared, bool exported = true)
    {
        var durations = exported ? GatewayMetrics.LuaDuration : UnexportedDuration;
        var failures = exported ? GatewayMetrics.LuaFailures : UnexportedFailures;
        Settings = settings;
        Scripts = scripts;
        Libraries = libraries;
        Shared = shared;
        for (int i = 0; i < scripts.Count; i++) _byName[scripts[i].Name] = i;
        Durations = new Histogram.Child[scripts.Count * 3];
        Failures = new Counter.Child[scripts.Count * 3];
        for (int i = 0; i < scripts.Count; i++)
        {
            var name = scripts[i].Name;
            Durations[i * 3] = durations.WithLabels(name, "request");
            Durations[i * 3 + 1] = durations.WithLabels(name, "response");
            Durations[i * 3 + 2] = durations.WithLabels(name, "handler");
            Failures[i * 3] = failures.WithLabels(name, "error");
            Failures[i * 3 + 1] = failures.WithLabels(name, "budget");
            Failures[i * 3 + 2] = failures.WithLabels(name, "memory");
        }
    }

    public ScriptSettings Settings { get; }
    public IReadOnlyList<ScriptSource> Scripts { get; }
    public IReadOnlyList<KeyValuePair<string, byte[]>> Libraries { get; }
    public IReadOnlyList<ScriptRoute> Routes => _routes;
    public SharedDictionary Shared { get; }

    /// <summary>keystone_lua_execution_duration_seconds children, by script * 3 + phase (request, response, handler).</summary>
    public Histogram.Child[] Durations { get; }

    /// <summary>keystone_lua_failures_total children, by script * 3 + reason (error, budget, memory).</summary>
    public Counter.Child[] Failures { get; }

    /// <summary>
    /// Set once a call of this set ran out of its budget. Hooks normally run on whatever thread has the request,
    /// with inline scheduling the socket engine's own (<see cref="RuntimeDefaults.InlineScheduling"/>); a set
    /// that has shown it can spend a whole budget there runs on the thread pool from then on, so a hostile script
    /// delays its own requests and not every connection's I/O. A reload starts a new set, trusted again.
    /// </summary>
    public bool Overran => _overran;

    private volatile bool _overran;

    public void MarkOverran() => _overran = true;

    /// <summary>True while the first state is built: its <c>routes</c> tables declare the script routes.</summary>
    public bool Discovering { get; private set; } = true;

    /// <summary>The state built while loading, handed to the pool so the work is not done twice.</summary>
    public LuaState? FirstState { get; private set; }

    private bool[] _defines = [];

    /// <summary>Whether the script defines on_request, on_response or handle (as its first state found).</summary>
    public bool Defines(int script, ScriptFunction function) => _defines[script * 3 + (int)function];

    public int IndexOf(string name) => _byName.TryGetValue(name, out var i) ? i : -1;

    public int FindRoute(int script, string key)
    {
        for (int i = 0; i < _routes.Count; i++)
            if (_routes[i].Script == script && _routes[i].Key == key) return i;
        return -1;
    }

    public int DeclareRoute(int script, string key)
    {
        _routes.Add(new ScriptRoute(script, key, MethodSet.All, ""));
        return _routes.Count - 1;
    }

    /// <summary>Reads and compiles the scripts folder; null when there are no scripts at all.</summary>
    /// <param name="previous">The set being replaced: a script that no longer compiles keeps its previous version.</param>
    public static ScriptSet? Load(LuaConfig config, ScriptSet? previous, List<ConfigError> errors)
    {
        var dir = Path.GetFullPath(config.ScriptsDir);
        if (!Directory.Exists(dir)) return null;
        var scripts = new List<ScriptSource>();
        foreach (var file in Directory.GetFiles(dir, "*.lua").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            var display = Path.Combine(config.ScriptsDir, Path.GetFileName(file));
            if (!Names.IsValid(name))
            {
                errors.Add(new ConfigError(new SourceLocation(display, 1, 1), $"script name '{name}' may only contain letters, digits, '-' and '_'"));
                continue;
            }
            if (ReadSource(file, display, errors) is { } source) scripts.Add(new ScriptSource(name, file, display, source));
        }
        if (scripts.Count == 0) return null;

        var libraries = new List<KeyValuePair<string, byte[]>>();
        var libDir = Path.Combine(dir, "lib");
        if (Directory.Exists(libDir))
        {
            foreach (var file in Directory.GetFiles(libDir, "*.lua", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                var module = Path.ChangeExtension(Path.GetRelativePath(libDir, file), null).Replace(Path.DirectorySeparatorChar, '.');
                if (ReadSource(file, Path.Combine(config.ScriptsDir, "lib", Path.GetRelativePath(libDir, file)), errors) is { } source)
                    libraries.Add(new(module, source));
            }
        }

        var settings = new ScriptSettings(config.Budget, config.MemoryBytes, ReadEnvironment(config.Env), config.MaxBody);
        return Compile(settings, scripts, libraries, previous, errors, _shared ??= new SharedDictionary(config.SharedMemoryBytes));
    }

    /// <summary>Compiles sources by building the first state; load errors become config errors with the script's line.</summary>
    public static ScriptSet? Compile(ScriptSettings settings, List<ScriptSource> scripts, List<KeyValuePair<string, byte[]>> libraries,
        ScriptSet? previous, List<ConfigError> errors, SharedDictionary shared, bool exported = true)
    {
        if (exported) ScriptWarmup.Run();
        for (int attempt = 0; ; attempt++)
        {
            var set = new ScriptSet(settings, scripts, libraries, shared, exported);
            var loadErrors = new List<ScriptLoadError>();
            var state = LuaState.TryCreate(set, loadErrors);
            if (state is not null)
            {
                set.Discovering = false;
                set.FirstState = state;
                set._defines = new bool[scripts.Count * 3];
                for (int i = 0; i < set._defines.Length; i++) set._defines[i] = state.HasFunction(i / 3, (ScriptFunction)(i % 3));
                set.CheckRoutes(errors);
                return set;
            }
            // A script that used to work keeps its previous version (one more attempt); a new one is an error.
            bool substituted = false, failed = false;
            foreach (var failure in loadErrors)
            {
                var old = attempt == 0 ? previous?.Scripts.FirstOrDefault(s => s.Name == failure.Script.Name) : null;
                if (old is not null && !old.Source.AsSpan().SequenceEqual(failure.Script.Source))
                {
                    ScriptLog.Logger.LogError("{Error} (the previous version of {Script} keeps serving)", failure.Message, failure.Script.DisplayPath);
                    scripts[scripts.IndexOf(failure.Script)] = old;
                    substituted = true;
                }
                else
                {
                    errors.Add(new ConfigError(LocationOf(failure), failure.Message));
                    failed = true;
                }
            }
            if (failed || !substituted) return null;
        }
    }

    private static byte[]? ReadSource(string file, string display, List<ConfigError> errors)
    {
        var info = new FileInfo(file);
        if (info.Length > MaxSourceBytes)
        {
            errors.Add(new ConfigError(new SourceLocation(display, 1, 1), $"script is larger than {MaxSourceBytes / 1024} KB"));
            return null;
        }
        try
        {
            return File.ReadAllBytes(file);
        }
        catch (IOException e)
        {
            errors.Add(new ConfigError(new SourceLocation(display, 1, 1), "cannot read the script: " + e.Message));
            return null;
        }
    }

    /// <summary>Lua messages start with "chunkname:line:"; the location is pulled out of them.</summary>
    private static SourceLocation LocationOf(ScriptLoadError error)
    {
        var file = error.Script.DisplayPath;
        if (error.Message.StartsWith(file + ":", StringComparison.Ordinal))
        {
            var rest = error.Message.AsSpan(file.Length + 1);
            int colon = rest.IndexOf(':');
            if (colon > 0 && int.TryParse(rest[..colon], out var line)) return new SourceLocation(file, line, 1);
        }
        return new SourceLocation(file, 1, 1);
    }

    /// <summary>Parses the declared route keys ("METHOD /path", "GET,POST /path" or "/path" for any method).</summary>
    private void CheckRoutes(List<ConfigError> errors)
    {
        for (int i = 0; i < _routes.Count; i++)
        {
            var route = _routes[i];
            var key = route.Key.Trim();
            int space = key.IndexOf(' ');
            var methodsText = space < 0 ? "" : key[..space];
            var path = space < 0 ? key : key[(space + 1)..].Trim();
            var methods = MethodSet.All;
            var where = new SourceLocation(Scripts[route.Script].DisplayPath, 1, 1);
            if (methodsText is not ("" or "*" or "ANY"))
            {
                methods = MethodSet.None;
                foreach (var m in methodsText.Split(','))
                {
                    var one = Methods.Parse(m.Trim().ToUpperInvariant());
                    if (one != MethodSet.None) methods |= one;
                    else errors.Add(new ConfigError(where, $"routes[\"{route.Key}\"]: unknown method '{m}'"));
                }
            }
            if (!path.StartsWith('/')) errors.Add(new ConfigError(where, $"routes[\"{route.Key}\"]: the path must start with '/'"));
            _routes[i] = route with { Methods = methods, Path = path };
        }
    }

    private static Dictionary<string, string?> ReadEnvironment(IReadOnlyList<string> names)
    {
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var name in names) values[name] = Environment.GetEnvironmentVariable(name);
        return values;
    }
}
