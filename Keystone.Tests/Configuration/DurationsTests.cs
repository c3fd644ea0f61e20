using Keystone.Configuration;

namespace Keystone.Tests.Configuration;

public sealed class DurationsTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("0.5ms", 0.5)]
    [InlineData("30s", 30_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("45", 45_000)]
    [InlineData("0", 0)]
    [InlineData(" 10s ", 10_000)]
    [InlineData("24h", 86_400_000)]
    public void Parses_milliseconds_seconds_minutes_hours_and_plain_seconds(string text, double milliseconds)
    {
        Assert.True(Durations.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("s")]
    [InlineData("ms")]
    [InlineData("abc")]
    [InlineData("10 seconds")]
    [InlineData("-5s")]
    [InlineData("+5s")]
    [InlineData("1d")]
    [InlineData("30S")]
    [InlineData("1e3")]
    [InlineData("1,5s")]
    [InlineData("25h")]
    [InlineData("Infinity")]
    public void Rejects_text_that_is_not_a_duration_up_to_a_day(string text)
    {
        Assert.False(Durations.TryParse(text, out var value));
        Assert.Equal(TimeSpan.Zero, value);
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("NaNs")]
    [InlineData("nanms")]
    public void Rejects_not_a_number_instead_of_throwing(string text)
    {
        Assert.False(Durations.TryParse(text, out _));
    }
}
