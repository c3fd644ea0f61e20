using Keystone.Configuration;
using Keystone.Proxy;
using Keystone.Routing;

namespace Keystone.Tests.Configuration;

/// <summary>An upstream's <c>retries</c>, <c>retry_*</c> keys and <c>idle_timeout</c>: defaults, parsing and mistakes.</summary>
public sealed class RetryConfigTests
{
    // The keys land on line 4, column 5 of the file.
    private static string Yaml(string keys) =>
        $"upstreams:\n  app:\n    targets: [http://127.0.0.1:9]\n    {keys.Replace("\n", "\n    ", StringComparison.Ordinal)}\n";

    private static UpstreamConfig Upstream(string keys) => TestConfig.Valid(Yaml(keys)).Upstreams[0];

    private static RetryPolicy Retry(string keys) => Upstream(keys).Retry;

    [Fact]
    public void Without_any_key_the_defaults_apply()
    {
        var upstream = Upstream("preserve_host: false");

        Assert.Equal(RetryPolicy.Default, upstream.Retry);
        Assert.Equal(1, upstream.Retry.Retries);
        Assert.Equal(RetryOn.ConnectFailure | RetryOn.Reset | RetryOn.Status502 | RetryOn.Status503, upstream.Retry.On);
        Assert.Equal(MethodSet.Get | MethodSet.Head | MethodSet.Options, upstream.Retry.Methods);
        Assert.Equal(0.2, upstream.Retry.BudgetRatio);
        Assert.Equal(TimeSpan.Zero, upstream.Retry.Backoff);
        Assert.Equal(TimeSpan.FromSeconds(30), upstream.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(30), upstream.IdleTimeout);
    }

    [Fact]
    public void Idle_timeout_defaults_to_timeout()
    {
        var upstream = Upstream("timeout: 300ms");
        Assert.Equal(TimeSpan.FromMilliseconds(300), upstream.Timeout);
        Assert.Equal(TimeSpan.FromMilliseconds(300), upstream.IdleTimeout);
    }

    [Theory]
    [InlineData("timeout: 5s\nidle_timeout: 2m", 5_000, 120_000)]
    [InlineData("timeout: 5s\nidle_timeout: 300ms", 5_000, 300)]
    [InlineData("idle_timeout: 1s", 30_000, 1_000)]
    public void Idle_timeout_is_read_apart_from_timeout(string keys, int timeoutMs, int idleMs)
    {
        var upstream = Upstream(keys);
        Assert.Equal(TimeSpan.FromMilliseconds(timeoutMs), upstream.Timeout);
        Assert.Equal(TimeSpan.FromMilliseconds(idleMs), upstream.IdleTimeout);
    }

    [Theory]
    [InlineData("retries: 0", 0)]
    [InlineData("retries: 3", 3)]
    [InlineData("retries: 10", 10)]
    public void Retries_is_read(string keys, int expected)
    {
        Assert.Equal(expected, Retry(keys).Retries);
    }

    [Theory]
    [InlineData("retry_on: [connect_failure]", RetryOn.ConnectFailure)]
    [InlineData("retry_on: [reset]", RetryOn.Reset)]
    [InlineData("retry_on: reset", RetryOn.Reset)] // one value without brackets is a one-item list
    [InlineData("retry_on: [502, 503]", RetryOn.Status502 | RetryOn.Status503)] // YAML numbers: scalars read as text
    [InlineData("retry_on: ['504']", RetryOn.Status504)]
    [InlineData("retry_on: [connect_failure, reset, 502, 503, 504]",
        RetryOn.ConnectFailure | RetryOn.Reset | RetryOn.Status502 | RetryOn.Status503 | RetryOn.Status504)]
    [InlineData("retry_on:\n  - 504\n  - connect_failure", RetryOn.Status504 | RetryOn.ConnectFailure)]
    [InlineData("retry_on: []", RetryOn.None)]
    public void Retry_on_is_read_and_replaces_the_default(string keys, RetryOn expected)
    {
        Assert.Equal(expected, Retry(keys).On);
    }

    [Theory]
    [InlineData("retry_methods: [GET]", MethodSet.Get)]
    [InlineData("retry_methods: [GET, PUT]", MethodSet.Get | MethodSet.Put)]
    [InlineData("retry_methods: [GET, HEAD, OPTIONS, PUT, DELETE, TRACE]",
        MethodSet.Get | MethodSet.Head | MethodSet.Options | MethodSet.Put | MethodSet.Delete | MethodSet.Trace)]
    [InlineData("retry_methods: DELETE", MethodSet.Delete)]
    public void Retry_methods_is_read_and_replaces_the_default(string keys, MethodSet expected)
    {
        Assert.Equal(expected, Retry(keys).Methods);
    }

    [Fact]
    public void Retry_methods_ignore_case_like_route_methods_do()
    {
        // Route `methods:` accept any case (docs/configuration.md: "Case does not matter").
        Assert.Equal(MethodSet.Get | MethodSet.Put, Retry("retry_methods: [get, Put]").Methods);
    }

    [Theory]
    [InlineData("retry_budget: 20%", 0.2)]
    [InlineData("retry_budget: 0%", 0.0)]
    [InlineData("retry_budget: 100%", 1.0)]
    [InlineData("retry_budget: 5%", 0.05)]
    [InlineData("retry_budget: 12.5%", 0.125)]
    public void Retry_budget_is_a_percentage(string keys, double expected)
    {
        Assert.Equal(expected, Retry(keys).BudgetRatio, 10);
    }

    [Theory]
    [InlineData("retry_backoff: 25ms", 25)]
    [InlineData("retry_backoff: 0", 0)]
    [InlineData("retry_backoff: 1.5s", 1_500)]
    [InlineData("retry_backoff: 10s", 10_000)]
    public void Retry_backoff_is_a_duration_up_to_10s(string keys, int expectedMs)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), Retry(keys).Backoff);
    }

    [Fact]
    public void Every_key_together()
    {
        var retry = Retry("retries: 2\nretry_on: [connect_failure, 504]\nretry_methods: [GET, PUT, DELETE]\n"
            + "retry_budget: 10%\nretry_backoff: 25ms");

        Assert.Equal(new RetryPolicy(2, RetryOn.ConnectFailure | RetryOn.Status504, MethodSet.Get | MethodSet.Put | MethodSet.Delete,
            0.1, TimeSpan.FromMilliseconds(25)), retry);
    }

    [Fact]
    public void The_example_in_the_docs_loads()
    {
        var config = TestConfig.Valid("""
            upstreams:
              api:
                targets: ["http://10.0.0.5:3000", "http://10.0.0.6:3000"]
                retries: 2
                retry_on: [connect_failure, reset, 502, 503, 504]
                retry_methods: [GET, HEAD, OPTIONS, PUT, DELETE]   # this API's PUT and DELETE are idempotent
                retry_budget: 10%
                retry_backoff: 25ms
              events:
                targets: ["http://127.0.0.1:3000"]
                timeout: 5s
                idle_timeout: 2m
            """);
        Assert.Equal(2, config.Upstreams[0].Retry.Retries);
        Assert.Equal(TimeSpan.FromMinutes(2), config.Upstreams[1].IdleTimeout);
    }

    [Theory]
    [InlineData("retry_on: [connect_failure, timeout]", "4:33: upstream 'app': retry_on takes connect_failure, reset, 502, 503 and 504, not 'timeout'")]
    [InlineData("retry_on: [500]", "4:16: upstream 'app': retry_on takes connect_failure, reset, 502, 503 and 504, not '500'")]
    [InlineData("retry_on: 5xx", "4:15: upstream 'app': retry_on takes connect_failure, reset, 502, 503 and 504, not '5xx'")]
    [InlineData("retry_on: { reset: true }", "4:15: retry_on must be a list")]
    [InlineData("retry_methods: [POST]", "4:21: upstream 'app': retry_methods: POST is not idempotent, so a retry could apply it twice")]
    [InlineData("retry_methods: [GET, PATCH]", "4:26: upstream 'app': retry_methods: PATCH is not idempotent, so a retry could apply it twice")]
    [InlineData("retry_methods: [GET, FETCH]", "4:26: upstream 'app': retry_methods: 'FETCH' is not a method Keystone routes")]
    [InlineData("retry_methods: [CONNECT]", "4:21: upstream 'app': retry_methods: 'CONNECT' is not a method Keystone routes")]
    [InlineData("retry_budget: 150%", "4:19: upstream 'app': retry_budget must be a percentage such as 20%, not '150%'")]
    [InlineData("retry_budget: -5%", "4:19: upstream 'app': retry_budget must be a percentage such as 20%, not '-5%'")]
    [InlineData("retry_budget: abc", "4:19: upstream 'app': retry_budget must be a percentage such as 20%, not 'abc'")]
    [InlineData("retry_budget: 20", "4:19: upstream 'app': retry_budget must be a percentage such as 20%, not '20'")]
    [InlineData("retry_backoff: 11s", "4:20: upstream 'app': retry_backoff must be at most 10s")]
    [InlineData("retry_backoff: soon", "4:20: retry_backoff must be a duration such as 500ms, 30s, 2m or 1h, not 'soon'")]
    [InlineData("idle_timeout: 0s", "4:19: idle_timeout must be greater than zero")]
    [InlineData("idle_timeout: forever", "4:19: idle_timeout must be a duration such as 500ms, 30s, 2m or 1h, not 'forever'")]
    [InlineData("retries: 11", "4:14: retries must be a whole number from 0 to 10, not '11'")]
    [InlineData("retries: -1", "4:14: retries must be a whole number from 0 to 10, not '-1'")]
    [InlineData("retry_budgets: 20%", "4:5: unknown key 'retry_budgets' in upstream 'app' — did you mean 'retry_budget'?")]
    public void Mistakes_are_reported_with_file_line_and_column(string keys, string expected)
    {
        Assert.Equal(TestConfig.FileName + ":" + expected, TestConfig.SingleError(Yaml(keys)));
    }

    [Fact]
    public void Every_retry_mistake_in_one_upstream_is_reported_at_once()
    {
        var errors = TestConfig.Errors(Yaml("retries: 11\nretry_on: [bogus]\nretry_methods: [POST]\nretry_budget: abc\nretry_backoff: 11s\nidle_timeout: 0s"));

        Assert.Equal(6, errors.Count);
        Assert.Equal([4, 5, 6, 7, 8, 9], errors.Select(e => int.Parse(e.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture)).Order());
    }
}
