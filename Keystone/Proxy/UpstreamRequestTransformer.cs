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
    private readonly KeyValuePair<string, string>[] _setHeaders;
    private readonly string[] _removeHeaders;
    private readonly bool _bufferResponse;

    public UpstreamRequestTransformer(KeyValuePair<string, string>[] setHeaders, string[] removeHeaders, bool bufferResponse = false)
    {
        _setHeaders = setHeaders;
        _removeHeaders = removeHeaders;
        _bufferResponse = bufferResponse;
    }

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
        var clientIp = context.Connection.RemoteIpAddress?.ToString();
        var prior = context.Request.Headers[XForwardedFor].ToString();
        headers.Remove(XForwardedFor);
        if (clientIp is not null)
            headers.TryAddWithoutValidation(XForwardedFor, prior.Length == 0 ? clientIp : prior + ", " + clientIp);
        Replace(headers, XForwardedProto, context.Request.Scheme);
        if (context.Request.Host.HasValue) Replace(headers, XForwardedHost, context.Request.Host.Value);
        else headers.Remove(XForwardedHost);
        Replace(headers, Observability.RequestId.Header, forwarding.RequestId);

        // HttpRequestHeaders throws on content header names, so those are edited on the content.
        foreach (var name in _removeHeaders)
        {
            if (IsContentHeader(name)) proxyRequest.Content?.Headers.Remove(name);
            else headers.Remove(name);
        }
        // Scripts see the body as the client will: not compressed by the upstream.
        if (_bufferResponse) headers.Remove(HeaderNames.AcceptEncoding);
        foreach (var (name, value) in _setHeaders)
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

    /// <summary>A status the upstream retries on, another target to send to, and room in the retry budget.</summary>
    private static bool ShouldRetry(Exchange exchange, int status)
    {
        var upstream = exchange.Upstream!;
        return (upstream.Retry.On & RetryPolicy.StatusFlag(status)) != 0
            && upstream.HasOtherUsable(exchange.Target!)
            && upstream.RetryBudget.TryRetry();
    }

    private const string XForwardedFor = "X-Forwarded-For";
    private const string XForwardedProto = "X-Forwarded-Proto";
    private const string XForwardedHost = "X-Forwarded-Host";

    private static void Replace(HttpRequestHeaders headers, string name, string value)
    {
        headers.Remove(name);
        headers.TryAddWithoutValidation(name, value);
    }

    private static bool IsContentHeader(string name) =>
        name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) || name.Equals("Expires", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Last-Modified", StringComparison.OrdinalIgnoreCase) || name.Equals("Allow", StringComparison.OrdinalIgnoreCase);
}
