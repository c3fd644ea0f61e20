using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Keystone.Tests.Integration;

/// <summary>
/// Issue 6's retries against real backends: retrying on 502/503/504, <c>retry_on</c>, <c>retry_methods</c> with
/// replayed bodies, the retry budget and backoff. Every request carries a sequence number so that each backend's
/// log tells which request reached which target, in what order.
/// </summary>
public sealed class ProxyRetryPolicyTests : IDisposable
{
    private const string Seq = "X-Test-Seq";
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(20));
    private readonly ITestOutputHelper _output;

    public ProxyRetryPolicyTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => _timeout.Dispose();

    private CancellationToken Cancel => _timeout.Token;

    /// <summary>One request as a backend saw it; <see cref="Order"/> is its place among all backends' requests.</summary>
    private sealed record Hit(long Order, string Backend, string Method, int Seq, byte[] Body);

    /// <summary>A backend that reads the whole request body, logs it, and answers a fixed status with a body naming itself.</summary>
    private sealed class Backend : IAsyncDisposable
    {
        private static long s_order;
        private TestBackend _server = null!;

        public required string Name { get; init; }
        public required ConcurrentQueue<Hit> Log { get; init; }
        public string Url => _server.Url;
        public string Body(int status) => $"{Name} answered {status}";
        public List<Hit> Hits => Log.Where(h => h.Backend == Name).ToList();

        public static async Task<Backend> StartAsync(string name, int status, ConcurrentQueue<Hit> log, string? failHealth = null)
        {
            var backend = new Backend { Name = name, Log = log };
            backend._server = await TestBackend.StartAsync(async context =>
            {
                if (context.Request.Path == "/healthz")
                {
                    context.Response.StatusCode = failHealth is null ? 200 : 500;
                    return;
                }
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body, context.RequestAborted);
                int seq = int.TryParse(context.Request.Headers[Seq], out var s) ? s : -1;
                log.Enqueue(new Hit(Interlocked.Increment(ref s_order), name, context.Request.Method, seq, body.ToArray()));

                context.Response.StatusCode = status;
                context.Response.ContentType = "text/plain";
                context.Response.Headers["X-Backend"] = name;
                context.Response.Headers.RetryAfter = "7";
                await context.Response.WriteAsync(backend.Body(status), context.RequestAborted);
            });
            return backend;
        }

        public ValueTask DisposeAsync() => _server.DisposeAsync();
    }

    private static string Config(string keys, params string[] targets) => $$"""
        upstreams:
          app:
            targets: [{{string.Join(", ", targets.Select(t => $"\"{t}\""))}}]
            eject: false
            circuit_breaker: false
            {{keys.Replace("\n", "\n    ", StringComparison.Ordinal)}}
        routes:
          - { name: app, path: "/{*rest}", upstream: app }
        """;

    private static HttpRequestMessage Request(HttpMethod method, int seq, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, "/x") { Content = content };
        request.Headers.Add(Seq, seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return request;
    }

    private sealed record Answer(int Seq, int Status, string? Backend, string? ContentType, string Body, TimeSpan Took);

    private async Task<Answer> SendAsync(KeystoneInstance keystone, HttpMethod method, int seq, HttpContent? content = null)
    {
        var clock = Stopwatch.StartNew();
        using var response = await keystone.Client.SendAsync(Request(method, seq, content), Cancel);
        var body = await response.Content.ReadAsStringAsync(Cancel);
        clock.Stop();
        return new Answer(seq, (int)response.StatusCode,
            response.Headers.TryGetValues("X-Backend", out var names) ? names.Single() : null,
            response.Content.Headers.ContentType?.MediaType, body, clock.Elapsed);
    }

    private async Task<List<Answer>> SendManyAsync(KeystoneInstance keystone, HttpMethod method, int count, Func<HttpContent?>? content = null)
    {
        var answers = new List<Answer>();
        for (int i = 0; i < count; i++) answers.Add(await SendAsync(keystone, method, i, content?.Invoke()));
        return answers;
    }

    /// <summary>Which backends each request reached, in order: "0: busy ok", "1: ok", ...</summary>
    private static Dictionary<int, List<string>> Journeys(ConcurrentQueue<Hit> log) =>
        log.OrderBy(h => h.Order).GroupBy(h => h.Seq).ToDictionary(g => g.Key, g => g.Select(h => h.Backend).ToList());

    private void Describe(ConcurrentQueue<Hit> log, List<Answer> answers)
    {
        var journeys = Journeys(log);
        foreach (var a in answers)
            _output.WriteLine($"#{a.Seq}: {a.Status} from {a.Backend ?? "keystone"} in {a.Took.TotalMilliseconds:F0} ms via "
                + string.Join(" -> ", journeys.GetValueOrDefault(a.Seq) ?? []));
    }

    private static void AssertBackendAnswer(Answer answer, Backend backend, int status)
    {
        Assert.Equal(status, answer.Status);
        Assert.Equal(backend.Name, answer.Backend);
        Assert.Equal("text/plain", answer.ContentType);
        Assert.Equal(backend.Body(status), answer.Body);
    }

    [Fact]
    public async Task A_503_from_one_target_is_retried_on_the_other_and_every_GET_succeeds()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var ok = await Backend.StartAsync("ok", 200, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("", busy.Url, ok.Url));

        var answers = await SendManyAsync(keystone, HttpMethod.Get, 20);
        Describe(log, answers);

        Assert.All(answers, a => AssertBackendAnswer(a, ok, 200));
        var journeys = Journeys(log);
        // Each request reached the ok target once; those that met the busy target first were retried once.
        Assert.Equal(20, ok.Hits.Count);
        Assert.All(journeys.Values, j => Assert.True(j.SequenceEqual(["ok"]) || j.SequenceEqual(["busy", "ok"]), string.Join(" -> ", j)));
        // Round-robin alternates: about half the requests met the busy target first. That is 10 retries, the budget's floor.
        Assert.InRange(busy.Hits.Count, 8, 12);
    }

    [Fact]
    public async Task Retry_on_connect_failure_only_lets_a_503_through_unchanged()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var ok = await Backend.StartAsync("ok", 200, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("retry_on: [connect_failure]", busy.Url, ok.Url));

        var answers = await SendManyAsync(keystone, HttpMethod.Get, 20);
        Describe(log, answers);

        var refused = answers.Where(a => a.Status == 503).ToList();
        Assert.Equal(10, refused.Count); // round-robin: every other request
        Assert.All(refused, a => AssertBackendAnswer(a, busy, 503));
        Assert.All(answers.Where(a => a.Status != 503), a => AssertBackendAnswer(a, ok, 200));
        Assert.All(Journeys(log).Values, j => Assert.Single(j));
        Assert.Equal(20, log.Count);
    }

    [Fact]
    public async Task A_POST_answered_503_is_never_retried()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var ok = await Backend.StartAsync("ok", 200, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("retries: 3", busy.Url, ok.Url));

        var answers = await SendManyAsync(keystone, HttpMethod.Post, 20, () => new StringContent("order=1"));
        Describe(log, answers);

        var refused = answers.Where(a => a.Status == 503).ToList();
        Assert.NotEmpty(refused);
        Assert.Equal(10, refused.Count);
        Assert.All(refused, a => AssertBackendAnswer(a, busy, 503));
        Assert.Equal(20, log.Count);
        Assert.All(Journeys(log).Values, j => Assert.Single(j)); // each POST reached exactly one backend
        Assert.All(log, h => Assert.Equal("order=1"u8.ToArray(), h.Body));
    }

    private static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public async Task An_opted_in_PUT_with_a_small_body_is_replayed_byte_for_byte_on_the_other_target()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var ok = await Backend.StartAsync("ok", 200, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("retry_methods: [GET, PUT]", busy.Url, ok.Url));
        var body = Bytes(1024, seed: 6);

        // At most 8 requests: even if every one met the busy target first, the budget's floor of 10 covers them.
        var answers = await SendManyAsync(keystone, HttpMethod.Put, 8, () => new ByteArrayContent(body));
        Describe(log, answers);

        Assert.All(answers, a => AssertBackendAnswer(a, ok, 200));
        Assert.Equal(8, ok.Hits.Count);
        Assert.All(log, h => Assert.Equal("PUT", h.Method));
        Assert.All(log, h => Assert.Equal(body, h.Body)); // the first attempt and the replay both got every byte
        Assert.NotEmpty(busy.Hits); // the replay really happened
        Assert.All(Journeys(log).Values, j => Assert.True(j.SequenceEqual(["ok"]) || j.SequenceEqual(["busy", "ok"]), string.Join(" -> ", j)));
    }

    [Fact]
    public async Task A_PUT_is_not_retried_unless_opted_in()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var ok = await Backend.StartAsync("ok", 200, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("", busy.Url, ok.Url));
        var body = Bytes(1024, seed: 7);

        var answers = await SendManyAsync(keystone, HttpMethod.Put, 8, () => new ByteArrayContent(body));
        Describe(log, answers);

        var refused = answers.Where(a => a.Status == 503).ToList();
        Assert.Equal(4, refused.Count);
        Assert.All(refused, a => AssertBackendAnswer(a, busy, 503));
        Assert.All(Journeys(log).Values, j => Assert.Single(j));
    }

    [Theory]
    [InlineData(64 * 1024, true)] // the largest body kept for a replay
    [InlineData(64 * 1024 + 1, false)]
    public async Task A_body_up_to_64_KB_is_replayed_and_a_larger_one_is_not(int length, bool retried)
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var ok = await Backend.StartAsync("ok", 200, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("retry_methods: [GET, PUT]", busy.Url, ok.Url));
        var body = Bytes(length, seed: length);

        // A fresh round-robin starts on the first target: the busy one.
        var answer = await SendAsync(keystone, HttpMethod.Put, 0, new ByteArrayContent(body));
        Describe(log, [answer]);

        if (retried)
        {
            AssertBackendAnswer(answer, ok, 200);
            Assert.Equal(["busy", "ok"], Journeys(log)[0]);
        }
        else
        {
            AssertBackendAnswer(answer, busy, 503);
            Assert.Equal(["busy"], Journeys(log)[0]);
        }
        Assert.All(log, h => Assert.Equal(body, h.Body));
    }

    /// <summary>A body HttpClient cannot know the length of, so it is sent chunked.</summary>
    private sealed class ChunkedContent(byte[] bytes) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
            await stream.FlushAsync();
            await stream.WriteAsync(bytes.AsMemory(bytes.Length / 2));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task A_chunked_PUT_is_not_retried_even_when_opted_in()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var ok = await Backend.StartAsync("ok", 200, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("retry_methods: [GET, PUT]", busy.Url, ok.Url));
        var body = Bytes(1024, seed: 8);

        var answers = new List<Answer>();
        for (int i = 0; i < 4; i++)
        {
            var content = new ChunkedContent(body);
            var request = Request(HttpMethod.Put, i, content);
            request.Headers.TransferEncodingChunked = true;
            var clock = Stopwatch.StartNew();
            using var response = await keystone.Client.SendAsync(request, Cancel);
            answers.Add(new Answer(i, (int)response.StatusCode, response.Headers.TryGetValues("X-Backend", out var n) ? n.Single() : null,
                response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync(Cancel), clock.Elapsed));
        }
        Describe(log, answers);

        var refused = answers.Where(a => a.Status == 503).ToList();
        Assert.Equal(2, refused.Count); // the first request, on a fresh round-robin, and every other one after it
        Assert.All(refused, a => AssertBackendAnswer(a, busy, 503));
        Assert.All(Journeys(log).Values, j => Assert.Single(j));
        Assert.All(log, h => Assert.Equal(body, h.Body));
    }

    [Fact]
    public async Task With_a_zero_budget_only_the_floor_of_10_retries_is_taken()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var ok = await Backend.StartAsync("ok", 200, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("retry_budget: 0%", busy.Url, ok.Url));

        // 40 sequential requests take well under the budget's 10 s window.
        var answers = await SendManyAsync(keystone, HttpMethod.Get, 40);
        Describe(log, answers);

        var journeys = Journeys(log);
        int firstOnBusy = journeys.Values.Count(j => j[0] == "busy");
        int retried = journeys.Values.Count(j => j.Count == 2);
        int refused = answers.Count(a => a.Status == 503);
        Assert.True(firstOnBusy > 10, $"only {firstOnBusy} requests met the busy target first: the budget was never exhausted");
        Assert.Equal(10, retried);
        Assert.Equal(firstOnBusy - 10, refused);
        Assert.Equal(busy.Hits.Count - 10, refused); // the busy target is never a retry's destination
        Assert.All(answers.Where(a => a.Status == 503), a => AssertBackendAnswer(a, busy, 503));
        Assert.All(answers.Where(a => a.Status != 503), a => AssertBackendAnswer(a, ok, 200));
        Assert.Equal(40 + 10, log.Count);
    }

    [Fact]
    public async Task Backoff_pauses_before_a_retry_but_never_past_ten_times_the_base()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var ok = await Backend.StartAsync("ok", 200, log);
        int dead = Ports.Closed();
        await using var keystone = await KeystoneInstance.StartAsync(Config("retry_backoff: 200ms", $"http://127.0.0.1:{dead}", ok.Url));

        var answers = await SendManyAsync(keystone, HttpMethod.Get, 10);
        Describe(log, answers);

        Assert.All(answers, a => AssertBackendAnswer(a, ok, 200));
        Assert.Equal(10, ok.Hits.Count);
        // Retry 1 pauses up to 200 ms; the cap (10 x 200 ms) bounds any pause at 2 s.
        Assert.All(answers, a => Assert.True(a.Took < TimeSpan.FromMilliseconds(2100), $"#{a.Seq} took {a.Took.TotalMilliseconds:F0} ms"));
        // At least five requests were retried; each pause is uniform in [0, 200 ms], so all of them under 20 ms has odds of 1e-5.
        Assert.Contains(answers, a => a.Took >= TimeSpan.FromMilliseconds(20));
    }

    [Fact]
    public async Task When_every_target_answers_503_a_request_is_sent_at_most_three_times_and_the_last_answer_reaches_the_client()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var a = await Backend.StartAsync("a", 503, log);
        await using var b = await Backend.StartAsync("b", 503, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("retries: 2", a.Url, b.Url));

        // Four requests, two retries each: within the budget's floor of 10.
        var answers = await SendManyAsync(keystone, HttpMethod.Get, 4);
        Describe(log, answers);

        var journeys = Journeys(log);
        Assert.Equal(12, log.Count);
        foreach (var answer in answers)
        {
            var journey = journeys[answer.Seq];
            // A retry always leaves the target that just failed: with two targets, back and forth.
            Assert.Equal(3, journey.Count);
            Assert.NotEqual(journey[0], journey[1]);
            Assert.NotEqual(journey[1], journey[2]);
            // The third attempt has no retry left, so its 503 is not dropped: the backend's own answer reaches the client.
            AssertBackendAnswer(answer, journey[2] == "a" ? a : b, 503);
        }
    }

    [Fact]
    public async Task A_single_target_answering_503_passes_its_own_answer_through()
    {
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var keystone = await KeystoneInstance.StartAsync(Config("retries: 2\nretry_on: [502, 503, 504]", busy.Url));

        var answers = await SendManyAsync(keystone, HttpMethod.Get, 3);
        Describe(log, answers);

        Assert.All(answers, a => AssertBackendAnswer(a, busy, 503));
        using var response = await keystone.Client.SendAsync(Request(HttpMethod.Get, 99), Cancel);
        Assert.Equal("7", response.Headers.GetValues("Retry-After").Single()); // headers pass through too
        Assert.Equal(4, log.Count); // no retry onto the same target
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_503_passes_through_when_the_other_target_is_out_of_rotation(bool panic)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var log = new ConcurrentQueue<Hit>();
        await using var busy = await Backend.StartAsync("busy", 503, log);
        await using var sick = await Backend.StartAsync("sick", 200, log, failHealth: "yes");
        await using var keystone = await KeystoneInstance.StartAsync(Config(
            $"panic: {(panic ? "true" : "false")}\nhealth: {{ path: /healthz, interval: 100ms, timeout: 100ms, unhealthy_threshold: 1 }}",
            busy.Url, sick.Url));
        var targets = keystone.Gateway.Current.Upstreams["app"].Targets;
        while (targets[1].Health.IsHealthy || !targets[0].Health.IsHealthy) await Task.Delay(20, cts.Token);

        var answers = await SendManyAsync(keystone, HttpMethod.Get, 3);
        Describe(log, answers);

        // Only the busy target is in rotation (panic applies only when none is): no retry, and its answer is the client's.
        Assert.All(answers, a => AssertBackendAnswer(a, busy, 503));
        Assert.Equal(3, busy.Hits.Count);
        Assert.Empty(sick.Hits);
    }
}
