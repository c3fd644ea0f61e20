using System.Text;
using Microsoft.AspNetCore.Http;
using Xunit;

namespace Keystone.Tests.Integration;

/// <summary>
/// Malformed and hostile HTTP/1.1 requests, sent byte for byte to a real Keystone whose catch-all route proxies to a
/// backend that records everything it receives. For every case:
/// <list type="bullet">
/// <item>the client gets a 4xx, or the connection is closed without a response; never a 5xx, never a hang;</item>
/// <item>at most one response comes back: a second one means bytes hidden inside the first request were parsed as a
/// request of their own (request smuggling);</item>
/// <item>the backend receives nothing ambiguous: nothing, or exactly one well-formed request, and never the hidden
/// <c>/smuggled</c> request;</item>
/// <item>afterwards a normal request on a new connection still gets 200 through the proxy.</item>
/// </list>
/// Most of these are rejected by Kestrel's HTTP/1.1 parser before the gateway runs (a 400/414/431 with an empty body and
/// the connection closed); the gateway's own checks (CONNECT, Content-Length with Transfer-Encoding, method/route) answer
/// with the JSON error body of DESIGN.md §5.
/// </summary>
public sealed class MalformedRequestTests : IAsyncLifetime
{
    /// <summary>The request every smuggling case hides in a body; the backend must never see this path.</summary>
    private const string Smuggled = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";

    private readonly List<Received> _received = [];
    private TestBackend _backend = null!;
    private KeystoneInstance _keystone = null!;

    public async Task InitializeAsync()
    {
        _backend = await TestBackend.StartAsync(RecordAsync);
        // Every named method, so an unknown or lower-case method token has a route whose path matches but whose
        // method does not: the gateway must answer 405 rather than forward a method the route never named.
        _keystone = await KeystoneInstance.StartAsync($"""
            upstreams:
              backend:
                targets: [{_backend.Url}]
                timeout: 5s
            routes:
              - name: proxied
                path: /{"{*rest}"}
                methods: [GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS]
                upstream: backend
            """);
    }

    public async Task DisposeAsync()
    {
        await _keystone.DisposeAsync();
        await _backend.DisposeAsync();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Framing: Content-Length and Transfer-Encoding (request smuggling shapes)
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// CL.TE: a front end that trusts Content-Length forwards everything; one that trusts Transfer-Encoding sees an
    /// empty chunked body ("0\r\n\r\n") and then GET /smuggled as a second request. Keystone's contract (Gateway.cs)
    /// is to refuse a request framed two ways with 400, and RFC 9112 §6.1 says the server MUST close the connection
    /// after responding to it either way, so the hidden bytes are never parsed as a request and nothing reaches the
    /// backend. Note for the gateway's check: Kestrel honours Transfer-Encoding, closes the connection itself, and
    /// hands the app the ignored Content-Length renamed to X-Content-Length, so a check on Content-Length alone never
    /// fires.
    /// </summary>
    [Fact]
    public async Task ContentLength_and_chunked_CL_TE_shape_is_rejected_and_nothing_is_smuggled()
    {
        var body = "0\r\n\r\n" + Smuggled;
        var result = await AssertRejectedAsync(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\n" +
            $"Content-Length: {body.Length}\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
            expectStatus: [400]);
        Assert.True(result.Closed, "the connection must be closed after refusing a doubly framed request\n" + result.Describe());
    }

    /// <summary>
    /// TE.CL: a front end that trusts Transfer-Encoding forwards one chunk holding GET /smuggled; one that trusts
    /// Content-Length: 4 reads only the chunk-size line and takes the chunk data as the next request. Same rule as
    /// CL.TE: 400, connection closed, nothing forwarded (not even the hidden request as a body). Header order is
    /// swapped so the check cannot depend on it.
    /// </summary>
    [Fact]
    public async Task Chunked_and_ContentLength_TE_CL_shape_is_rejected_and_nothing_is_smuggled()
    {
        var chunk = Smuggled;
        var body = $"{chunk.Length:x}\r\n{chunk}\r\n0\r\n\r\n";
        var result = await AssertRejectedAsync(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\n" +
            "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + body,
            expectStatus: [400]);
        Assert.True(result.Closed, "the connection must be closed after refusing a doubly framed request\n" + result.Describe());
    }

    /// <summary>
    /// Two different Content-Length values: one hop reads 5 bytes and sees GET /smuggled next, another reads it all.
    /// RFC 9112 §6.3 (item 5): an invalid/conflicting Content-Length is unrecoverable; 400 and close.
    /// </summary>
    [Fact]
    public async Task Two_different_ContentLengths_are_rejected()
    {
        var body = "hello" + Smuggled;
        await AssertRejectedAsync(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\n" +
            $"Content-Length: 5\r\nContent-Length: {body.Length}\r\n\r\n" + body,
            expectStatus: [400]);
    }

    /// <summary>
    /// Content-Length must be 1*DIGIT (RFC 9110 §8.6). Non-numeric, negative, signed, hex or list values cannot frame
    /// the body; RFC 9112 §6.3 (item 5) makes that an unrecoverable framing error: 400 and close (never read as 0 or
    /// as 5, which would leave the rest to be parsed as the next request, exactly what a stricter hop in front would
    /// not do). Kestrel parses the header before the gateway runs and hands the app the normalised number, so this
    /// is decided in Kestrel.
    /// </summary>
    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("0x5")]
    [InlineData("5, 6")]
    public async Task Invalid_ContentLength_is_rejected(string value)
    {
        await AssertRejectedAsync(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\n" +
            $"Content-Length: {value}\r\n\r\nhello" + Smuggled,
            expectStatus: [400]);
    }

    /// <summary>
    /// "+5" is not 1*DIGIT, but Kestrel parses Content-Length before any application code and reads it as 5, so the
    /// gateway cannot tell it from "5". What it can guarantee is that its own framing and the upstream's agree: the
    /// backend gets exactly the five body bytes with an unambiguous Content-Length: 5, and the bytes after them are
    /// read as the next pipelined request on the client's connection, exactly as Kestrel framed them.
    /// </summary>
    [Fact]
    public async Task Signed_ContentLength_is_framed_as_its_number_and_forwarded_unambiguously()
    {
        var result = await RawHttpClient.SendAsync(_keystone.Port,
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nhello" + Smuggled);
        await Task.Delay(Settle);
        var received = Snapshot();

        Assert.False(result.Responses.Exists(r => r.Status >= 500), result.Describe());
        var first = Assert.Single(received, r => r.Path == "/echo");
        Assert.Equal("hello", first.Body);
        Assert.Contains("Content-Length: 5", first.Headers);
    }

    /// <summary>
    /// A request whose final transfer coding is not chunked has no determinable length; RFC 9112 §6.3 (item 4): the
    /// server MUST respond 400 and close. Covers "chunked, identity", an unknown coding "xchunked", and the same
    /// with a Content-Length beside it (the TE.TE smuggling shape: one hop ignores the odd Transfer-Encoding and
    /// trusts Content-Length).
    /// </summary>
    [Theory]
    [InlineData("chunked, identity", false)]
    [InlineData("xchunked", false)]
    [InlineData("chunked, identity", true)]
    [InlineData("xchunked", true)]
    public async Task Transfer_encoding_not_ending_in_chunked_is_rejected(string transferEncoding, bool withContentLength)
    {
        var body = "0\r\n\r\n" + Smuggled;
        var contentLength = withContentLength ? $"Content-Length: {body.Length}\r\n" : "";
        await AssertRejectedAsync(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\n" +
            $"Transfer-Encoding: {transferEncoding}\r\n{contentLength}\r\n" + body,
            expectStatus: [400]);
    }

    /// <summary>
    /// "Transfer-Encoding : chunked" (whitespace before the colon) is the classic obfuscation: a lenient hop trims the
    /// name and uses chunked, a strict one ignores it and uses Content-Length. RFC 9112 §5.1: a server MUST reject
    /// whitespace between field name and colon with 400.
    /// </summary>
    [Fact]
    public async Task Obfuscated_transfer_encoding_with_space_before_colon_is_rejected()
    {
        var body = "0\r\n\r\n" + Smuggled;
        await AssertRejectedAsync(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\n" +
            $"Content-Length: {body.Length}\r\nTransfer-Encoding : chunked\r\n\r\n" + body,
            expectStatus: [400]);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Chunked body errors: these are only found while the body streams, i.e. after the gateway has started
    // forwarding, so the backend may have seen the request head; it must never see a complete request (its body read
    // fails), and the client must get a 400 (YARP's RequestBodyClient -> 400), never a 502.
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Chunk sizes that are not hex, that overflow 64 bits, or chunk data not followed by CRLF make the rest of the
    /// stream unparseable (RFC 9112 §7.1). Expected: 400 (or a close), the backend gets no complete request, and the
    /// bytes after the error are never parsed as a request.
    /// </summary>
    [Theory]
    [InlineData("zz\r\nhello\r\n0\r\n\r\n")]                         // non-hex size
    [InlineData("ffffffffffffffffff\r\nhello\r\n0\r\n\r\n")]         // size overflows
    [InlineData("-5\r\nhello\r\n0\r\n\r\n")]                         // negative size
    [InlineData("5\r\nhelloXX\r\n0\r\n\r\n")]                        // data longer than the size / no CRLF after it
    [InlineData("5\r\nhello0\r\n\r\n" + Smuggled)]                   // missing CRLF after the chunk, request behind it
    public async Task Bad_chunked_body_is_rejected(string chunkedBody)
    {
        await AssertRejectedAsync(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody,
            expectStatus: [400],
            backendMaySeeAbortedRequest: true);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Header syntax
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Field names are tokens (RFC 9110 §5.1); a line without a colon is not a field; obs-fold (a line starting with
    /// whitespace) MUST be rejected by a server that does not unfold it (RFC 9112 §5.2); CR, LF and NUL are never
    /// allowed in a value (RFC 9110 §5.5). Any of these in a proxy is a header-injection / desync risk, so the request
    /// is refused with 400 and nothing is forwarded. Kestrel refuses most of them itself, but it accepts delimiter
    /// characters such as ( " { in a name; those reach the gateway, and YARP then silently drops the header it cannot
    /// forward, so the gateway must be the one to refuse them (the route and any script would see a header the
    /// upstream never gets).
    /// </summary>
    [Theory]
    [InlineData("Bad Name: x\r\n")]                 // space inside the name
    [InlineData("NoColonHere\r\n")]                 // no colon at all
    [InlineData("X-Bad(Name): x\r\n")]              // delimiter characters are not token characters
    [InlineData("X-Bad\"Name\": x\r\n")]
    [InlineData("X-Bad{Name}: x\r\n")]
    [InlineData(": empty-name\r\n")]                // empty name
    [InlineData("X-Folded: a\r\n  folded-continuation\r\n")] // obs-fold with spaces
    [InlineData("X-Folded: a\r\n\tfolded-continuation\r\n")] // obs-fold with a tab
    [InlineData("X-Bad: a\rb\r\n")]                 // bare CR in a value
    [InlineData("X-Bad: a\0b\r\n")]                 // NUL in a value
    [InlineData("X-Bad\0: x\r\n")]                  // NUL in a name
    public async Task Invalid_header_line_is_rejected(string headerLine)
    {
        await AssertRejectedAsync(
            "GET /echo HTTP/1.1\r\nHost: localhost\r\n" + headerLine + "X-After: 1\r\n\r\n",
            expectStatus: [400]);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Host
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get 400. Routing by host cannot work without it.</summary>
    [Fact]
    public async Task Missing_host_on_http11_is_rejected()
    {
        await AssertRejectedAsync("GET /echo HTTP/1.1\r\nX-Other: 1\r\n\r\n", expectStatus: [400]);
    }

    /// <summary>
    /// RFC 9112 §3.2: more than one Host field MUST get 400. Otherwise Keystone could route on one host while the
    /// backend (preserve_host) acts on the other.
    /// </summary>
    [Theory]
    [InlineData("localhost", "evil.example")]
    [InlineData("localhost", "localhost")]
    public async Task Duplicate_host_headers_are_rejected(string first, string second)
    {
        await AssertRejectedAsync($"GET /echo HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n\r\n", expectStatus: [400]);
    }

    /// <summary>
    /// A Host that is not uri-host[:port] (RFC 9110 §7.2; RFC 9112 §3.2: a server MUST answer 400 to an invalid Host)
    /// gets 400: with preserve_host it would be sent upstream verbatim, where a path, userinfo or space in it can
    /// poison absolute URLs or caches, and a value HttpClient refuses (a port past 65535) must not turn into a 502 --
    /// the client's mistake is a 4xx. An empty Host on an origin-form http request names no host at all, so there is
    /// nothing to route or preserve on: 400 too (as nginx does).
    /// </summary>
    [Theory]
    [InlineData("local host")]
    [InlineData("localhost/evil")]
    [InlineData("user@localhost")]
    [InlineData("localhost:port")]
    [InlineData("localhost:99999999999")]
    [InlineData("localhost:65536")]
    [InlineData("localhost:-1")]
    [InlineData("")]
    [InlineData("[::1")]
    [InlineData("localhost\\evil")]
    public async Task Bad_host_value_is_rejected(string host)
    {
        await AssertRejectedAsync($"GET /echo HTTP/1.1\r\nHost: {host}\r\n\r\n", expectStatus: [400]);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Size limits
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>A 64 KB request target exceeds Kestrel's request-line limit (8 KB): 414 URI Too Long, nothing forwarded.</summary>
    [Fact]
    public async Task Oversized_request_line_is_rejected()
    {
        await AssertRejectedAsync(
            "GET /" + new string('a', 64 * 1024) + " HTTP/1.1\r\nHost: localhost\r\n\r\n",
            expectStatus: [414, 400]);
    }

    /// <summary>
    /// 1 MB of headers (many lines, and one huge value) exceeds Kestrel's 32 KB header limit: 431, or a close while
    /// the client is still writing. Never buffered whole, never forwarded.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Oversized_headers_are_rejected(bool oneHugeHeader)
    {
        var headers = new StringBuilder();
        if (oneHugeHeader)
        {
            headers.Append("X-Huge: ").Append('a', 1024 * 1024).Append("\r\n");
        }
        else
        {
            for (int i = 0; i < 1024; i++)
                headers.Append("X-Pad-").Append(i).Append(": ").Append('a', 1000).Append("\r\n");
        }

        await AssertRejectedAsync(
            "GET /echo HTTP/1.1\r\nHost: localhost\r\n" + headers + "\r\n",
            expectStatus: [431, 400]);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Methods and request targets
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Keystone is a reverse proxy, not a forward proxy: CONNECT must never open a tunnel or reach the backend. The
    /// gateway answers 405 with the JSON error body (Kestrel may refuse it as 400 earlier).
    /// </summary>
    [Fact]
    public async Task Connect_is_refused_and_never_forwarded()
    {
        var result = await AssertRejectedAsync(
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            expectStatus: [405, 400]);
        if (result.First is { Status: 405 } response)
            Assert.Contains("\"status\":405", response.BodyText);
    }

    /// <summary>
    /// CONNECT with bytes pushed straight after the head, as a tunnelling client does (it may send tunnel data without
    /// waiting for the 2xx). Those bytes are tunnel payload, not HTTP: after refusing the CONNECT the gateway must close
    /// the connection rather than parse them as the next request, or any proxy in front that relays "tunnel" bytes
    /// blindly becomes a way to slip requests (here GET /smuggled) past it.
    /// </summary>
    [Fact]
    public async Task Connect_followed_by_tunnel_bytes_is_refused()
    {
        await AssertRejectedAsync(
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n" + Smuggled,
            expectStatus: [405, 400]);
    }

    /// <summary>
    /// Absolute-form target whose authority differs from Host (RFC 9112 §3.2.2: the authority replaces Host). Routing
    /// on one and forwarding the other is a host-confusion bug; Kestrel refuses the mismatch with 400.
    /// </summary>
    [Fact]
    public async Task Absolute_form_target_with_a_different_host_is_rejected()
    {
        await AssertRejectedAsync(
            "GET http://evil.example/echo HTTP/1.1\r\nHost: localhost\r\n\r\n",
            expectStatus: [400]);
    }

    /// <summary>
    /// Bare LF line endings. RFC 9112 §2.2 lets a recipient accept a lone LF as a line terminator, but a proxy that
    /// accepts what a hop in front of it reads differently invites desync; the expected answer here is 400. The mixed
    /// case (CRLF and LF in one head) is the dangerous one: a lenient parser sees headers X-A and X-B, a strict one
    /// sees one header X-A whose value holds "\nX-B: 2". Kestrel accepts bare LF by default; the AppContext switch
    /// Microsoft.AspNetCore.Server.Kestrel.DisableHttp1LineFeedTerminators turns that off.
    /// </summary>
    [Theory]
    [InlineData("GET /echo HTTP/1.1\nHost: localhost\n\n")]
    [InlineData("GET /echo HTTP/1.1\r\nHost: localhost\r\nX-A: 1\nX-B: 2\r\n\r\n")]
    public async Task Bare_LF_line_endings_are_rejected(string request)
    {
        await AssertRejectedAsync(request, expectStatus: [400]);
    }

    /// <summary>An HTTP/0.9 simple request ("GET /" with no version) is not supported: 400 or a close, nothing forwarded.</summary>
    [Theory]
    [InlineData("GET /echo\r\n\r\n")]
    [InlineData("GET /echo\r\n")]
    public async Task Http09_request_is_rejected(string request)
    {
        await AssertRejectedAsync(request, expectStatus: [400]);
    }

    /// <summary>
    /// An unknown or malformed protocol version (HTTP-version is case-sensitive, RFC 9112 §2.3). This suite's rule
    /// is "4xx, never 5xx", so the expectation is 400. Kestrel answers these itself, before the gateway runs, with
    /// 505 HTTP Version Not Supported, which RFC 9110 §15.6.6 does allow for a version the server will not speak; if
    /// that is accepted as the intended behaviour, widen expectStatus to 505 here rather than weaken the 5xx rule
    /// everywhere else. ("HTTP/1" is not a version at all and already gets 400.) Accepted: Kestrel answers before any
    /// application code runs, 505 is the status RFC 9110 defines for exactly this, and nothing is forwarded.
    /// </summary>
    [Theory]
    [InlineData("HTTP/9.9")]
    [InlineData("HTTP/1.2")]
    [InlineData("HTTP/1")]
    [InlineData("http/1.1")]
    public async Task Unknown_http_version_is_rejected(string version)
    {
        await AssertRejectedAsync($"GET /echo {version}\r\nHost: localhost\r\n\r\n", expectStatus: [400, 505]);
    }

    /// <summary>
    /// Methods are case-sensitive tokens (RFC 9110 §9.1): "get" is not GET, and FOO is an extension method. The route
    /// names its methods, so the path matches and the method does not: 405 with Allow, never forwarded, never 5xx.
    /// </summary>
    [Theory]
    [InlineData("get")]
    [InlineData("Get")]
    [InlineData("FOO")]
    [InlineData("PROPFIND")]
    public async Task Lowercase_or_unknown_method_gets_405(string method)
    {
        var result = await AssertRejectedAsync($"{method} /echo HTTP/1.1\r\nHost: localhost\r\n\r\n", expectStatus: [405]);
        Assert.NotNull(result.First!.Header("Allow"));
    }

    /// <summary>A method that is not a token at all (delimiters in it) never reaches routing: 400.</summary>
    [Theory]
    [InlineData("G(T")]
    [InlineData("GE\0T")]
    public async Task Method_that_is_not_a_token_is_rejected(string method)
    {
        await AssertRejectedAsync($"{method} /echo HTTP/1.1\r\nHost: localhost\r\n\r\n", expectStatus: [400]);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Control: the harness itself
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>The same raw client and backend with a well-formed chunked POST: 200, exactly one request, body intact.</summary>
    [Fact]
    public async Task Control_well_formed_chunked_post_is_forwarded_once()
    {
        var result = await RawHttpClient.SendAsync(_keystone.Port,
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        Assert.True(result.Responses.Count == 1 && result.First!.Status == 200, result.Describe());
        await Task.Delay(Settle);
        var received = Snapshot();
        var only = Assert.Single(received);
        Assert.Equal(("POST", "/echo", "hello", null), (only.Method, only.Path, only.Body, only.BodyError));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // The checks every case shares
    // ---------------------------------------------------------------------------------------------------------------

    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Sends <paramref name="request"/> on a new connection and asserts the suite's invariants (see the class summary).
    /// <paramref name="expectStatus"/> narrows the 4xx to the statuses this case should get.
    /// <paramref name="backendMaySeeAbortedRequest"/>: the error is in the body, found only while streaming it, so the
    /// backend may see one request whose body read fails; it must still never see a complete one.
    /// </summary>
    private async Task<RawHttpResult> AssertRejectedAsync(string request, int[] expectStatus, bool backendMaySeeAbortedRequest = false)
    {
        var result = await RawHttpClient.SendAsync(_keystone.Port, request);

        // Anything the gateway forwards arrives within milliseconds on loopback; give a smuggled request time to land.
        await Task.Delay(Settle);
        var received = Snapshot();

        // Every broken rule is collected first, so a failure shows the whole picture: what was sent, what came back,
        // and what the backend saw.
        var problems = new List<string>();
        if (result.TimedOut)
            problems.Add("Keystone neither answered nor closed the connection within 5 s");
        // A status a case lists on purpose is not a problem even when it is not a 4xx (see the HTTP-version case).
        if (result.Responses.Exists(r => r.Status >= 500 && !expectStatus.Contains(r.Status)))
            problems.Add("Keystone answered a malformed request with a 5xx");
        if (result.Responses.Count > 1)
            problems.Add("more than one response: bytes inside the request were parsed as a request of their own (smuggling)");
        if (result.First is { } response)
        {
            if (response.Status is < 400 or >= 500 && !expectStatus.Contains(response.Status))
                problems.Add($"expected a 4xx, got {response.Status}");
            else if (!expectStatus.Contains(response.Status))
                problems.Add($"expected {string.Join(" or ", expectStatus)}, got {response.Status}");
        }
        else if (!result.Closed && !result.TimedOut)
        {
            problems.Add("no response, yet the connection is still open");
        }

        if (received.Exists(r => r.Path.Contains("smuggled", StringComparison.Ordinal)))
            problems.Add("the backend received the request hidden inside the client's request (/smuggled)");
        if (received.Count > 1)
            problems.Add($"the backend received {received.Count} requests for one client request");
        else if (received.Count == 1 && !backendMaySeeAbortedRequest)
            problems.Add("a request that should have been refused was forwarded to the backend");
        else if (received.Count == 1 && received[0].BodyError is null)
            problems.Add("the backend received a complete request although the client's body was malformed");

        if (problems.Count > 0)
        {
            Assert.Fail(string.Join("\n", problems.Select(p => "- " + p))
                + $"\nsent: {Printable(request)}"
                + $"\ngot:  {result.Describe()}"
                + "\nbackend received: " + (received.Count == 0 ? "nothing" : string.Join("\n    ", received)));
        }

        await AssertStillServingAsync();
        return result;
    }

    /// <summary>A normal request on a new connection still goes through the proxy and gets 200.</summary>
    private async Task AssertStillServingAsync()
    {
        var before = Snapshot().Count;
        var result = await RawHttpClient.SendAsync(_keystone.Port, "GET /alive HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        Assert.True(result.First is { Status: 200 }, "after the malformed request, a normal request no longer gets 200: " + result.Describe());
        var received = Snapshot();
        Assert.True(received.Count == before + 1 && received[^1].Path == "/alive",
            "the follow-up request did not reach the backend exactly once: " + string.Join("; ", received));
    }

    private List<Received> Snapshot()
    {
        lock (_received) return [.. _received];
    }

    /// <summary>The backend: records method, path, headers and body (or the error reading it), then answers 200.</summary>
    private async Task RecordAsync(HttpContext context)
    {
        var request = context.Request;
        string body = "";
        string? bodyError = null;
        try
        {
            using var reader = new StreamReader(request.Body, Encoding.Latin1);
            body = await reader.ReadToEndAsync(context.RequestAborted);
        }
        catch (Exception e)
        {
            bodyError = e.GetType().Name + ": " + e.Message;
        }

        var headers = request.Headers.Select(h => $"{h.Key}: {h.Value}").ToList();
        lock (_received)
            _received.Add(new Received(request.Method, request.Path.Value ?? "", headers, body, bodyError));
        if (bodyError is not null) return;
        context.Response.ContentType = "text/plain";
        await context.Response.WriteAsync("backend ok");
    }

    private static string Printable(string request)
    {
        var shown = request.Length > 300 ? request[..200] + $"...({request.Length} bytes)..." + request[^60..] : request;
        return shown.Replace("\r", "\\r").Replace("\n", "\\n").Replace("\0", "\\0").Replace("\t", "\\t");
    }

    private sealed record Received(string Method, string Path, List<string> Headers, string Body, string? BodyError)
    {
        public override string ToString() =>
            $"{Method} {Path} [{string.Join(", ", Headers)}] body={Printable(Body)} bodyError={BodyError ?? "none"}";
    }
}
