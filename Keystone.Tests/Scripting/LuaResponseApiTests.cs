using Keystone.Scripting;

namespace Keystone.Tests.Scripting;

/// <summary>What scripts answer with: handler and on_request results, <c>res</c> in on_response, ctx across phases, on_error.</summary>
public sealed class LuaResponseApiTests
{
    private const string InvalidResponse = "script 'script' returned an invalid response: ";

    // ---- handler results ----------------------------------------------------------------------------

    [Fact]
    public void Handler_table_sets_status_headers_and_body()
    {
        var r = ScriptHarness.Create("""
            function handle(req)
              return { status = 201, headers = { ["x-a"] = "1", ["x-n"] = 5, ["x-list"] = { "a", "b" } }, body = "made" }
            end
            """).Run();
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal(201, r.Status);
        Assert.Equal("1", r.ResponseHeader("x-a"));
        Assert.Equal("5", r.ResponseHeader("x-n"));
        Assert.Equal(new[] { "a", "b" }, r.Context.Response.Headers["x-list"].ToArray());
        Assert.Equal("text/plain; charset=utf-8", r.Context.Response.ContentType);
        Assert.Equal("made", r.Body);
    }

    [Fact]
    public void Handler_table_keeps_the_content_type_it_sets()
    {
        var r = ScriptHarness.Create("""function handle(req) return { headers = { ["Content-Type"] = "application/json" }, body = "{}" } end""").Run();
        Assert.Equal("application/json", r.Context.Response.ContentType);
        Assert.Equal("{}", r.Body);
    }

    [Fact]
    public void Handler_empty_table_answers_200_with_an_empty_body()
    {
        var r = ScriptHarness.Create("function handle(req) return {} end").Run();
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal(200, r.Status);
        Assert.Equal("", r.Body);
    }

    [Fact]
    public void Handler_string_answers_200_text_plain()
    {
        var r = ScriptHarness.Create("function handle(req) return 'hello ' .. req.params.id end").Run();
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal(200, r.Status);
        Assert.Equal("text/plain; charset=utf-8", r.Context.Response.ContentType);
        Assert.Equal("hello 7", r.Body);
    }

    [Theory]
    [InlineData("{ status = 199 }", "response status must be an integer from 200 to 599")]
    [InlineData("{ status = 600 }", "response status must be an integer from 200 to 599")]
    [InlineData("{ status = 200.5 }", "response status must be an integer from 200 to 599")]
    [InlineData("{ status = '200' }", "response status must be an integer from 200 to 599")]
    [InlineData("{ body = 5 }", "response body must be a string, not a number")]
    [InlineData("{ body = {} }", "response body must be a string, not a table")]
    [InlineData("{ headers = 'x' }", "response headers must be a table, not a string")]
    [InlineData("{ headers = { ['x-a'] = 'a\\r\\nb' } }", "a header value may not contain CR, LF or NUL")]
    [InlineData("{ headers = { ['x-a'] = { 'ok', 'b\\nc' } } }", "a header value list may only hold strings without CR, LF or NUL")]
    [InlineData("{ headers = { ['x-a'] = true } }", "a header value must be a string, a number, a list of them, or nil (got boolean)")]
    [InlineData("{ headers = { ['bad name'] = 'v' } }", "response header names must be tokens")]
    [InlineData("{ headers = { 'positional' } }", "response header names must be tokens")]
    [InlineData("{ headers = { ['Content-Length'] = '5' } }", "Content-Length is set by Keystone from the body, not by scripts")]
    [InlineData("{ headers = { ['transfer-encoding'] = 'chunked' } }", "transfer-encoding is set by Keystone from the body, not by scripts")]
    [InlineData("42", "a response must be a table, not a number")]
    [InlineData("true", "a response must be a table, not a boolean")]
    [InlineData("nil", "a response must be a table, not a nil")]
    public void Handler_invalid_result_fails_with_the_reason(string result, string reason)
    {
        var r = ScriptHarness.Create("function handle(req) return " + result + " end").Run();
        Assert.Equal(ScriptVerdict.Failed, r.Verdict);
        Assert.Equal(InvalidResponse + reason, r.Failure);
    }

    [Fact]
    public void Handler_error_fails_with_the_first_line_of_the_message()
    {
        var r = ScriptHarness.Create("function handle(req)\n  error('handler broke')\nend").Run();
        Assert.Equal(ScriptVerdict.Failed, r.Verdict);
        Assert.Equal("script 'script' failed: scripts/script.lua:2: handler broke", r.Failure);
    }

    [Fact]
    public void Handler_error_with_a_table_value_is_reported_by_type()
    {
        var r = ScriptHarness.Create("function handle(req) error({ code = 1 }) end").Run();
        Assert.Equal("script 'script' failed: error object is a table value", r.Failure);
    }

    // ---- on_request results -------------------------------------------------------------------------

    [Fact]
    public void On_request_returning_nil_continues()
    {
        var r = ScriptHarness.Create("function on_request(req) end").Run();
        Assert.Equal(ScriptVerdict.Continue, r.Verdict);
        Assert.Null(r.Failure);
    }

    [Fact]
    public void On_request_returning_a_response_table_answers_now()
    {
        var r = ScriptHarness.Create("""
            function on_request(req)
              return { status = 403, headers = { ["x-why"] = "no key" }, body = "forbidden" }
            end
            """).Run();
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal(403, r.Status);
        Assert.Equal("no key", r.ResponseHeader("x-why"));
        Assert.Equal("forbidden", r.Body);
    }

    [Fact]
    public void On_request_returning_something_invalid_fails()
    {
        var r = ScriptHarness.Create("function on_request(req) return 5 end").Run();
        Assert.Equal(ScriptVerdict.Failed, r.Verdict);
        Assert.Equal(InvalidResponse + "a response must be a table, not a number", r.Failure);
    }

    [Fact]
    public void On_error_continue_skips_a_failing_hook()
    {
        var failing = "function on_request(req)\n  error('boom')\nend";
        var strict = ScriptHarness.Create(failing).Run();
        Assert.Equal(ScriptVerdict.Failed, strict.Verdict);
        Assert.Equal("script 'script' failed: scripts/script.lua:2: boom", strict.Failure);

        var lenient = ScriptHarness.Create(failing, continueOnError: true).Run();
        Assert.Equal(ScriptVerdict.Continue, lenient.Verdict);
        Assert.Null(lenient.Failure);
    }

    [Fact]
    public void On_error_continue_skips_an_invalid_response_and_clears_what_it_applied()
    {
        var invalid = "function on_request(req) return { status = 404, headers = { ['x-a'] = 'a\\nb' } } end";
        var r = ScriptHarness.Create(invalid, continueOnError: true).Run();
        Assert.Equal(ScriptVerdict.Continue, r.Verdict);
        Assert.Null(r.Failure);
        Assert.Equal(200, r.Status);

        var strict = ScriptHarness.Create(invalid).Run();
        Assert.Equal(ScriptVerdict.Failed, strict.Verdict);
        Assert.Equal(InvalidResponse + "a header value may not contain CR, LF or NUL", strict.Failure);
    }

    // ---- on_response and res -------------------------------------------------------------------------

    [Fact]
    public void Ctx_set_in_on_request_is_seen_in_on_response()
    {
        var h = ScriptHarness.Create("""
            function on_request(req)
              req.ctx.user = "alice"
              req.ctx.n = 3
              req.ctx.list = { "a", "b" }
              req.ctx.nested = { deep = { ok = true } }
            end
            function on_response(req, res)
              local c = req.ctx
              res.headers["x-ctx"] = c.user .. " " .. c.n .. " " .. math.type(c.n) .. " " .. #c.list .. c.list[2] .. " " .. tostring(c.nested.deep.ok)
            end
            """);
        var r = h.Run();
        Assert.Equal(ScriptVerdict.Continue, r.Verdict);
        var (copy, _) = h.RunResponse(r);
        Assert.True(copy);
        Assert.Equal("alice 3 integer 2b true", r.ResponseHeader("x-ctx"));
    }

    [Fact]
    public void Res_status_is_readable_and_writable()
    {
        var h = ScriptHarness.Create("""
            function on_request(req) end
            function on_response(req, res)
              res.headers["x-upstream-status"] = res.status
              res.status = 418
            end
            """);
        var r = h.Run();
        h.RunResponse(r, status: 502);
        Assert.Equal("502", r.ResponseHeader("x-upstream-status"));
        Assert.Equal(418, r.Status);
    }

    [Theory]
    [InlineData("99")]
    [InlineData("600")]
    [InlineData("200.5")]
    [InlineData("'200'")]
    public void Res_status_refuses_values_outside_100_to_599(string value)
    {
        var h = ScriptHarness.Create(
            "function on_request(req) end\nfunction on_response(req, res)\n  local ok, e = pcall(function() res.status = " + value + " end)\n  res.headers['x-error'] = e\nend");
        var r = h.Run();
        h.RunResponse(r, status: 200);
        Assert.Equal("res.status must be an integer from 100 to 599", LuaScripts.WithoutLocation(r.ResponseHeader("x-error")!));
        Assert.Equal(200, r.Status);
    }

    [Fact]
    public void Res_headers_are_read_set_and_removed()
    {
        var h = ScriptHarness.Create("""
            function on_request(req) end
            function on_response(req, res)
              res.headers["x-seen"] = res.headers["X-UPSTREAM"]
              res.headers["x-upstream"] = nil
              res.headers["x-list"] = { "1", "2" }
            end
            """);
        var r = h.Run();
        r.Context.Response.Headers["X-Upstream"] = "from upstream";
        h.RunResponse(r);
        Assert.Equal("from upstream", r.ResponseHeader("x-seen"));
        Assert.Null(r.ResponseHeader("x-upstream"));
        Assert.Equal(new[] { "1", "2" }, r.Context.Response.Headers["x-list"].ToArray());
    }

    [Theory]
    [InlineData("res.headers['content-length'] = '1'", "content-length is set by Keystone from the body, not by scripts")]
    [InlineData("res.headers['bad name'] = '1'", "a header name must be a token (letters, digits and !#$%&'*+-.^_`|~)")]
    [InlineData("res.headers['x-a'] = 'a\\r\\nb'", "a header value may not contain CR, LF or NUL")]
    [InlineData("res.headers = {}", "res.headers is read-only; assign its fields")]
    [InlineData("res.custom = 1", "res has no field 'custom'")]
    public void Res_refuses_invalid_writes(string statement, string message)
    {
        var h = ScriptHarness.Create(
            "function on_request(req) end\nfunction on_response(req, res)\n  local ok, e = pcall(function() " + statement + " end)\n  res.headers['x-error'] = e\nend");
        var r = h.Run();
        h.RunResponse(r);
        Assert.Equal(message, LuaScripts.WithoutLocation(r.ResponseHeader("x-error")!));
    }

    [Fact]
    public void Res_body_with_buffer_response_is_read_and_rewritten()
    {
        var h = ScriptHarness.Create("""
            function on_request(req) end
            function on_response(req, res)
              res.body = "[" .. res.body .. "]"
            end
            """, bufferResponse: true);
        var r = h.Run();
        var (copy, body) = h.RunResponse(r, body: "upstream body");
        Assert.False(copy);
        Assert.Equal("[upstream body]", body);
    }

    [Fact]
    public void Res_body_without_buffer_response_reads_nil()
    {
        var h = ScriptHarness.Create("function on_request(req) end\nfunction on_response(req, res) res.headers['x-body'] = type(res.body) end");
        var r = h.Run();
        var (copy, _) = h.RunResponse(r);
        Assert.True(copy);
        Assert.Equal("nil", r.ResponseHeader("x-body"));
    }

    [Fact]
    public void Res_body_write_without_buffer_response_fails_the_hook()
    {
        var h = ScriptHarness.Create("""
            function on_request(req) end
            function on_response(req, res)
              res.body = "changed"
            end
            """);
        var r = h.Run();
        var (copy, body) = h.RunResponse(r);
        Assert.False(copy);
        Assert.Equal(500, r.Status);
        Assert.Equal("""{"error":"script \u0027script\u0027 failed: scripts/script.lua:3: res.body needs buffer_response: true on the route","status":500,"request_id":"req-1"}""", body);
    }

    [Fact]
    public void On_response_error_with_on_error_continue_lets_the_upstream_body_through()
    {
        var h = ScriptHarness.Create("function on_request(req) end\nfunction on_response(req, res) error('late') end", continueOnError: true, bufferResponse: true);
        var r = h.Run();
        var (copy, body) = h.RunResponse(r, status: 200, body: "untouched");
        Assert.False(copy);
        Assert.Equal(200, r.Status);
        Assert.Equal("untouched", body);
    }

    [Fact]
    public void On_response_runs_after_a_handler_with_its_status_headers_and_body()
    {
        var r = ScriptHarness.Create("""
            function handle(req) return { status = 201, body = "hi" } end
            function on_response(req, res)
              res.body = res.body .. "! " .. res.status .. " " .. res.headers["content-type"]
              res.status = 202
            end
            """).Run();
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal(202, r.Status);
        Assert.Equal("hi! 201 text/plain; charset=utf-8", r.Body);
    }

    [Fact]
    public void Res_body_write_of_nil_empties_the_body()
    {
        var r = ScriptHarness.Create("function handle(req) return 'text' end\nfunction on_response(req, res) res.body = nil end").Run();
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal("", r.Body);
    }
}
