using Microsoft.AspNetCore.Http.Features;
using System.Net.Http.Headers;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Forwarder;

namespace Keystone.Proxy;

/// <summary>
/// Shapes the upstream request for one route: URI from the gateway's rewritten path, Host, the
/// X-Forwarded-* trio and the route's header edits. One instance per route, shared by its requests;
/// per-request values come from the <see cref="Exchange"/> feature.
/// </summary>
public sealed class UpstreamRequestTransformer : HttpTransformer
{
    public UpstreamRequestTransformer(KeyValuePair<string, string>[] setHeaders, string[] removeHeaders, bool bufferResponse = false)
    {
        SetHeaders = setHeaders;
        RemoveHeaders = removeHeaders;
        BufferResponse = bufferResponse;
    }

    /// <summary>The route's <c>set_headers</c>; <see cref="Http1RequestHead"/> makes the same edits.</summary>
    internal KeyValuePair<string, string>[] SetHeaders { get; }

    internal string[] RemoveHeaders { get; }

    /// <summary>Set for <c>buffer_response: true</c>: scripts read the body, so it is asked for uncompressed.</summary>
    internal bool BufferResponse { get; }

    public override async ValueTask TransformRequestAsync(HttpContext context, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        var forwarding = context.Features.GetRequiredFeature<Exchange>();
        proxyRequest.RequestUri = new Uri(forwarding.UpstreamUri);
        // The upstream is the route's, or another one a script chose: its settings apply.
        var upstream = forwarding.Upstream!;
        proxyRequest.Options.Set(UpstreamConnector.ConnectTimeout, upstream.ConnectTimeout);
        if (upstream.Timeouts is { } timeouts) proxyRequest.Options.Set(UpstreamTimeoutHandler.Key, timeouts);
        await base.TransformRequestAsync(context, proxyRequest, destinationPrefix, cancellationToken);

        var headers = proxyRequest.Headers;
        // The typed Host setter throws on values Kestrel accepts (a..b); the upstream, not us, judges the name.
        headers.Remove(HeaderNames.Host);
        if (upstream.PreserveHost && context.Request.Host.HasValue)
            headers.TryAddWithoutValidation(HeaderNames.Host, context.Request.Host.Value);

        // X-Forwarded-For grows hop by hop, like nginx's $proxy_add_x_forwarded_for; Proto and Host describe this hop only.
        headers.Remove(XForwardedFor);
        if (ForwardedFor(context) is { } forwardedFor) headers.TryAddWithoutValidation(XForwardedFor, forwardedFor);
        Replace(headers, XForwardedProto, context.Request.Scheme);
        if (context.Request.Host.HasValue) Replace(headers, XForwardedHost, context.Request.Host.Value);
        else headers.Remove(XForwardedHost);
        Replace(headers, Observability.RequestId.Header, forwarding.RequestId);

        // HttpRequestHeaders throws on content header names, so those are edited on the content.
        foreach (var name in RemoveHeaders)
        {
            if (IsContentHeader(name)) proxyRequest.Content?.Headers.Remove(name);
            else headers.Remove(name);
        }
        // Scripts see the body as the client will: not compressed by the upstream.
        if (BufferResponse) headers.Remove(HeaderNames.AcceptEncoding);
        foreach (var (name, value) in SetHeaders)
        {
            if (IsContentHeader(name))
            {
                proxyRequest.Content?.Headers.Remove(name);
                proxyRequest.Content?.Headers.TryAddWithoutValidation(name, value);
            }
            else
            {
                Replace(headers, name, value);
            }
        }
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext context, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        var exchange = context.Features.GetRequiredFeature<Exchange>();
        if (proxyResponse is not null && exchange.MayRetryStatus && ShouldRetry(exchange, (int)proxyResponse.StatusCode))
        {
            // Nothing is copied: YARP drops this response and the gateway sends the request to another target.
            exchange.DiscardedStatus = (int)proxyResponse.StatusCode;
            return false;
        }
        var copyBody = await base.TransformResponseAsync(context, proxyResponse, cancellationToken);
        // The upstream may echo the id back; the client sees exactly one.
        context.Response.Headers[Observability.RequestId.Header] = exchange.RequestId;
        if (proxyResponse is not null && exchange.Script is { } call && call.Route.Scripts is { HasResponsePhase: true } scripts)
        {
            // With inline completions this runs on the socket engine's thread, like the rest of the response.
            if (scripts.Pool.Scripts.Overran) await Task.Yield();
            return await Scripting.ScriptStage.RunResponseAsync(call, scripts, proxyResponse, cancellationToken);
        }
        return copyBody;
    }

    /// <summary>The client's address appended to the X-Forwarded-For it sent; null when the address is unknown.</summary>
    internal static string? ForwardedFor(HttpContext context)
    {
        var clientIp = context.Connection.RemoteIpAddress?.ToString();
        if (clientIp is null) return null;
        var prior = context.Request.Headers[XForwardedFor].ToString();
        return prior.Length == 0 ? clientIp : prior + ", " + clientIp;
    }

    /// <summary>A status the upstream retries on, another target to send to, and room in the retry budget.</summary>
    internal static bool ShouldRetry(Exchange exchange, int status)
    {
        var upstream = exchange.Upstream!;
        return (upstream.Retry.On & RetryPolicy.StatusFlag(status)) != 0
            && upstream.HasOtherUsable(exchange.Target!)
            && upstream.RetryBudget.TryRetry();
    }

    internal const string XForwardedFor = "X-Forwarded-For";
    internal const string XForwardedProto = "X-Forwarded-Proto";
    internal const string XForwardedHost = "X-Forwarded-Host";

    private static void Replace(HttpRequestHeaders headers, string name, string value)
    {
        headers.Remove(name);
        headers.TryAddWithoutValidation(name, value);
    }

    private static bool IsContentHeader(string name) =>
        name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) || name.Equals("Expires", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Last-Modified", StringComparison.OrdinalIgnoreCase) || name.Equals("Allow", StringComparison.OrdinalIgnoreCase);
}
