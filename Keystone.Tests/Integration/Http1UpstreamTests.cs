using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Keystone.Tests.Integration;

/// <summary>
/// The lean HTTP/1.1 forwarding path (bodiless requests to http targets) against an upstream that writes exact
/// bytes: keep-alive reuse, the three body framings, 1xx responses, malformed and cut-off responses, and the
/// request head it sends.
/// </summary>
public sealed class Http1UpstreamTests : IDisposable
{
    private const string Ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(15));

    public void Dispose() => _timeout.Dispose();

    private CancellationToken Cancel => _timeout.Token;

    private static string Config(ScriptedTcpBackend backend, string keys = "") => $$"""
        upstreams:
          app:
            targets: ["{{backend.Url}}"]
            eject: false
            circuit_breaker: false
            {{keys.Replace("\n", "\n    ", StringComparison.Ordinal)}}
        routes:
          - { name: r, path: "/{*rest}", upstream: app }
        """;

    /// <summary>GETs <paramref name="path"/>, asserts a 200 and returns the body.</summary>
    private async Task<string> GetOkAsync(KeystoneInstance keystone, string path)
    {
        using var response = await keystone.Client.GetAsync(path, Cancel);
        var body = await response.Content.ReadAsStringAsync(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)response.StatusCode} {body}");
        return body;
    }

    private static bool IsRequestFor(string head, string path) => head.StartsWith($"GET {path} ", StringComparison.Ordinal);

    /// <summary>The values of one header in a request head as the backend read it.</summary>
    private static List<string> Values(string head, string name)
    {
        var values = new List<string>();
        foreach (var line in head.Split("\r\n").AsSpan(1))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[..colon].Equals(name, StringComparison.OrdinalIgnoreCase)) values.Add(line[(colon + 1)..].Trim());
        }
        return values;
    }

    [Fact]
    public async Task Sequential_requests_reuse_one_upstream_connection()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(_ => Ok);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        for (int i = 0; i < 3; i++) Assert.Equal("ok", await GetOkAsync(keystone, $"/n{i}"));

        Assert.Equal(3, backend.Heads.Length);
        Assert.Equal(1, backend.Connections);
    }

    /// <summary>The backend keeps every connection open and would answer on it: only Keystone can decide not to reuse it.</summary>
    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")]
    [InlineData("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok")]
    [InlineData("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")]
    public async Task A_response_that_closes_its_connection_is_followed_by_a_new_one(string response)
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(_ => response);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        Assert.Equal("ok", await GetOkAsync(keystone, "/one"));
        Assert.Equal("ok", await GetOkAsync(keystone, "/two"));

        Assert.Equal(2, backend.Connections);
    }

    /// <summary>
    /// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and an intermediary that forwards such a message
    /// removes the Content-Length first; the connection, which may be out of step, is not used again.
    /// </summary>
    [Fact]
    public async Task A_response_with_both_Transfer_Encoding_and_Content_Length_is_dechunked_without_the_length()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(_ =>
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n2\r\nok\r\n0\r\n\r\n");
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        Assert.Equal("ok", await GetOkAsync(keystone, "/one"));
        Assert.Equal("ok", await GetOkAsync(keystone, "/two"));

        Assert.Equal(2, backend.Connections);
    }

    [Fact]
    public async Task A_chunked_response_arrives_dechunked_with_extensions_and_trailers_dropped()
    {
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            while (await connection.ReadHeadAsync() is { } head)
            {
                if (!IsRequestFor(head, "/chunked"))
                {
                    await connection.WriteAsync(Ok);
                    continue;
                }
                // Split inside a size line, between CR and LF, inside data and inside the trailer section.
                await connection.WriteInPiecesAsync(TimeSpan.FromMilliseconds(20),
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5;x=y\r\nhel",
                    "lo\r\n1\r",
                    "\n,\r\nA\r\n wonderful\r\n7;a=b;c=\"d\"\r\n",
                    " world!\r\n0\r\nX-Checksum: ",
                    "abc\r\n\r\n");
            }
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        Assert.Equal("hello, wonderful world!", await GetOkAsync(keystone, "/chunked"));
        Assert.Equal("ok", await GetOkAsync(keystone, "/next"));

        Assert.Equal(1, backend.Connections); // the trailer was read to its end, so the connection was reusable
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Large_bodies_arrive_intact(bool chunked)
    {
        var body = new byte[300_000];
        for (int i = 0; i < body.Length; i++) body[i] = (byte)(i * 7 % 251);
        var wire = new MemoryStream();
        if (chunked)
        {
            wire.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"u8);
            int offset = 0;
            // Chunks smaller and larger than the largest buffer (64 KB) the head is read into.
            foreach (int size in new[] { 1, 65_536, 100_000, body.Length - 165_537 })
            {
                wire.Write(Encoding.ASCII.GetBytes($"{size:X}\r\n"));
                wire.Write(body, offset, size);
                wire.Write("\r\n"u8);
                offset += size;
            }
            wire.Write("0\r\n\r\n"u8);
        }
        else
        {
            wire.Write(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\n\r\n"));
            wire.Write(body);
        }
        var response = wire.ToArray();
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            while (await connection.ReadHeadAsync() is { } head)
                await (IsRequestFor(head, "/big") ? connection.WriteAsync(response) : connection.WriteAsync(Ok));
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        using (var big = await keystone.Client.GetAsync("/big", Cancel))
        {
            Assert.Equal(HttpStatusCode.OK, big.StatusCode);
            var received = await big.Content.ReadAsByteArrayAsync(Cancel);
            Assert.True(body.AsSpan().SequenceEqual(received), $"the body changed on the way ({received.Length} bytes arrived)");
        }
        Assert.Equal("ok", await GetOkAsync(keystone, "/next"));
        Assert.Equal(1, backend.Connections);
    }

    [Fact]
    public async Task A_body_ended_by_the_upstream_closing_arrives_whole()
    {
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            while (await connection.ReadHeadAsync() is { } head)
            {
                if (!IsRequestFor(head, "/until-close"))
                {
                    await connection.WriteAsync(Ok);
                    continue;
                }
                await connection.WriteInPiecesAsync(TimeSpan.FromMilliseconds(20),
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ", "second part, ", "last part");
                return; // the close ends the body
            }
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        Assert.Equal("first part, second part, last part", await GetOkAsync(keystone, "/until-close"));
        Assert.Equal("ok", await GetOkAsync(keystone, "/next"));

        Assert.Equal(2, backend.Connections);
    }

    [Fact]
    public async Task A_HEAD_response_with_Content_Length_has_no_body_and_leaves_the_connection_usable()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(head => head.StartsWith("HEAD ", StringComparison.Ordinal)
            ? "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
            : Ok);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        using (var request = new HttpRequestMessage(HttpMethod.Head, "/thing"))
        using (var response = await keystone.Client.SendAsync(request, Cancel))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(100, response.Content.Headers.ContentLength);
            Assert.Empty(await response.Content.ReadAsByteArrayAsync(Cancel));
        }
        Assert.Equal("ok", await GetOkAsync(keystone, "/next"));

        Assert.StartsWith("HEAD /thing HTTP/1.1\r\n", backend.Heads[0], StringComparison.Ordinal);
        Assert.Equal(1, backend.Connections);
    }

    [Fact]
    public async Task Responses_204_and_304_pass_through_without_a_body()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(head =>
            IsRequestFor(head, "/204") ? "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"
            // A 304 may carry the Content-Length of the representation it stands for; it still has no body.
            : IsRequestFor(head, "/304") ? "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n"
            : Ok);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        // Pipelined on one client connection: a body byte after either would break the framing of what follows.
        var result = await RawHttpClient.SendAsync(keystone.Port,
            "GET /204 HTTP/1.1\r\nHost: a\r\n\r\n"
            + "GET /304 HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v1\"\r\n\r\n"
            + "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");

        Assert.True(result.Responses.Count == 3, result.Describe());
        Assert.Equal(204, result.Responses[0].Status);
        Assert.Equal("1", result.Responses[0].Header("X-A"));
        Assert.Equal(304, result.Responses[1].Status);
        Assert.Equal("\"v1\"", result.Responses[1].Header("ETag"));
        Assert.Equal(200, result.Responses[2].Status);
        Assert.Equal("ok", result.Responses[2].BodyText);
        Assert.True(result.TrailingBytes == 0, result.Describe());
        Assert.Equal(1, backend.Connections);
    }

    [Fact]
    public async Task Informational_responses_are_not_passed_on_and_their_headers_not_copied()
    {
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            while (await connection.ReadHeadAsync() is not null)
                await connection.WriteInPiecesAsync(TimeSpan.FromMilliseconds(20),
                    "HTTP/1.1 100 Continue\r\n\r\n",
                    "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
                    + "HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 5\r\n\r\nfinal");
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        var result = await RawHttpClient.SendAsync(keystone.Port,
            "GET /hints HTTP/1.1\r\nHost: a\r\n\r\nGET /hints HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");

        Assert.True(result.Responses.Count == 2, result.Describe());
        foreach (var response in result.Responses)
        {
            Assert.Equal(200, response.Status);
            Assert.Equal("final", response.BodyText);
            Assert.Equal("yes", response.Header("X-Final"));
            Assert.Null(response.Header("Link"));
        }
        Assert.Equal(1, backend.Connections);
    }

    [Fact]
    public async Task Heads_and_chunk_lines_longer_than_the_first_buffer_arrive_whole()
    {
        // The connection's buffer starts at 4 KB and grows up to 64 KB; these do not fit the first one.
        string big = new('h', 40_000);
        string extension = new('e', 10_000);
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            while (await connection.ReadHeadAsync() is { } head)
            {
                await connection.WriteAsync(IsRequestFor(head, "/chunked")
                    ? $"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x={extension}\r\nok\r\n0\r\n\r\n"
                    : $"HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        for (int i = 0; i < 2; i++)
        {
            using var response = await keystone.Client.GetAsync("/big", Cancel);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(big, response.Headers.GetValues("X-Big").Single());
            Assert.Equal("ok", await response.Content.ReadAsStringAsync(Cancel));
        }
        using (var chunked = await keystone.Client.GetAsync("/chunked", Cancel))
        {
            Assert.Equal(HttpStatusCode.OK, chunked.StatusCode);
            Assert.Equal("ok", await chunked.Content.ReadAsStringAsync(Cancel));
        }
        Assert.Equal("ok", await GetOkAsync(keystone, "/next"));
        Assert.Equal(1, backend.Connections);
    }

    /// <summary>Upstream responses Keystone must refuse, and whether the backend closes right after sending one.</summary>
    private static readonly Dictionary<string, (string Response, bool ThenClose)> Malformed = new()
    {
        ["unknown version"] = ("HTTP/9.9 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
        ["no status line"] = ("hello\r\n\r\n", false),
        ["space before colon"] = ("HTTP/1.1 200 OK\r\nX-Before: leaked\r\nContent-Length : 2\r\n\r\nok", false),
        ["folded header line"] = ("HTTP/1.1 200 OK\r\nX-Before: leaked\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok", false),
        ["two different content lengths"] = ("HTTP/1.1 200 OK\r\nX-Before: leaked\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false),
        ["non-numeric content length"] = ("HTTP/1.1 200 OK\r\nX-Before: leaked\r\nContent-Length: two\r\n\r\nok", false),
        ["signed content length"] = ("HTTP/1.1 200 OK\r\nX-Before: leaked\r\nContent-Length: +2\r\n\r\nok", false),
        ["control character in a value"] = ("HTTP/1.1 200 OK\r\nX-Before: leaked\r\nX-A: a\u0001b\r\nContent-Length: 2\r\n\r\nok", false),
        ["head over 64 KB"] = ("HTTP/1.1 200 OK\r\nX-Before: leaked\r\nX-Big: " + new string('a', 70_000) + "\r\nContent-Length: 2\r\n\r\nok", false),
        ["half a head then close"] = ("HTTP/1.1 200 OK\r\nX-Before: leaked\r\nContent-Le", true),
        ["unasked 101"] = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false),
        ["a 100 then close"] = ("HTTP/1.1 100 Continue\r\n\r\n", true),
    };

    [Theory]
    [InlineData("unknown version")]
    [InlineData("no status line")]
    [InlineData("space before colon")]
    [InlineData("folded header line")]
    [InlineData("two different content lengths")]
    [InlineData("non-numeric content length")]
    [InlineData("signed content length")]
    [InlineData("control character in a value")]
    [InlineData("head over 64 KB")]
    [InlineData("half a head then close")]
    [InlineData("unasked 101")]
    [InlineData("a 100 then close")]
    public async Task A_malformed_response_head_is_a_502_and_the_next_request_succeeds(string kind)
    {
        var (response, thenClose) = Malformed[kind];
        await AssertRefusedThenServingAsync(response, thenClose);
    }

    [Fact]
    public async Task A_bare_CR_inside_a_response_header_value_is_a_502()
    {
        await AssertRefusedThenServingAsync("HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok", thenClose: false);
    }

    /// <summary>GET /bad gets <paramref name="response"/> from the backend and must be a 502; GET /good after it a 200.</summary>
    private async Task AssertRefusedThenServingAsync(string response, bool thenClose)
    {
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            while (await connection.ReadHeadAsync() is { } head)
            {
                if (!IsRequestFor(head, "/bad"))
                {
                    await connection.WriteAsync(Ok);
                    continue;
                }
                await connection.WriteAsync(response);
                if (thenClose) return;
            }
        });
        // A response Keystone waited on instead of refusing shows up as a 504 rather than a hung test.
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend, "timeout: 3s"));

        using (var refused = await keystone.Client.GetAsync("/bad", Cancel))
        {
            await ErrorBody.AssertAsync(refused, 502, Cancel);
            Assert.False(refused.Headers.Contains("X-Before"), "a header of the refused head reached the client");
            Assert.False(refused.Headers.Contains("Set-Cookie"), "an injected header reached the client");
        }
        Assert.Equal("ok", await GetOkAsync(keystone, "/good"));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", false)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", false)]
    public async Task A_body_cut_short_or_misframed_aborts_the_client_connection(string response, bool thenClose)
    {
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            while (await connection.ReadHeadAsync() is { } head)
            {
                if (!IsRequestFor(head, "/cut"))
                {
                    await connection.WriteAsync(Ok);
                    continue;
                }
                await connection.WriteAsync(response);
                if (thenClose) return;
            }
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend, "timeout: 3s"));

        var error = await Record.ExceptionAsync(async () =>
        {
            using var cut = await keystone.Client.GetAsync("/cut", Cancel);
            var body = await cut.Content.ReadAsStringAsync(Cancel);
            Assert.Fail($"a complete-looking {(int)cut.StatusCode} response with body \"{body}\" reached the client");
        });

        Assert.True(error is HttpRequestException or IOException, $"expected the connection to be aborted, got {error}");
        Assert.Equal("ok", await GetOkAsync(keystone, "/good"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_pooled_connection_the_upstream_closed_while_idle_is_replaced_transparently(bool reset)
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            if (connection.Number == 1)
            {
                if (await connection.ReadHeadAsync() is null) return;
                await connection.WriteAsync(Ok);
                await Task.Delay(100, connection.Stopping); // a short keep-alive timeout
                if (reset) connection.Reset();
                else connection.Close();
                closed.TrySetResult();
                return;
            }
            while (await connection.ReadHeadAsync() is not null) await connection.WriteAsync(Ok);
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        Assert.Equal("ok", await GetOkAsync(keystone, "/first"));
        await closed.Task.WaitAsync(Cancel);
        await Task.Delay(50, Cancel); // the FIN or RST reaches Keystone's idle socket
        Assert.Equal("ok", await GetOkAsync(keystone, "/second"));

        Assert.Equal(2, backend.Connections);
    }

    /// <summary>
    /// A response the upstream sends unasked (after the body, in the same packet or later while the connection is
    /// idle) must not be taken for the answer to the next request: that would hand one client another's response.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    public async Task Bytes_after_a_response_are_never_taken_for_the_next_response(int pauseMs)
    {
        const string Stale = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale";
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            if (connection.Number == 1 && await connection.ReadHeadAsync() is not null)
            {
                if (pauseMs == 0)
                {
                    await connection.WriteAsync(Ok + Stale);
                }
                else
                {
                    await connection.WriteAsync(Ok);
                    await Task.Delay(pauseMs, connection.Stopping);
                    await connection.WriteAsync(Stale);
                }
            }
            while (await connection.ReadHeadAsync() is not null)
                await connection.WriteAsync(connection.Number == 1 ? Stale : "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh");
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        Assert.Equal("ok", await GetOkAsync(keystone, "/first"));
        await Task.Delay(pauseMs + 100, Cancel); // the unasked bytes are in Keystone's socket by now

        Assert.Equal("fresh", await GetOkAsync(keystone, "/second"));
    }

    [Fact]
    public async Task The_request_head_drops_hop_by_hop_headers_and_carries_the_forwarding_ones_once()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(_ => Ok);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend, "preserve_host: false"));

        var result = await RawHttpClient.SendAsync(keystone.Port, Encoding.UTF8.GetBytes(
            "GET /path?q=1 HTTP/1.1\r\n"
            + "Host: front.example:8080\r\n"
            + "Connection: close, X-Custom\r\n"
            + "Keep-Alive: timeout=5\r\n"
            + "Proxy-Connection: keep-alive\r\n"
            + "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
            + "TE: gzip\r\n"
            + "X-Forwarded-For: 1.2.3.4\r\n"
            + "X-Forwarded-Proto: ftp\r\n"
            + "X-Forwarded-Host: spoofed.example\r\n"
            + "X-Request-Id: trace-42\r\n"
            + "X-Ordinary: kept\r\n"
            + "X-Utf8: café\r\n\r\n"));

        Assert.True(result.First?.Status == 200, result.Describe());
        var head = Assert.Single(backend.Heads);
        Assert.StartsWith("GET /path?q=1 HTTP/1.1\r\n", head, StringComparison.Ordinal);
        Assert.Equal([$"127.0.0.1:{backend.Port}"], Values(head, "Host"));
        foreach (var hop in new[] { "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Transfer-Encoding" })
            Assert.True(Values(head, hop).Count == 0, $"{hop} was forwarded:\n{head}");
        Assert.Equal(["1.2.3.4, 127.0.0.1"], Values(head, "X-Forwarded-For"));
        Assert.Equal(["http"], Values(head, "X-Forwarded-Proto"));
        Assert.Equal(["front.example:8080"], Values(head, "X-Forwarded-Host"));
        Assert.Equal(["trace-42"], Values(head, "X-Request-Id"));
        Assert.Equal(["kept"], Values(head, "X-Ordinary"));
        Assert.Equal([Encoding.Latin1.GetString(Encoding.UTF8.GetBytes("café"))], Values(head, "X-Utf8")); // the same bytes
    }

    [Fact]
    public async Task TE_trailers_is_forwarded()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(_ => Ok);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        var result = await RawHttpClient.SendAsync(keystone.Port, "GET /grpcish HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n");

        Assert.True(result.First?.Status == 200, result.Describe());
        Assert.Equal(["trailers"], Values(Assert.Single(backend.Heads), "TE"));
    }

    [Theory]
    [InlineData("/path?q=1")]
    [InlineData("/caf%C3%A9/a%20b?q=%41&r=%2F&s=a+b")]
    public async Task The_request_line_carries_the_path_and_query_as_the_client_sent_them(string target)
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(_ => Ok);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        var result = await RawHttpClient.SendAsync(keystone.Port, $"GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");

        Assert.True(result.First?.Status == 200, result.Describe());
        Assert.StartsWith($"GET {target} HTTP/1.1\r\n", Assert.Single(backend.Heads), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_http10_client_without_Host_is_forwarded_with_the_targets_authority()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(_ =>
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        var result = await RawHttpClient.SendAsync(keystone.Port, "GET /old HTTP/1.0\r\n\r\n");

        Assert.True(result.First is { Status: 200 } && result.Closed, result.Describe());
        Assert.Equal("hello", result.First.BodyText);
        var head = Assert.Single(backend.Heads);
        Assert.StartsWith("GET /old HTTP/1.1\r\n", head, StringComparison.Ordinal);
        Assert.Equal([$"127.0.0.1:{backend.Port}"], Values(head, "Host"));
    }

    [Fact]
    public async Task An_upstream_that_never_answers_is_a_504_after_timeout()
    {
        await using var backend = ScriptedTcpBackend.Start(connection => connection.WaitForCloseAsync());
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend, "timeout: 300ms"));

        var clock = Stopwatch.StartNew();
        using var response = await keystone.Client.GetAsync("/stuck", Cancel);
        clock.Stop();

        var body = await ErrorBody.AssertAsync(response, 504, Cancel);
        Assert.Equal("upstream timed out", body.GetProperty("error").GetString());
        Assert.InRange(clock.ElapsedMilliseconds, 250, 3000);
    }

    [Fact]
    public async Task Response_hop_by_hop_headers_are_dropped_and_end_to_end_ones_copied()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(_ =>
            "HTTP/1.1 200 OK\r\n"
            + "Connection: keep-alive\r\n"
            + "Keep-Alive: timeout=5, max=100\r\n"
            + "Proxy-Connection: keep-alive\r\n"
            + "Upgrade: h2c\r\n"
            + "Transfer-Encoding: chunked\r\n"
            + "X-Backend: 1\r\n"
            + "Set-Cookie: a=1; Path=/\r\n"
            + "Set-Cookie: b=2; Path=/\r\n\r\n"
            + "2\r\nok\r\n0\r\n\r\n");
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        using var response = await keystone.Client.GetAsync("/hop", Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync(Cancel));
        Assert.Empty(response.Headers.Connection);
        Assert.False(response.Headers.Contains("Keep-Alive"));
        Assert.False(response.Headers.Contains("Proxy-Connection"));
        Assert.False(response.Headers.Contains("Upgrade"));
        // Kestrel frames the body again with its own chunked encoding: one value, not the upstream's as well.
        Assert.Equal(["chunked"], response.Headers.TransferEncoding.Select(t => t.Value));
        Assert.Equal(["1"], response.Headers.GetValues("X-Backend"));
        Assert.Equal(["a=1; Path=/", "b=2; Path=/"], response.Headers.GetValues("Set-Cookie"));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\nX-Seen: yes\nContent-Length: 2\n\nok")]
    [InlineData("HTTP/1.1 200\r\nX-Seen: yes\r\nContent-Length: 2\r\n\r\nok")]
    [InlineData("HTTP/1.1 200 \r\nX-Seen: yes\r\nContent-Length: 2\r\n\r\nok")]
    [InlineData("HTTP/1.1 200 OK\r\nx-seen:yes\r\ncontent-length:2\r\n\r\nok")]
    [InlineData("HTTP/1.1 200 OK\r\nX-Seen: \t yes \t\r\nContent-Length: 2\r\n\r\nok")]
    public async Task Unusual_but_valid_response_heads_are_accepted(string response)
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(head => IsRequestFor(head, "/unusual") ? response : Ok);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        using (var unusual = await keystone.Client.GetAsync("/unusual", Cancel))
        {
            var body = await unusual.Content.ReadAsStringAsync(Cancel);
            Assert.True(unusual.StatusCode == HttpStatusCode.OK, $"{(int)unusual.StatusCode} {body}");
            Assert.Equal(["yes"], unusual.Headers.GetValues("X-Seen"));
            Assert.Equal("ok", body);
        }
        Assert.Equal("ok", await GetOkAsync(keystone, "/next"));
        Assert.Equal(1, backend.Connections);
    }

    /// <summary>RFC 9112 §6.3 lets a recipient take repeated identical Content-Length lines as one, as the parser does.</summary>
    [Fact]
    public async Task Two_identical_Content_Length_lines_are_taken_as_one()
    {
        await using var backend = ScriptedTcpBackend.StartAnswering(head => IsRequestFor(head, "/twice")
            ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
            : Ok);
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        Assert.Equal("ok", await GetOkAsync(keystone, "/twice"));
        Assert.Equal("ok", await GetOkAsync(keystone, "/next"));
        Assert.Equal(1, backend.Connections);
    }

    /// <summary>
    /// <c>timeout</c> bounds the whole wait for the response head (docs/configuration.md; YARP's path resets its
    /// activity timer only once the head is in), so a target that dribbles its head cannot hold a request longer.
    /// </summary>
    [Fact]
    public async Task A_response_head_that_trickles_in_past_timeout_is_a_504()
    {
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            if (await connection.ReadHeadAsync() is null) return;
            await connection.WriteAsync("HTTP/1.1 200 OK\r\n");
            for (int i = 0; i < 20; i++)
            {
                await Task.Delay(100, connection.Stopping);
                await connection.WriteAsync($"X-Line-{i}: {i}\r\n");
            }
            await connection.WriteAsync("Content-Length: 2\r\n\r\nok");
            await connection.WaitForCloseAsync();
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend, "timeout: 300ms"));

        var clock = Stopwatch.StartNew();
        using var response = await keystone.Client.GetAsync("/trickle", Cancel);
        clock.Stop();

        Assert.True(response.StatusCode == HttpStatusCode.GatewayTimeout,
            $"{(int)response.StatusCode} after {clock.ElapsedMilliseconds} ms, with a 300 ms timeout");
        await ErrorBody.AssertAsync(response, 504, Cancel);
        Assert.InRange(clock.ElapsedMilliseconds, 250, 1500);
    }

    [Fact]
    public async Task A_client_that_leaves_mid_body_makes_Keystone_drop_the_upstream_connection()
    {
        var big = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + new string('x', 100_000);
        var dropped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = ScriptedTcpBackend.Start(async connection =>
        {
            while (await connection.ReadHeadAsync() is { } head)
            {
                if (!IsRequestFor(head, "/big"))
                {
                    await connection.WriteAsync(Ok);
                    continue;
                }
                await connection.WriteAsync(big);
                await connection.WaitForCloseAsync(); // the rest never comes; Keystone must drop the connection
                dropped.TrySetResult();
                return;
            }
        });
        await using var keystone = await KeystoneInstance.StartAsync(Config(backend));

        // A raw client: HttpClient would first try to drain the rest of the body for up to 2 s.
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, keystone.Port, Cancel);
            var stream = client.GetStream();
            await stream.WriteAsync("GET /big HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray(), Cancel);
            var buffer = new byte[16 * 1024];
            for (int received = 0, read; received < 50_000; received += read)
            {
                read = await stream.ReadAsync(buffer, Cancel);
                Assert.True(read > 0, "Keystone closed before the first 50 KB of the body");
            }
        }
        // Only once the exchange is over can a connection go back to the pool; wait for that.
        var closed = await Task.WhenAny(dropped.Task, Task.Delay(TimeSpan.FromSeconds(5), Cancel)) == dropped.Task;
        Assert.True(closed, "Keystone kept waiting on the upstream response for 5 s after its client left");

        Assert.Equal("ok", await GetOkAsync(keystone, "/next"));
        Assert.Equal(2, backend.Connections);
    }
}
