using Keystone.Scripting;
using Microsoft.Extensions.Primitives;

namespace Keystone.Tests.Scripting;

/// <summary>Every field of <c>req</c>: what a script reads, what it may write, and what it is refused.</summary>
public sealed class LuaRequestApiTests
{
    /// <summary>Runs <c>on_request</c> (a proxied route, upstream "main") answering with the shown values of <paramref name="expressions"/>.</summary>
    private static string HookEval(string expressions, string statements = "")
    {
        var h = ScriptHarness.Create(LuaScripts.Prelude + "function on_request(req)\n" + statements + "\n  return { body = show(" + expressions + ") }\nend\n");
        var r = h.Run();
        Assert.True(r.Verdict == ScriptVerdict.Answered, r.Failure);
        return r.Body;
    }

    /// <summary>Runs an <c>on_request</c> hook made of <paramref name="statements"/> and returns the result, which must be Continue.</summary>
    private static RunResult Hook(string statements, Microsoft.AspNetCore.Http.DefaultHttpContext? request = null)
    {
        var h = ScriptHarness.Create("function on_request(req)\n" + statements + "\nend\n");
        var r = h.Run(request);
        Assert.True(r.Verdict == ScriptVerdict.Continue, r.Failure);
        return r;
    }

    // ---- reads ----------------------------------------------------------------------------------

    [Fact]
    public void Req_exposes_method_path_host_scheme_client_ip_id_and_route()
    {
        var request = ScriptHarness.Request("PATCH", "/items/9/x");
        request.Request.Scheme = "https";
        request.Connection.RemoteIpAddress = System.Net.IPAddress.Parse("10.1.2.3");
        Assert.Equal("'PATCH' '/items/9/x' 'example.test' 'https' '10.1.2.3' 'req-1' 'test-route'",
            LuaScripts.Eval("req.method, req.path, req.host, req.scheme, req.client_ip, req.id, req.route", request));
    }

    [Fact]
    public void Req_client_ip_of_an_ipv4_client_on_a_dual_mode_socket_is_plain_ipv4()
    {
        var request = ScriptHarness.Request();
        request.Connection.RemoteIpAddress = System.Net.IPAddress.Parse("::ffff:10.1.2.3");
        Assert.Equal("'10.1.2.3'", LuaScripts.Eval("req.client_ip", request));
        request = ScriptHarness.Request();
        request.Connection.RemoteIpAddress = System.Net.IPAddress.Parse("2001:db8::1");
        Assert.Equal("'2001:db8::1'", LuaScripts.Eval("req.client_ip", request));
    }

    [Fact]
    public void Req_query_gives_single_values_as_strings_and_repeated_keys_as_arrays()
    {
        Assert.Equal("'1' 'table' '2' '3' 2 nil",
            LuaScripts.Eval("req.query.x, type(req.query.y), req.query.y[1], req.query.y[2], #req.query.y, req.query.missing"));
    }

    [Fact]
    public void Req_query_is_percent_decoded_and_a_bare_key_is_an_empty_string()
    {
        var request = ScriptHarness.Request(query: "?name=a%20b&flag");
        Assert.Equal("'a b' '' 'name=a%20b&flag'", LuaScripts.Eval("req.query.name, req.query.flag, req.query_string", request));
    }

    [Fact]
    public void Req_query_string_is_the_raw_query_without_question_mark()
    {
        Assert.Equal("'x=1&y=2&y=3'", LuaScripts.Eval("req.query_string"));
        Assert.Equal("'' nil", LuaScripts.Eval("req.query_string, next(req.query)", ScriptHarness.Request(query: "")));
    }

    [Fact]
    public void Req_params_holds_route_parameters_including_the_catch_all()
    {
        Assert.Equal("'7' 'a/b'", LuaScripts.Eval("req.params.id, req.params.rest"));
        Assert.Equal("'42' 'x/y/z' 2", LuaScripts.Eval(
            "req.params.id, req.params.rest, (function() local n = 0 for _ in pairs(req.params) do n = n + 1 end return n end)()",
            ScriptHarness.Request(path: "/items/42/x/y/z")));
    }

    [Fact]
    public void Req_headers_are_read_case_insensitively()
    {
        var request = ScriptHarness.Request(headers: new() { ["X-Token"] = "abc" });
        Assert.Equal("'abc' 'abc' 'abc' nil",
            LuaScripts.Eval("req.headers['x-token'], req.headers['X-TOKEN'], req.headers['X-Token'], req.headers['x-missing']", request));
    }

    [Fact]
    public void Req_headers_with_several_values_read_as_one_comma_joined_string()
    {
        var request = ScriptHarness.Request();
        request.Request.Headers["X-Multi"] = new StringValues(["a", "b", "c"]);
        Assert.Equal("'a, b, c'", LuaScripts.Eval("req.headers['x-multi']", request));
    }

    [Fact]
    public void Pairs_over_req_headers_lists_lowercase_names_with_joined_values()
    {
        var request = ScriptHarness.Request(headers: new() { ["X-One"] = "1", ["X-Two"] = "2" });
        request.Request.Headers["X-Multi"] = new StringValues(["a", "b"]);
        var listed = LuaScripts.Answer("""
            function handle(req)
              local names = {}
              for name, value in pairs(req.headers) do names[#names + 1] = name .. "=" .. value end
              table.sort(names)
              return table.concat(names, ";")
            end
            """, request);
        Assert.Equal("host=example.test:8080;x-multi=a, b;x-one=1;x-two=2", listed);
    }

    [Fact]
    public void Req_headers_read_with_a_non_string_key_is_nil() => Assert.Equal("nil", LuaScripts.Eval("req.headers[1]"));

    [Fact]
    public void Req_body_is_the_buffered_request_body()
    {
        Assert.Equal("'POST' 'payload bytes'", LuaScripts.Eval("req.method, req.body", ScriptHarness.Request("POST", body: "payload bytes")));
        Assert.Equal("''", LuaScripts.Eval("req.body"));
    }

    [Fact]
    public void Req_body_over_max_body_raises_when_read()
    {
        var request = ScriptHarness.Request("POST", body: "0123456789abcdef");
        Assert.Equal("the request body is larger than lua.max_body", LuaScripts.ErrorOf("return req.body", request, maxBody: 8));
    }

    [Fact]
    public void Req_upstream_names_the_route_upstream() => Assert.Equal("'main'", HookEval("req.upstream"));

    [Fact]
    public void Req_upstream_is_nil_on_a_handler_route() => Assert.Equal("nil", LuaScripts.Eval("req.upstream"));

    [Fact]
    public void Req_ctx_is_one_table_for_the_whole_call()
    {
        Assert.Equal("'table' true 'kept'", LuaScripts.Eval("type(req.ctx), rawequal(req.ctx, req.ctx), (function() req.ctx.v = 'kept' return req.ctx.v end)()"));
    }

    [Fact]
    public void Req_unknown_field_reads_as_nil() => Assert.Equal("nil", LuaScripts.Eval("req.nonexistent"));

    // ---- writes: path ---------------------------------------------------------------------------

    [Fact]
    public void Req_path_write_is_sent_upstream_and_read_back()
    {
        var r = Hook("req.path = '/v2/items/7'\nreq.ctx.seen = req.path");
        Assert.Equal("/v2/items/7", r.Call.Path);
        Assert.Equal("/v2/items/7", r.Call.EffectivePath);
        Assert.Equal("'/v2/items/7' '7'", HookEval("req.path, req.params.id", "req.path = '/v2/items/7'"));
    }

    [Fact]
    public void Req_path_accepts_dots_inside_segments()
    {
        Assert.Equal("/a..b/c.d/.well-known/x.", Hook("req.path = '/a..b/c.d/.well-known/x.'").Call.Path);
    }

    [Theory]
    [InlineData("'relative/path'", "req.path must start with '/'")]
    [InlineData("''", "req.path must start with '/'")]
    [InlineData("'/a b'", "req.path may only hold visible ASCII characters without '?' or '#' (set req.query_string for the query)")]
    [InlineData("'/a\\tb'", "req.path may only hold visible ASCII characters without '?' or '#' (set req.query_string for the query)")]
    [InlineData("'/a?b=1'", "req.path may only hold visible ASCII characters without '?' or '#' (set req.query_string for the query)")]
    [InlineData("'/a#frag'", "req.path may only hold visible ASCII characters without '?' or '#' (set req.query_string for the query)")]
    [InlineData("'/caf\\195\\169'", "req.path may only hold visible ASCII characters without '?' or '#' (set req.query_string for the query)")]
    [InlineData("'/a\\r\\nX: y'", "req.path may only hold visible ASCII characters without '?' or '#' (set req.query_string for the query)")]
    [InlineData("'/a/../b'", "req.path may not contain dot segments")]
    [InlineData("'/a/..'", "req.path may not contain dot segments")]
    [InlineData("'/..'", "req.path may not contain dot segments")]
    [InlineData("'/./a'", "req.path may not contain dot segments")]
    [InlineData("'/a/.'", "req.path may not contain dot segments")]
    [InlineData("'/a/%2e%2e/b'", "req.path may not contain dot segments")]
    [InlineData("'/a/%2E./b'", "req.path may not contain dot segments")]
    [InlineData("5", "req.path must be a string")]
    [InlineData("nil", "req.path must be a string")]
    public void Req_path_rejects_invalid_shapes(string value, string message)
    {
        Assert.Equal(message, LuaScripts.ErrorOf("req.path = " + value));
    }

    [Fact]
    public void Req_path_rejects_dot_segments_and_leaves_the_path_unchanged()
    {
        var h = ScriptHarness.Create("function on_request(req) pcall(function() req.path = '/a/../admin' end) end");
        var r = h.Run();
        Assert.Equal(ScriptVerdict.Continue, r.Verdict);
        Assert.Null(r.Call.Path);
        Assert.Equal("/items/7/a/b", r.Call.EffectivePath);
    }

    // ---- writes: query_string, body, upstream -----------------------------------------------------

    [Fact]
    public void Req_query_string_write_replaces_the_query_and_req_query()
    {
        Assert.Equal("k=1&k=2", Hook("req.query_string = 'k=1&k=2'").Call.QueryString);
        Assert.Equal("'k=1&k=2' '1' '2' nil", HookEval("req.query_string, req.query.k[1], req.query.k[2], req.query.x", "req.query_string = 'k=1&k=2'"));
    }

    [Fact]
    public void Req_query_string_write_drops_a_leading_question_mark_and_accepts_numbers_and_empty()
    {
        Assert.Equal("a=1", Hook("req.query_string = '?a=1'").Call.QueryString);
        Assert.Equal("5", Hook("req.query_string = 5").Call.QueryString);
        Assert.Equal("", Hook("req.query_string = ''").Call.QueryString);
    }

    [Theory]
    [InlineData("'a b'", "req.query_string may only hold visible ASCII characters without '#'")]
    [InlineData("'a=1#x'", "req.query_string may only hold visible ASCII characters without '#'")]
    [InlineData("'a=\\r\\n'", "req.query_string may only hold visible ASCII characters without '#'")]
    [InlineData("{}", "req.query_string must be a string")]
    public void Req_query_string_rejects_invalid_values(string value, string message)
    {
        Assert.Equal(message, LuaScripts.ErrorOf("req.query_string = " + value));
    }

    [Fact]
    public void Req_body_write_replaces_the_body_sent_upstream()
    {
        var r = Hook("req.body = req.body .. '!'", ScriptHarness.Request("POST", body: "data"));
        Assert.True(r.Call.BodyChanged);
        Assert.Equal("data!", System.Text.Encoding.UTF8.GetString(r.Call.Body!.Value.Span));
        Assert.Equal("'new body'", HookEval("req.body", "req.body = 'new body'"));
    }

    [Fact]
    public void Req_body_write_of_nil_empties_the_body()
    {
        var r = Hook("req.body = nil", ScriptHarness.Request("POST", body: "data"));
        Assert.True(r.Call.BodyChanged);
        Assert.Equal(0, r.Call.Body!.Value.Length);
    }

    [Fact]
    public void Req_body_write_refuses_non_strings() => Assert.Equal("req.body must be a string", LuaScripts.ErrorOf("req.body = 5"));

    [Fact]
    public void Req_upstream_write_picks_another_configured_upstream()
    {
        var r = Hook("req.upstream = 'canary'");
        Assert.Equal("canary", r.Call.Upstream?.Name);
        Assert.Equal("canary", r.Call.EffectiveUpstream?.Name);
        Assert.Equal("'canary'", HookEval("req.upstream", "req.upstream = 'canary'"));
    }

    [Fact]
    public void Req_upstream_write_refuses_an_unknown_name()
    {
        Assert.Equal("req.upstream: no upstream named 'nope' is configured", LuaScripts.ErrorOf("req.upstream = 'nope'"));
        Assert.Equal("req.upstream must be the name of an upstream", LuaScripts.ErrorOf("req.upstream = 1"));
    }

    // ---- writes: headers --------------------------------------------------------------------------

    [Fact]
    public void Req_headers_set_overwrite_and_remove_reach_the_request()
    {
        var request = ScriptHarness.Request(headers: new() { ["X-Old"] = "old", ["X-Remove"] = "bye" });
        var r = Hook("req.headers['X-Added'] = 'v'\nreq.headers['x-old'] = 'new'\nreq.headers['X-Remove'] = nil\nreq.headers['X-Num'] = 42", request);
        Assert.Equal("v", r.RequestHeader("X-Added"));
        Assert.Equal("new", r.RequestHeader("X-Old"));
        Assert.Null(r.RequestHeader("X-Remove"));
        Assert.Equal("42", r.RequestHeader("X-Num"));
    }

    [Fact]
    public void Req_headers_set_to_a_list_sends_several_values()
    {
        var r = Hook("req.headers['X-Multi'] = { 'a', 'b' }");
        Assert.Equal(new[] { "a", "b" }, r.Context.Request.Headers["X-Multi"].ToArray());
        Assert.Equal("'a, b'", HookEval("req.headers['x-multi']", "req.headers['X-Multi'] = { 'a', 'b' }"));
    }

    [Theory]
    [InlineData("'bad name'")]
    [InlineData("'x:y'")]
    [InlineData("''")]
    [InlineData("'caf\\195\\169'")]
    [InlineData("1")]
    public void Req_headers_refuse_a_name_that_is_not_a_token(string name)
    {
        Assert.Equal("a header name must be a token (letters, digits and !#$%&'*+-.^_`|~)", LuaScripts.ErrorOf("req.headers[" + name + "] = 'v'"));
    }

    [Theory]
    [InlineData("'a\\r\\nX-Evil: 1'")]
    [InlineData("'a\\nb'")]
    [InlineData("'a\\0b'")]
    public void Req_headers_refuse_a_value_with_CR_LF_or_NUL(string value)
    {
        Assert.Equal("a header value may not contain CR, LF or NUL", LuaScripts.ErrorOf("req.headers['x-a'] = " + value));
        Assert.Equal("a header value list may only hold strings without CR, LF or NUL", LuaScripts.ErrorOf("req.headers['x-a'] = { 'ok', " + value + " }"));
    }

    [Fact]
    public void Req_headers_refuse_a_value_of_another_type()
    {
        Assert.Equal("a header value must be a string, a number, a list of them, or nil (got boolean)", LuaScripts.ErrorOf("req.headers['x-a'] = true"));
    }

    [Theory]
    [InlineData("Content-Length")]
    [InlineData("content-length")]
    [InlineData("Transfer-Encoding")]
    public void Req_headers_refuse_framing_headers(string name)
    {
        Assert.Equal(name + " is set by Keystone from the body, not by scripts", LuaScripts.ErrorOf("req.headers['" + name + "'] = '5'"));
    }

    [Fact]
    public void Req_header_write_that_fails_changes_nothing()
    {
        var h = ScriptHarness.Create("function on_request(req) pcall(function() req.headers['x-a'] = 'a\\r\\nb' end) end");
        Assert.Null(h.Run().RequestHeader("x-a"));
    }

    // ---- read-only and unknown fields ---------------------------------------------------------------

    [Theory]
    [InlineData("method")]
    [InlineData("query")]
    [InlineData("host")]
    [InlineData("scheme")]
    [InlineData("client_ip")]
    [InlineData("id")]
    [InlineData("route")]
    [InlineData("params")]
    [InlineData("headers")]
    [InlineData("ctx")]
    public void Req_read_only_fields_raise_when_written(string field)
    {
        Assert.Equal($"req.{field} is read-only", LuaScripts.ErrorOf($"req.{field} = 'x'"));
    }

    [Fact]
    public void Req_unknown_field_write_points_to_ctx()
    {
        Assert.Equal("req has no field 'user' (use req.ctx for your own values)", LuaScripts.ErrorOf("req.user = 'alice'"));
    }

    [Fact]
    public void Req_read_only_write_fails_the_hook_with_the_message()
    {
        var h = ScriptHarness.Create("function on_request(req)\n  req.method = 'POST'\nend");
        var r = h.Run();
        Assert.Equal(ScriptVerdict.Failed, r.Verdict);
        Assert.Equal("script 'script' failed: scripts/script.lua:2: req.method is read-only", r.Failure);
        Assert.Equal("GET", r.Context.Request.Method);
    }
}
