using System.Globalization;

namespace Keystone.Configuration;

/// <summary>Parses the duration syntax of the config file: <c>250ms</c>, <c>30s</c>, <c>2m</c>, <c>1h</c>, or plain seconds.</summary>
public static class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        var span = text.AsSpan().Trim();
        double unit = 1000;
        if (span.EndsWith("ms", StringComparison.Ordinal)) { unit = 1; span = span[..^2]; }
        else if (span.EndsWith('s')) { span = span[..^1]; }
        else if (span.EndsWith('m')) { unit = 60_000; span = span[..^1]; }
        else if (span.EndsWith('h')) { unit = 3_600_000; span = span[..^1]; }

        if (!double.TryParse(span, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number) || !double.IsFinite(number) || number < 0)
            return false;
        var ms = number * unit;
        if (ms > TimeSpan.FromDays(1).TotalMilliseconds) return false;
        value = TimeSpan.FromMilliseconds(ms);
        return true;
    }
}
