using System.Globalization;
using Keystone.Proxy;
using Keystone.Routing;
using YamlDotNet.RepresentationModel;

namespace Keystone.Configuration;

/// <summary>Reads an upstream's <c>retries</c>, <c>retry_on</c>, <c>retry_methods</c>, <c>retry_budget</c> and <c>retry_backoff</c>.</summary>
internal static class RetryReader
{
    public static RetryPolicy Read(YamlNodeReader reader, YamlMappingNode upstream, string name)
    {
        var d = RetryPolicy.Default;
        return new RetryPolicy(
            reader.IntOr(upstream, "retries", d.Retries, 0, 10),
            YamlNodeReader.Get(upstream, "retry_on") is { } on ? ReadOn(reader, on, name) : d.On,
            YamlNodeReader.Get(upstream, "retry_methods") is { } methods ? ReadMethods(reader, methods, name) : d.Methods,
            YamlNodeReader.Get(upstream, "retry_budget") is { } budget ? ReadBudget(reader, budget, name) ?? d.BudgetRatio : d.BudgetRatio,
            ReadBackoff(reader, upstream, name));
    }

    private static RetryOn ReadOn(YamlNodeReader reader, YamlNode node, string name)
    {
        var on = RetryOn.None;
        foreach (var (text, item) in reader.StringList(node, "retry_on"))
        {
            var flag = text switch
            {
                "connect_failure" => RetryOn.ConnectFailure,
                "reset" => RetryOn.Reset,
                "502" => RetryOn.Status502,
                "503" => RetryOn.Status503,
                "504" => RetryOn.Status504,
                _ => RetryOn.None,
            };
            if (flag == RetryOn.None)
                reader.Error(item, $"upstream '{name}': retry_on takes connect_failure, reset, 502, 503 and 504, not '{text}'");
            on |= flag;
        }
        return on;
    }

    private static MethodSet ReadMethods(YamlNodeReader reader, YamlNode node, string name)
    {
        var methods = MethodSet.None;
        foreach (var (text, item) in reader.StringList(node, "retry_methods"))
        {
            var method = Methods.Parse(text.ToUpperInvariant());
            if (method == MethodSet.None)
                reader.Error(item, $"upstream '{name}': retry_methods: '{text}' is not a method Keystone routes");
            else if ((method & RetryPolicy.IdempotentMethods) == 0)
                reader.Error(item, $"upstream '{name}': retry_methods: {text} is not idempotent, so a retry could apply it twice");
            methods |= method;
        }
        return methods;
    }

    private static double? ReadBudget(YamlNodeReader reader, YamlNode node, string name)
    {
        var text = reader.Text(node, "retry_budget");
        if (text is null) return null;
        if (text.EndsWith('%') && double.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var percent)
            && percent is >= 0 and <= 100)
            return percent / 100;
        reader.Error(node, $"upstream '{name}': retry_budget must be a percentage such as 20%, not '{text}'");
        return null;
    }

    private static TimeSpan ReadBackoff(YamlNodeReader reader, YamlMappingNode upstream, string name)
    {
        if (YamlNodeReader.Get(upstream, "retry_backoff") is not { } node || reader.Duration(node, "retry_backoff") is not { } value)
            return TimeSpan.Zero;
        if (value > TimeSpan.FromSeconds(10)) reader.Error(node, $"upstream '{name}': retry_backoff must be at most 10s");
        return value;
    }
}
