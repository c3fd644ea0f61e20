using System.Collections.Concurrent;
using System.Text;
using Keystone.Scripting;
using Microsoft.Extensions.Logging;

namespace Keystone.Tests.Scripting;

/// <summary>Script log lines go through the process-wide <see cref="ScriptLog.Logger"/>, which a gateway start replaces: these tests run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LuaLogCollection
{
    public const string Name = "Lua script log";
}

/// <summary><c>keystone.log(level, ...)</c>.</summary>
[Collection(LuaLogCollection.Name)]
public sealed class LuaLogTests
{
    /// <summary>Runs the handler with a capturing logger in place; returns its answer and the script lines logged.</summary>
    private static (string Answer, List<(LogLevel Level, string Message)> Lines) WithCapturedLog(string script)
    {
        var capture = new CapturingLogger();
        var previous = ScriptLog.Logger;
        ScriptLog.Logger = capture;
        try
        {
            var answer = LuaScripts.Answer(script);
            return (answer, capture.Lines.Where(l => l.Message.StartsWith("script script request req-1: ", StringComparison.Ordinal)).ToList());
        }
        finally
        {
            ScriptLog.Logger = previous;
        }
    }

    [Fact]
    public void Log_writes_each_level_with_script_and_request_id()
    {
        var (answer, lines) = WithCapturedLog("""
            function handle(req)
              keystone.log("debug", "d")
              keystone.log("info", "i")
              keystone.log("warn", "w")
              keystone.log("error", "e")
              return "ok"
            end
            """);
        Assert.Equal("ok", answer);
        Assert.Equal(
            [
                (LogLevel.Debug, "script script request req-1: d"),
                (LogLevel.Information, "script script request req-1: i"),
                (LogLevel.Warning, "script script request req-1: w"),
                (LogLevel.Error, "script script request req-1: e"),
            ], lines);
    }

    [Fact]
    public void Log_joins_arguments_with_spaces_and_names_non_string_values()
    {
        var (_, lines) = WithCapturedLog("""function handle(req) keystone.log("info", "a", 1, 2.5, true, nil, {}) return "ok" end""");
        var line = Assert.Single(lines);
        Assert.Equal("script script request req-1: a 1 2.5 true nil table", line.Message);
    }

    [Fact]
    public void Log_cuts_lines_at_4_KB()
    {
        var (_, lines) = WithCapturedLog("""function handle(req) keystone.log("info", string.rep("a", 5000)) return "ok" end""");
        var line = Assert.Single(lines);
        Assert.Equal("script script request req-1: " + new string('a', 4096), line.Message);
    }

    [Fact]
    public void Log_cuts_multibyte_lines_at_4_KB_of_UTF8()
    {
        var (_, lines) = WithCapturedLog("""function handle(req) keystone.log("info", string.rep("\195\169", 3000)) return "ok" end""");
        var text = Assert.Single(lines).Message["script script request req-1: ".Length..];
        Assert.InRange(Encoding.UTF8.GetByteCount(text), 4000, 4096);
        Assert.Equal(new string('\u00e9', text.Length), text);
    }

    [Theory]
    [InlineData("'trace'")]
    [InlineData("'INFO'")]
    [InlineData("nil")]
    [InlineData("3")]
    public void Log_with_an_unknown_level_raises(string level)
    {
        Assert.Equal("keystone.log: level must be debug, info, warn or error", LuaScripts.ErrorOf("keystone.log(" + level + ", 'x')"));
    }

    private sealed class CapturingLogger : ILogger
    {
        public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue((logLevel, formatter(state, exception)));
    }
}
