using Keystone.Configuration;
using Keystone.Proxy;

namespace Keystone.Tests.Configuration;

public sealed class ResilienceConfigTests
{
    private static ConfigLoadResult Load(string keys) =>
        ConfigLoader.Load($"upstreams:\n  app:\n    targets: [http://127.0.0.1:9]\n    {keys}\n", "keystone.yaml", _ => null);

    [Fact]
    public void Ejection_and_breaker_are_on_with_small_business_defaults()
    {
        var upstream = Load("timeout: 5s").Config!.Upstreams[0];
        Assert.Equal(PassiveEjectionConfig.Default, upstream.Eject);
        Assert.Equal(CircuitBreakerConfig.Default, upstream.CircuitBreaker);
    }

    [Fact]
    public void False_turns_each_off()
    {
        var upstream = Load("eject: false\n    circuit_breaker: false").Config!.Upstreams[0];
        Assert.Null(upstream.Eject);
        Assert.Null(upstream.CircuitBreaker);
    }

    [Fact]
    public void Every_knob_is_read()
    {
        var upstream = Load("eject: { consecutive_failures: 3, eject_for: 10s, max_eject_for: 1m, on_5xx: true }\n"
            + "    circuit_breaker: { failures: 7, window: 20s, open_for: 5s, half_open_probes: 2 }").Config!.Upstreams[0];
        Assert.Equal(new PassiveEjectionConfig(3, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(1), true), upstream.Eject);
        Assert.Equal(new CircuitBreakerConfig(7, TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(5), 2), upstream.CircuitBreaker);
    }

    [Theory]
    [InlineData("eject: { consecutive_failures: 0 }", "4:36: consecutive_failures must be a whole number from 1 to 1000, not '0'")]
    [InlineData("eject: { eject_for: 1m, max_eject_for: 30s }", "4:12: upstream 'app': max_eject_for must be at least eject_for")]
    [InlineData("eject: { failures: 3 }", "4:14: unknown key 'failures' in eject of upstream 'app'")]
    [InlineData("circuit_breaker: { open_for: 10ms }", "4:22: upstream 'app': circuit_breaker open_for must be at least 100ms")]
    [InlineData("circuit_breaker: { half_open_probes: 0 }", "4:42: half_open_probes must be a whole number from 1 to 100, not '0'")]
    [InlineData("circuit_breaker: maybe", "4:22: circuit_breaker must be true or false, not 'maybe'")]
    [InlineData("retries: 11", "4:14: retries must be a whole number from 0 to 10, not '11'")]
    [InlineData("panic: sometimes", "4:12: panic must be true or false, not 'sometimes'")]
    [InlineData("connect_timeout: 5ms", "4:22: connect_timeout must be at least 10ms")]
    [InlineData("connect_timeout: soon", "4:22: connect_timeout must be a duration")]
    public void Mistakes_are_reported_with_their_location(string keys, string expected)
    {
        var error = Assert.Single(Load(keys).Errors);
        Assert.StartsWith("keystone.yaml:" + expected, error.ToString());
    }
}
