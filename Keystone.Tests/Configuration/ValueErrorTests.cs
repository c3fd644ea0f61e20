using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>Scalars of the wrong kind: numbers, booleans and durations, each reported at the value.</summary>
public sealed class ValueErrorTests
{
    [Fact]
    public void Non_numeric_weight_names_the_allowed_range()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets:
                  - url: http://127.0.0.1:9001
                    weight: abc
            """);

        Assert.Equal(At(5, 17) + "weight must be a whole number from 1 to 1000, not 'abc'", error);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    [InlineData("-1")]
    [InlineData("1.5")]
    public void Weight_outside_1_to_1000_is_rejected(string weight)
    {
        var error = SingleError($"""
            upstreams:
              api:
                targets:
                  - url: http://127.0.0.1:9001
                    weight: {weight}
            """);

        Assert.Equal(At(5, 17) + $"weight must be a whole number from 1 to 1000, not '{weight}'", error);
    }

    [Fact]
    public void Preserve_host_that_is_not_a_boolean_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
                preserve_host: maybe
            """);

        Assert.Equal(At(4, 20) + "preserve_host must be true or false, not 'maybe'", error);
    }

    [Theory]
    [InlineData("10 seconds")]
    [InlineData("soon")]
    [InlineData("-5s")]
    [InlineData("1d")]
    public void Bad_upstream_timeout_is_one_error_that_shows_the_duration_syntax(string timeout)
    {
        var error = SingleError($"""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
                timeout: {timeout}
            """);

        Assert.Equal(At(4, 14) + $"timeout must be a duration such as 500ms, 30s, 2m or 1h, not '{timeout}'", error);
    }

    [Fact]
    public void Zero_upstream_timeout_is_rejected()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
                timeout: 0s
            """);

        Assert.Equal(At(4, 14) + "timeout must be greater than zero", error);
    }

    [Fact]
    public void Bad_shutdown_timeout_shows_the_duration_syntax()
    {
        var error = SingleError("shutdown_timeout: forever");

        Assert.Equal(At(1, 19) + "shutdown_timeout must be a duration such as 500ms, 30s, 2m or 1h, not 'forever'", error);
    }

    [Fact]
    public void Not_a_number_duration_is_an_error_not_a_crash()
    {
        var error = SingleError("shutdown_timeout: NaN");

        Assert.Equal(At(1, 19) + "shutdown_timeout must be a duration such as 500ms, 30s, 2m or 1h, not 'NaN'", error);
    }

    [Fact]
    public void Out_of_range_respond_status_is_rejected()
    {
        var error = SingleError("""
            routes:
              - name: a
                path: /
                respond:
                  status: 700
            """);

        Assert.Equal(At(5, 15) + "status must be a whole number from 100 to 599, not '700'", error);
    }
}
