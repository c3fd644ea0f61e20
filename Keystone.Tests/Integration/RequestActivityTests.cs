using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Keystone.Tests.Integration;

/// <summary>
/// ASP.NET Core starts an Activity (and a logging scope) for every request while its hosting diagnostics logger is
/// enabled at any level. At the levels where nothing of that logger is shown, Keystone switches it off, so requests
/// pay for neither.
/// </summary>
public sealed class RequestActivityTests
{
    private const string Config = """
        routes:
          - name: hello
            path: /hello
            respond:
              body: hello
        """;

    [Theory]
    [InlineData(LogLevel.Warning, 0)]
    [InlineData(LogLevel.Error, 0)]
    [InlineData(LogLevel.Information, 1)] // the control: the listener below does see a request's Activity
    public async Task Requests_start_no_activity_unless_the_log_level_shows_request_logs(LogLevel level, int expected)
    {
        // A W3C trace id of this test's own, sent as the request's parent: other tests' requests in the same process
        // are not counted.
        var traceId = ActivityTraceId.CreateRandom();
        int started = 0;
        // Hosting creates its Activity with `new Activity(...)`, whose source is the unnamed default one. Listening to
        // that source alone leaves "Microsoft.AspNetCore" without listeners, which would otherwise force an Activity.
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.Length == 0,
            ActivityStarted = activity =>
            {
                if (activity.TraceId == traceId) Interlocked.Increment(ref started);
            },
        };
        ActivitySource.AddActivityListener(listener);
        await using var keystone = await KeystoneInstance.StartAsync(Config, logLevel: level);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/hello");
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var response = await keystone.Client.SendAsync(request, timeout.Token);

        Assert.Equal("hello", await response.Content.ReadAsStringAsync(timeout.Token));
        Assert.Equal(expected, Volatile.Read(ref started));
    }
}
