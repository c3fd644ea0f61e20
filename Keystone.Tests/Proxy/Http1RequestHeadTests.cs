using System.Buffers;
using System.Net;
using System.Text;
using Keystone.Configuration;
using Keystone.Proxy;
using Microsoft.AspNetCore.Http;

namespace Keystone.Tests.Proxy;

/// <summary>
/// The request head of the lean HTTP/1.1 path, byte for byte, and its last line of defence: whatever would break
/// the framing on the wire is refused even when it got past every check before (Kestrel, config, scripts).
/// </summary>
public sealed class Http1RequestHeadTests
{
    private static readonly Upstream Upstream = new(new UpstreamConfig("app",
        [new TargetConfig(new Uri("http://10.0.0.5:3000/v2"), 1, default)], PreserveHost: false, TimeSpan.FromSeconds(30), default));

    private static Target Target => Upstream.Targets[0];

    private static DefaultHttpContext Request()
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Scheme = "http";
        context.Request.Host = new HostString("shop.example");
        context.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.7");
        return context;
    }

    /// <summary>The head as text, or null when refused.</summary>
    private static string? Write(DefaultHttpContext context, string path = "/a", string? query = "?x=1", UpstreamRequestTransformer? edits = null)
    {
        var head = Http1RequestHead.Write(context, Upstream, Target, path, query, "req-1", edits ?? new UpstreamRequestTransformer([], []), out int length);
        if (head is null) return null;
        var text = Encoding.UTF8.GetString(head, 0, length);
        ArrayPool<byte>.Shared.Return(head);
        return text;
    }

    [Fact]
    public void The_head_carries_the_clients_headers_without_hop_by_hop_ones_then_the_forwarding_ones_then_the_routes_edits()
    {
        var context = Request();
        context.Request.Headers["Accept"] = "text/html";
        context.Request.Headers["Connection"] = "keep-alive";
        context.Request.Headers["Keep-Alive"] = "timeout=5";
        context.Request.Headers["X-Forwarded-For"] = "203.0.113.1";
        context.Request.Headers["X-Drop"] = "1";
        var edits = new UpstreamRequestTransformer([new("X-Set", "on")], ["X-Drop"]);

        Assert.Equal(
            "GET /v2/a?x=1 HTTP/1.1\r\n" +
            "Host: 10.0.0.5:3000\r\n" +
            "Accept: text/html\r\n" +
            "X-Forwarded-For: 203.0.113.1, 192.0.2.7\r\n" +
            "X-Forwarded-Proto: http\r\n" +
            "X-Forwarded-Host: shop.example\r\n" +
            "X-Request-Id: req-1\r\n" +
            "X-Set: on\r\n" +
            "\r\n",
            Write(context, edits: edits));
    }

    [Theory]
    [InlineData("a\r\nX-Smuggled: 1")]
    [InlineData("a\rb")]
    [InlineData("a\nb")]
    [InlineData("a\0b")]
    public void A_header_value_that_would_end_its_line_is_refused(string value)
    {
        var fromClient = Request();
        fromClient.Request.Headers["X-Value"] = value;
        Assert.Null(Write(fromClient));

        var fromRoute = new UpstreamRequestTransformer([new("X-Value", value)], []);
        Assert.Null(Write(Request(), edits: fromRoute));
    }

    [Fact]
    public void A_header_name_that_would_end_its_line_is_refused()
    {
        var context = Request();
        context.Request.Headers["X-A\r\nX-B"] = "1";
        Assert.Null(Write(context));
    }

    [Theory]
    [InlineData("/a b", null)]
    [InlineData("/a\tb", null)]
    [InlineData("/a\u007f", null)]
    [InlineData("/a", "?x=1 HTTP/1.1\r\nHost: evil")]
    [InlineData("/a", "?x=\u0001")]
    public void A_request_target_with_space_or_control_characters_is_refused(string path, string? query)
    {
        Assert.Null(Write(Request(), path, query));
    }
}
