using Keystone.Configuration;
using Keystone.Scripting;

namespace Keystone.Tests.Scripting;

/// <summary>What a script can reach: its own environment, read-only libraries, its own modules, nothing of other scripts.</summary>
public sealed class LuaSandboxTests
{
    private const string ReadOnly = "attempt to modify a read-only table";

    // ---- isolation between scripts of one set --------------------------------------------------------

    [Fact]
    public void Two_scripts_in_one_set_do_not_see_each_others_globals()
    {
        var set = LuaScripts.CompileSet(
            ("a", """
                secret_a = "A"
                function on_request(req) req.ctx.a_sees = tostring(secret_b) .. "," .. tostring(rawget(_G, "secret_b")) end
                """),
            ("b", """
                secret_b = "B"
                function on_request(req)
                  return { body = tostring(secret_a) .. " " .. req.ctx.a_sees .. " " .. tostring(secret_b) }
                end
                """));
        var (verdict, failure, call) = LuaScripts.RunHooks(set);
        Assert.True(verdict == ScriptVerdict.Answered, failure);
        Assert.Equal("nil nil,nil B", LuaScripts.BodyOf(call));
    }

    [Fact]
    public void A_script_cannot_change_the_string_library_of_another_script_through_pairs()
    {
        var set = LuaScripts.CompileSet(
            ("a", """
                local _, real = pairs(string)
                pcall(function() real.rep = function() return "hacked" end end)
                function on_request(req) end
                """),
            ("b", """
                function on_request(req) return { body = string.rep("ab", 2) .. " " .. ("x"):rep(2) } end
                """));
        var (verdict, failure, call) = LuaScripts.RunHooks(set);
        Assert.True(verdict == ScriptVerdict.Answered, failure);
        Assert.Equal("abab xx", LuaScripts.BodyOf(call));
    }

    [Fact]
    public void A_script_cannot_change_keystone_functions_of_another_script_through_pairs()
    {
        var set = LuaScripts.CompileSet(
            ("a", """
                local _, json = pairs(keystone.json)
                pcall(function() json.encode = function() return "forged" end end)
                function on_request(req) end
                """),
            ("b", """
                function on_request(req) return { body = keystone.json.encode({ 1 }) } end
                """));
        var (verdict, failure, call) = LuaScripts.RunHooks(set);
        Assert.True(verdict == ScriptVerdict.Answered, failure);
        Assert.Equal("[1]", LuaScripts.BodyOf(call));
    }

    [Fact]
    public void Pairs_on_a_library_view_does_not_hand_out_a_writable_library()
    {
        Assert.Equal("'function' 'function' 'ABC'", LuaScripts.Eval("""
            (function()
              local _, t = pairs(string)
              pcall(function() t.upper = 1 end)
              return type(string.upper), type(("x").upper), ("abc"):upper()
            end)()
            """));
    }

    [Fact]
    public void Pairs_on_a_library_view_lists_its_functions()
    {
        Assert.Equal("'clock,date,time'", LuaScripts.Eval("""
            (function()
              local names = {}
              for k in pairs(os) do names[#names + 1] = k end
              table.sort(names)
              return table.concat(names, ",")
            end)()
            """));
    }

    // ---- require ------------------------------------------------------------------------------------

    private static readonly (string, string)[] CounterLib =
    [
        ("counter", "local M = { n = 0 }\nfunction M.bump() M.n = M.n + 1 return M.n end\nreturn M"),
    ];

    [Fact]
    public void Require_gives_each_script_its_own_module_instance()
    {
        var set = LuaScripts.CompileSet(
            [
                ("a", """
                    local c = require("counter")
                    c.bump() c.bump()
                    function on_request(req) req.ctx.a = c.bump() end
                    """),
                ("b", """
                    local c = require("counter")
                    function on_request(req) return { body = req.ctx.a .. " " .. c.bump() .. " " .. tostring(require("counter") == c) } end
                    """),
            ], CounterLib);
        var (verdict, failure, call) = LuaScripts.RunHooks(set);
        Assert.True(verdict == ScriptVerdict.Answered, failure);
        Assert.Equal("3 1 true", LuaScripts.BodyOf(call));
    }

    [Fact]
    public void Require_runs_the_module_in_the_requiring_scripts_environment()
    {
        var libs = new[]
        {
            ("util.greet", "local name = ...\nmodule_global = 42\nreturn function() return greeting .. ' from ' .. name end"),
        };
        var body = LuaScripts.Answer("""
            greeting = "hello"
            local greet = require("util.greet")
            function handle(req) return greet() .. " " .. module_global end
            """, libs: libs);
        Assert.Equal("hello from util.greet 42", body);
    }

    [Fact]
    public void Require_of_a_module_returning_nothing_gives_true()
    {
        Assert.Equal("true", LuaScripts.Answer("function handle(req) return tostring(require('empty')) end", libs: [("empty", "local x = 1")]));
    }

    [Theory]
    [InlineData("'nope'", "module 'nope' not found in scripts/lib")]
    [InlineData("'os'", "module 'os' not found in scripts/lib")]
    [InlineData("'io'", "module 'io' not found in scripts/lib")]
    [InlineData("'debug'", "module 'debug' not found in scripts/lib")]
    [InlineData("'../counter'", "bad module name '../counter'")]
    [InlineData("'a..b'", "bad module name 'a..b'")]
    [InlineData("'counter.'", "bad module name 'counter.'")]
    [InlineData("'/etc/passwd'", "bad module name '/etc/passwd'")]
    [InlineData("5", "bad module name '5'")]
    public void Require_refuses_modules_outside_scripts_lib(string name, string message)
    {
        var body = LuaScripts.Answer("function handle(req) local ok, e = pcall(require, " + name + ") if ok then return 'loaded' end return e end", libs: CounterLib);
        Assert.Equal(message, LuaScripts.WithoutLocation(body));
    }

    [Fact]
    public void Require_of_a_failing_module_fails_again_the_second_time()
    {
        var body = LuaScripts.Answer(LuaScripts.Prelude + """
            function handle(req)
              local ok1, e1 = pcall(require, "broken")
              local ok2, e2 = pcall(require, "broken")
              return show(ok1, e1, ok2, e2)
            end
            """, libs: [("broken", "error('lib broke')")]);
        Assert.Equal("false 'scripts/lib/broken.lua:1: lib broke' false 'scripts/lib/broken.lua:1: lib broke'", body);
    }

    // ---- the environment ------------------------------------------------------------------------------

    [Fact]
    public void Globals_table_is_the_script_environment()
    {
        Assert.Equal("true true 'Lua 5.4' 7", LuaScripts.Eval("_G == _ENV, _G._G == _G, _VERSION, (function() _G.mine = 7 return mine end)()"));
    }

    [Theory]
    [InlineData("io")]
    [InlineData("debug")]
    [InlineData("coroutine")]
    [InlineData("package")]
    [InlineData("load")]
    [InlineData("loadstring")]
    [InlineData("dofile")]
    [InlineData("loadfile")]
    [InlineData("collectgarbage")]
    [InlineData("print")]
    [InlineData("os.execute")]
    [InlineData("os.getenv")]
    [InlineData("os.exit")]
    [InlineData("os.remove")]
    [InlineData("os.rename")]
    [InlineData("os.tmpname")]
    [InlineData("os.setlocale")]
    [InlineData("string.dump")]
    [InlineData("('').dump")]
    public void Unsafe_globals_are_absent(string name) => Assert.Equal("nil", LuaScripts.Eval(name));

    [Fact]
    public void Allowed_functions_are_present()
    {
        Assert.Equal("'function function function function function function function table table table'",
            LuaScripts.Eval("table.concat({ type(os.time), type(os.clock), type(os.date), type(pcall), type(xpcall), type(setmetatable), type(unpack), type(math), type(utf8), type(table) }, ' ')"));
    }

    [Fact]
    public void Metatables_of_strings_libraries_and_req_are_hidden()
    {
        Assert.Equal("false false false false false false",
            LuaScripts.Eval("getmetatable(''), getmetatable(string), getmetatable(keystone), getmetatable(req), getmetatable(req.headers), getmetatable(keystone.json)"));
    }

    [Theory]
    [InlineData("string.x = 1")]
    [InlineData("string.upper = nil")]
    [InlineData("keystone.x = 1")]
    [InlineData("keystone.json.encode = nil")]
    [InlineData("keystone.shared.get = nil")]
    [InlineData("math.pi = 3")]
    [InlineData("table.insert = nil")]
    [InlineData("os.time = nil")]
    [InlineData("utf8.char = nil")]
    [InlineData("rawset(string, 'x', 1)")]
    [InlineData("rawset(keystone, 'x', 1)")]
    public void Library_tables_are_read_only(string statement) => Assert.Equal(ReadOnly, LuaScripts.ErrorOf(statement));

    [Theory]
    [InlineData("setmetatable(string, nil)")]
    [InlineData("setmetatable(keystone, {})")]
    [InlineData("setmetatable(math, { __index = function() return 1 end })")]
    public void Library_metatables_cannot_be_replaced(string statement) =>
        Assert.Equal("cannot change a protected metatable", LuaScripts.ErrorOf(statement));

    [Fact]
    public void String_metatable_cannot_be_reached_to_change_string_methods()
    {
        Assert.Equal("false 'ABC'", LuaScripts.Eval("(function() local ok = pcall(function() getmetatable('').__index = {} end) return ok end)(), ('abc'):upper()"));
    }

    [Fact]
    public void Xpcall_handler_gets_the_error_message()
    {
        var body = LuaScripts.Answer("function handle(req)\n  local ok, m = xpcall(function() error('x') end, function(m) return 'handled: ' .. m end)\n  return tostring(ok) .. ' ' .. m\nend");
        Assert.Equal("false handled: scripts/script.lua:2: x", body);
    }

    [Fact]
    public void Req_kept_past_its_call_cannot_be_used_by_a_later_request()
    {
        var h = ScriptHarness.Create("""
            local saved, saved_headers
            function handle(req)
              if saved then
                local _, e1 = pcall(function() return saved.method end)
                local _, e2 = pcall(function() return saved_headers["host"] end)
                return e1 .. " | " .. e2
              end
              saved, saved_headers = req, req.headers
              return "first"
            end
            """);
        Assert.Equal("first", h.Run().Body);
        Assert.Equal("scripts/script.lua:4: req/res used outside the hook call it was given to | scripts/script.lua:5: headers used outside the hook call they were given to",
            h.Run().Body);
    }

    [Fact]
    public void Req_and_res_cannot_be_iterated_but_their_headers_can()
    {
        var body = LuaScripts.Answer("""
            function handle(req)
              local _, e = pcall(function() for _ in pairs(req) do end end)
              local n = 0
              for _ in pairs(req.headers) do n = n + 1 end
              return e .. " | " .. n .. " | " .. type(req) .. " | " .. tostring(getmetatable(req)) .. " | " .. tostring(req == req)
            end
            """);
        Assert.Equal("req and res cannot be iterated; their headers can | 1 | userdata | false | true", body);
    }

    // ---- load errors -----------------------------------------------------------------------------------

    [Fact]
    public void Syntax_error_is_reported_with_file_and_line()
    {
        var errors = new List<ConfigError>();
        Assert.Null(ScriptHarness.TryCompile("function on_request(", errors));
        var error = Assert.Single(errors);
        Assert.Equal(new SourceLocation("scripts/script.lua", 1, 1), error.Location);
        Assert.Equal("scripts/script.lua:1:1: scripts/script.lua:1: <name> or '...' expected near <eof>", error.ToString());
    }

    [Fact]
    public void Syntax_error_on_a_later_line_names_that_line()
    {
        var errors = new List<ConfigError>();
        Assert.Null(ScriptHarness.TryCompile("local a = 1\nlocal b = 2\nif a then\n", errors));
        var error = Assert.Single(errors);
        Assert.Equal(new SourceLocation("scripts/script.lua", 4, 1), error.Location);
        Assert.Equal("scripts/script.lua:4: 'end' expected (to close 'if' at line 3) near <eof>", error.Message);
    }

    [Fact]
    public void Runtime_error_at_top_level_is_reported_with_file_and_line()
    {
        var errors = new List<ConfigError>();
        Assert.Null(ScriptHarness.TryCompile("local x = nil\nx.y = 1\nfunction handle(req) return 'x' end", errors));
        var error = Assert.Single(errors);
        Assert.Equal(new SourceLocation("scripts/script.lua", 2, 1), error.Location);
        Assert.Equal("scripts/script.lua:2: attempt to index a nil value (local 'x')", error.Message.Split('\n')[0]);
    }

    [Fact]
    public void Top_level_call_of_an_absent_global_is_a_load_error()
    {
        var errors = new List<ConfigError>();
        Assert.Null(ScriptHarness.TryCompile("os.execute('true')", errors));
        Assert.Equal("scripts/script.lua:1: attempt to call a nil value (field 'execute')", Assert.Single(errors).Message.Split('\n')[0]);
    }
}
