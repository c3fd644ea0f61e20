using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Keystone.Observability;

namespace Keystone.Tests.Observability;

/// <summary>One sample line: <c>name{labels} value [timestamp]</c>.</summary>
public sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value, long? Timestamp, int Line)
{
    public string Label(string name) => Labels.TryGetValue(name, out var v) ? v : "";

    public override string ToString() =>
        $"{Name}{{{string.Join(",", Labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}} {Value.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>A metric family: the name of its # TYPE line (or of its untyped samples), its type, help and samples.</summary>
public sealed class PromFamily
{
    public PromFamily(string name) => Name = name;

    public string Name { get; }

    /// <summary>counter, gauge, histogram, summary or untyped; "untyped" also when no # TYPE line was given.</summary>
    public string Type { get; set; } = "untyped";

    public bool HasTypeLine { get; set; }
    public string? Help { get; set; }
    public List<PromSample> Samples { get; } = [];
}

/// <summary>
/// A strict parser of the Prometheus text exposition format 0.0.4: # HELP / # TYPE lines, samples with escaped label
/// values (\\, \", \n), Go-style floats (+Inf, -Inf, NaN) and optional timestamps. Anything malformed throws
/// <see cref="FormatException"/> naming the line, so a broken exposition fails the test instead of being skipped.
/// </summary>
public sealed class PromExposition
{
    private static readonly string[] Types = ["counter", "gauge", "histogram", "summary", "untyped"];

    private readonly Dictionary<string, PromFamily> _families = new(StringComparer.Ordinal);
    private readonly List<PromSample> _samples = [];

    private PromExposition() { }

    public IReadOnlyDictionary<string, PromFamily> Families => _families;
    public IReadOnlyList<PromSample> Samples => _samples;

    /// <summary>The text exposition this process would serve right now (metrics are process-global).</summary>
    public static async Task<PromExposition> CurrentAsync(CancellationToken cancel)
    {
        using var buffer = new MemoryStream();
        await GatewayMetrics.ExportAsync(buffer, cancel);
        return Parse(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    /// <summary>GETs <c>/metrics</c> with <paramref name="client"/>, checks status and content type, and parses the body.</summary>
    public static async Task<(PromExposition Metrics, string Text)> ScrapeAsync(HttpClient client, CancellationToken cancel)
    {
        using var response = await client.GetAsync("/metrics", cancel);
        var text = await response.Content.ReadAsStringAsync(cancel);
        Assert.True(response.IsSuccessStatusCode, $"GET /metrics answered {(int)response.StatusCode}: {text}");
        AssertTextFormat(response.Content.Headers.ContentType);
        return (Parse(text), text);
    }

    public static void AssertTextFormat(MediaTypeHeaderValue? contentType)
    {
        Assert.NotNull(contentType);
        Assert.Equal("text/plain", contentType.MediaType);
        Assert.Contains(contentType.Parameters, p => p.Name == "version" && p.Value == "0.0.4");
    }

    public static PromExposition Parse(string text)
    {
        var result = new PromExposition();
        var seenSeries = new HashSet<string>(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            int number = i + 1;
            if (line.EndsWith('\r')) throw Error(number, "CR before LF (the format is LF-only)");
            if (line.Trim().Length == 0) continue;
            if (line.StartsWith('#'))
            {
                result.Comment(line, number);
                continue;
            }
            var sample = ParseSample(line, number);
            var family = result.FamilyOf(sample.Name);
            if (!seenSeries.Add(SeriesKey(sample.Name, sample.Labels)))
                throw Error(number, $"duplicate series {sample}");
            if (family.Type == "histogram" && sample.Name.EndsWith("_bucket", StringComparison.Ordinal) && !sample.Labels.ContainsKey("le"))
                throw Error(number, $"histogram bucket without le: {sample}");
            family.Samples.Add(sample);
            result._samples.Add(sample);
        }
        return result;
    }

    /// <summary>The value of the series with exactly these labels, or null when the exposition has no such series.</summary>
    public double? Find(string name, params (string Key, string Value)[] labels)
    {
        foreach (var s in _samples)
            if (s.Name == name && LabelsEqual(s.Labels, labels)) return s.Value;
        return null;
    }

    /// <summary>Like <see cref="Find"/>, with an absent series read as 0 (what a counter that never moved is worth).</summary>
    public double Value(string name, params (string Key, string Value)[] labels) => Find(name, labels) ?? 0;

    /// <summary>Every sample of the metric <paramref name="name"/> (a sample name, e.g. <c>x_bucket</c>), optionally filtered.</summary>
    public IEnumerable<PromSample> Series(string name, Func<PromSample, bool>? filter = null) =>
        _samples.Where(s => s.Name == name && (filter is null || filter(s)));

    /// <summary>How much a series grew from <paramref name="before"/> to <paramref name="after"/> (absent counts as 0).</summary>
    public static double Delta(PromExposition before, PromExposition after, string name, params (string Key, string Value)[] labels) =>
        after.Value(name, labels) - before.Value(name, labels);

    private static bool LabelsEqual(IReadOnlyDictionary<string, string> actual, (string Key, string Value)[] expected)
    {
        if (actual.Count != expected.Length) return false;
        foreach (var (k, v) in expected)
            if (!actual.TryGetValue(k, out var a) || a != v) return false;
        return true;
    }

    private static string SeriesKey(string name, IReadOnlyDictionary<string, string> labels) =>
        name + "{" + string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value.Replace("\\", "\\\\").Replace(",", "\\,"))) + "}";

    private void Comment(string line, int number)
    {
        // "# HELP name text" and "# TYPE name type"; any other comment is ignored, as the format allows.
        var rest = line[1..].TrimStart(' ', '\t');
        string keyword;
        if (rest.StartsWith("HELP", StringComparison.Ordinal) && rest.Length > 4 && rest[4] is ' ' or '\t') keyword = "HELP";
        else if (rest.StartsWith("TYPE", StringComparison.Ordinal) && rest.Length > 4 && rest[4] is ' ' or '\t') keyword = "TYPE";
        else return;
        rest = rest[4..].TrimStart(' ', '\t');
        int end = 0;
        while (end < rest.Length && rest[end] is not (' ' or '\t')) end++;
        var name = rest[..end];
        if (!IsMetricName(name)) throw Error(number, $"bad metric name '{name}' in # {keyword}");
        var value = end < rest.Length ? rest[(end + 1)..] : "";
        if (keyword == "HELP")
        {
            var family = GetOrAddFamily(name);
            if (family.Help is not null) throw Error(number, $"second # HELP for {name}");
            family.Help = UnescapeHelp(value, number);
        }
        else
        {
            var type = value.Trim(' ', '\t');
            if (!Types.Contains(type)) throw Error(number, $"unknown type '{type}' for {name}");
            var family = GetOrAddFamily(name);
            if (family.HasTypeLine) throw Error(number, $"second # TYPE for {name}");
            if (family.Samples.Count > 0) throw Error(number, $"# TYPE for {name} after its samples");
            family.Type = type;
            family.HasTypeLine = true;
        }
    }

    private PromFamily GetOrAddFamily(string name)
    {
        if (!_families.TryGetValue(name, out var family)) _families[name] = family = new PromFamily(name);
        return family;
    }

    /// <summary>A histogram's _bucket/_sum/_count and a summary's _sum/_count belong to the family without the suffix.</summary>
    private PromFamily FamilyOf(string sampleName)
    {
        foreach (var suffix in (string[])["_bucket", "_sum", "_count"])
        {
            if (!sampleName.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var baseName = sampleName[..^suffix.Length];
            if (_families.TryGetValue(baseName, out var f) && (f.Type == "histogram" || (f.Type == "summary" && suffix != "_bucket")))
                return f;
        }
        return GetOrAddFamily(sampleName);
    }

    private static PromSample ParseSample(string line, int number)
    {
        int i = 0;
        int start = i;
        while (i < line.Length && IsNameChar(line[i], i == start)) i++;
        var name = line[start..i];
        if (name.Length == 0) throw Error(number, $"no metric name: {line}");

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                SkipBlanks(line, ref i);
                if (i < line.Length && line[i] == '}') { i++; break; }
                int ls = i;
                while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] == '_') && !(i == ls && char.IsAsciiDigit(line[i]))) i++;
                var labelName = line[ls..i];
                if (labelName.Length == 0) throw Error(number, $"bad label name at column {i + 1}: {line}");
                SkipBlanks(line, ref i);
                if (i >= line.Length || line[i] != '=') throw Error(number, $"expected '=' after label {labelName}: {line}");
                i++;
                SkipBlanks(line, ref i);
                if (i >= line.Length || line[i] != '"') throw Error(number, $"expected '\"' for label {labelName}: {line}");
                i++;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length) throw Error(number, $"unterminated value of label {labelName}: {line}");
                    char c = line[i++];
                    if (c == '"') break;
                    if (c != '\\') { value.Append(c); continue; }
                    if (i >= line.Length) throw Error(number, $"dangling backslash in label {labelName}: {line}");
                    char e = line[i++];
                    value.Append(e switch
                    {
                        '\\' => '\\',
                        '"' => '"',
                        'n' => '\n',
                        _ => throw Error(number, $"unknown escape '\\{e}' in label {labelName}: {line}"),
                    });
                }
                if (!labels.TryAdd(labelName, value.ToString())) throw Error(number, $"label {labelName} given twice: {line}");
                SkipBlanks(line, ref i);
                if (i < line.Length && line[i] == ',') { i++; continue; }
                if (i < line.Length && line[i] == '}') { i++; break; }
                throw Error(number, $"expected ',' or '}}' after label {labelName}: {line}");
            }
        }

        if (i >= line.Length || line[i] is not (' ' or '\t')) throw Error(number, $"expected a blank before the value: {line}");
        var fields = line[i..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length is < 1 or > 2) throw Error(number, $"expected 'value [timestamp]': {line}");
        var sampleValue = ParseFloat(fields[0]) ?? throw Error(number, $"bad value '{fields[0]}': {line}");
        long? timestamp = null;
        if (fields.Length == 2)
            timestamp = long.TryParse(fields[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var ts)
                ? ts : throw Error(number, $"bad timestamp '{fields[1]}': {line}");
        return new PromSample(name, labels, sampleValue, timestamp, number);
    }

    /// <summary>Go's strconv.ParseFloat as the format uses it: decimal or exponent notation, +Inf, -Inf, NaN.</summary>
    public static double? ParseFloat(string text) => text switch
    {
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ when text.Length > 0 && (char.IsAsciiDigit(text[^1]) || text[^1] == '.')
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) => v,
        _ => null,
    };

    private static string UnescapeHelp(string text, int number)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\') { sb.Append(text[i]); continue; }
            if (++i >= text.Length) throw Error(number, "dangling backslash in # HELP");
            sb.Append(text[i] switch
            {
                '\\' => '\\',
                'n' => '\n',
                var other => throw Error(number, $"unknown escape '\\{other}' in # HELP"),
            });
        }
        return sb.ToString();
    }

    public static bool IsMetricName(string name) =>
        name.Length > 0 && name.Select((c, i) => IsNameChar(c, i == 0)).All(ok => ok);

    private static bool IsNameChar(char c, bool first) =>
        char.IsAsciiLetter(c) || c == '_' || c == ':' || (!first && char.IsAsciiDigit(c));

    private static void SkipBlanks(string line, ref int i)
    {
        while (i < line.Length && line[i] is ' ' or '\t') i++;
    }

    private static FormatException Error(int line, string message) => new($"exposition line {line}: {message}");
}
