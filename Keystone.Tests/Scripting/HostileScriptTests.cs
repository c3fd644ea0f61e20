using System.Diagnostics;
using System.Runtime.CompilerServices;
using Keystone.Configuration;
using Keystone.Scripting;
using Xunit.Abstractions;

namespace Keystone.Tests.Scripting;

/// <summary>
/// Hostile scripts, each trying one thing: burning CPU, memory or one long C call, escaping the sandbox,
/// or crashing the host. Every one must fail with the right reason, close to the budget, and leave the
/// pool answering the very next request. Each attack runs only when the request carries x-attack, so the
/// same script proves, without the header, that the harness still serves.
/// </summary>
[Collection(HostileScriptCollection.Name)]
public sealed class HostileScriptTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Budget = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan CaseLimit = Budget + TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MedianLimit = Budget + TimeSpan.FromMilliseconds(5);
    private const int LiveStateBound = 50;

    private const string Loop = "function() while true do end end";

    /// <summary>A kilobyte and a megabyte built in few C steps: string.rep costs one copy per repetition, so 'x' * 1M is itself slow.</summary>
    private const string KB = "string.rep('x', 1024)";
    private const string MB = "string.rep(string.rep('x', 1024), 1024)";

    /// <summary>
    /// Name, the attack (the body of <c>if req.headers["x-attack"] then ... end</c>), and the failure kind it must end
    /// with. "a|b" where either defence may rightly fire first: on this box filling 4 MB takes about as long as the
    /// 1 ms budget, and building a string past a 1 MB limit nearly so.
    /// </summary>
    public static TheoryData<string, string, string> Cases => new()
    {
        // ---- CPU ----
        { "cpu_while_true", "while true do end", "budget" },
        { "cpu_numeric_for_1e12", "for i = 1, 1e12 do end", "budget" },
        { "cpu_exponential_recursion", "local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end fib(60)", "budget" },
        { "cpu_endless_tail_recursion", "local function f(n) return f(n + 1) end f(1)", "budget" },
        { "cpu_coroutine_absent", $"coroutine.wrap({Loop})()", "error" },
        { "cpu_pcall_swallows_budget_in_loop", "while true do pcall(function() while true do end end) end", "budget" },
        { "cpu_xpcall_looping_handler", $"xpcall(function() error('x') end, {Loop})", "budget" },
        { "cpu_xpcall_looping_body_and_handler", $"while true do xpcall({Loop}, {Loop}) end", "budget" },
        { "cpu_close_loops_on_scope_exit", $"do local x <close> = setmetatable({{}}, {{ __close = {Loop} }}) end", "budget" },
        { "cpu_close_loops_while_unwinding_error", $"local x <close> = setmetatable({{}}, {{ __close = {Loop} }}) error('boom')", "budget" },
        { "cpu_index_metamethod_loops", $"local t = setmetatable({{}}, {{ __index = {Loop} }}) local _ = t.x", "budget" },
        { "cpu_tostring_metamethod_loops", $"tostring(setmetatable({{}}, {{ __tostring = {Loop} }}))", "budget" },
        { "cpu_eq_metamethod_loops", $"local mt = {{ __eq = {Loop} }} local _ = setmetatable({{}}, mt) == setmetatable({{}}, mt)", "budget" },
        { "cpu_lt_metamethod_loops", $"local mt = {{ __lt = {Loop} }} local _ = setmetatable({{}}, mt) < setmetatable({{}}, mt)", "budget" },
        { "cpu_concat_metamethod_loops", $"local _ = setmetatable({{}}, {{ __concat = {Loop} }}) .. 'x'", "budget" },
        { "cpu_sort_looping_comparator", $"table.sort({{3, 2, 1}}, {Loop})", "budget" },
        { "cpu_gsub_looping_replacement", $"string.gsub('abc', '.', {Loop})", "budget" },
        { "cpu_format_s_calls_looping_tostring", $"string.format('%s', setmetatable({{}}, {{ __tostring = {Loop} }}))", "budget" },

        // ---- memory ----
        { "mem_string_rep_over_cap", $"local s = string.rep({MB}, 4)", "memory" },
        { "mem_string_rep_1e9", "string.rep('x', 1e9)", "error" },
        { "mem_string_doubling_loop", $"local s = {MB} while true do s = s .. s end", "memory" },
        { "mem_big_pieces_in_table_loop", $"local t = {{}} while true do t[#t + 1] = string.rep({KB}, 100) .. #t end", "memory|budget" },
        { "mem_table_growth_loop", "local t, i = {}, 0 while true do i = i + 1 t[i] = i end", "memory|budget" },
        { "mem_table_concat_huge", $"local m = {MB} local s = table.concat({{ m, m, m, m, m }})", "memory|budget" },
        { "mem_table_move_doubling", "local t = {} for i = 1, 4096 do t[i] = i end while true do table.move(t, 1, #t, #t + 1) end", "memory|budget" },
        { "mem_utf8_char_flood", "local cps = {} for i = 1, 7999 do cps[i] = 0x7FFFFFFF end local c = string.rep(utf8.char(table.unpack(cps)), 20) local t = {} while true do t[#t + 1] = c .. #t end", "memory|budget" },
        { "mem_pcall_swallows_memory_in_loop", $"local s = string.rep({MB}, 3) while true do pcall(function() return s .. s end) end", "budget|memory" },

        // ---- long single C calls ----
        { "c_find_lazy_dots", "string.find(string.rep('a', 5000), '.-.-.-.-b')", "budget" },
        { "c_match_backreference", "('a'):rep(20000):match('(.-)%1b')", "budget" },
        { "c_gmatch_heavy_pattern", "for _ in string.rep('a', 5000):gmatch('.-.-.-b') do end", "budget" },
        { "c_gsub_heavy_pattern", "string.gsub(string.rep('a', 5000), '.-.-.-.-b', '')", "budget" },
        { "c_rep_empty_string_1e9", "string.rep('', 1e9)", "error" },
        { "c_unpack_1e7", "table.unpack({}, 1, 1e7)", "error" },
        { "c_byte_ten_kilobytes", $"string.byte(string.rep({KB}, 10), 1, -1)", "error" },
        { "c_format_huge_width", "string.format('%99999d', 1)", "error" },
        { "c_pack_huge_format", "string.pack(string.rep('i16', 1000), 1)", "error" },
        { "c_pack_huge_padding", "string.pack('c2000000000', '')", "memory" },
        { "c_utf8_len_large", $"utf8.len({MB} .. 'x')", "error|budget" },
        { "c_rep_one_byte_four_million_times", "local a = string.rep('x', 4 * 1024 * 1024) local b = a .. a", "memory|budget" },
        // 8 MB: refused by the sandbox's size check before any work, whatever the timing (4 MB passed it, fitted in
        // the memory cap and took 0.9-3 ms to build: sometimes inside the 1 ms budget, so sometimes answered).
        { "c_rep_empty_string_with_separator", "string.rep('', 8 * 1024 * 1024, 'x')", "error" },
        { "c_format_q_control_characters", $"string.format('%q', string.rep(string.rep('\\0', 1024), 1024))", "error|budget" },
        { "c_sort_long_equal_strings", $"local s = string.rep({KB}, 256) local t = {{}} for i = 1, 2048 do t[i] = s end table.sort(t)", "budget" },
        { "c_json_encode_shared_subtable_blowup", "local t = { 'xxxxxxxx' } for i = 1, 24 do t = { t, t } end keystone.json.encode(t)", "error|budget" },
        { "c_json_decode_many_tables", "local s = '[' .. string.rep(string.rep('[],', 1000), 300) .. '[]]' keystone.json.decode(s)", "memory|budget" },

        // ---- escapes ----
        { "esc_os_execute", "os.execute('echo pwned')", "error" },
        { "esc_io_open", "io.open('/etc/passwd')", "error" },
        { "esc_debug_getinfo", "debug.getinfo(1)", "error" },
        { "esc_load", "load('return 1')()", "error" },
        { "esc_loadstring", "loadstring('return 1')()", "error" },
        { "esc_dofile", "dofile('/etc/passwd')", "error" },
        { "esc_loadfile", "loadfile('/etc/passwd')()", "error" },
        { "esc_require_os", "require('os')", "error" },
        { "esc_require_parent_path", "require('../x')", "error" },
        { "esc_string_dump", "string.dump(on_request)", "error" },
        { "esc_bytecode_literal", "local f = load('\\27LuaT\\0\\25\\147\\r\\n\\26\\n') f()", "error" },
        { "esc_luanet", "luanet.load_assembly('System')", "error" },
        { "esc_import", "import('System')", "error" },
        { "esc_package_loadlib", "package.loadlib('libc.so.6', 'system')", "error" },
        { "esc_string_metatable", "getmetatable('').__index = {}", "error" },
        { "esc_G_string_rep_nil", "_G.string.rep = nil", "error" },
        { "esc_ENV_nil_then_global", "_ENV = nil local _ = string.rep", "error" },
        { "esc_getmetatable_req", "getmetatable(req).__index = function() return 'x' end", "error" },
        { "esc_rawset_req", "rawset(req, 'method', 'x')", "error" },
        { "esc_rawset_keystone", "rawset(keystone, 'log', function() end)", "error" },
        { "esc_setmetatable_keystone", "setmetatable(keystone, {})", "error" },
        { "esc_keystone_shared_nil", "keystone.shared = nil", "error" },
        { "esc_pairs_leaks_real_string_table", "local _, real = pairs(string) real.rep = nil", "error" },
        { "esc_pairs_leaks_real_json_table", "local _, real = pairs(keystone.json) real.encode = nil", "error" },

        // ---- crashes ----
        { "crash_error_object_looping_tostring", $"error(setmetatable({{}}, {{ __tostring = {Loop} }}))", "error" },
        { "crash_error_nil", "error(nil)", "error" },
        { "crash_error_inside_index", "local t = setmetatable({}, { __index = function() error('boom') end }) local _ = t.x", "error" },
        { "crash_stack_overflow_recursion", "local function f() return 1 + f() end f()", "memory|error|budget" },
        { "crash_json_encode_deep_constructor", $"keystone.json.encode({new string('{', 150)}{new string('}', 150)})", "error" },
        { "crash_json_encode_cycle", "local t = {} t[1] = t keystone.json.encode(t)", "error" },
        { "crash_response_non_string_header_keys", "return { status = 200, headers = { [1] = 'x', [true] = 'y' } }", "error" },
        { "crash_response_status_with_metatable", $"return {{ status = setmetatable({{}}, {{ __index = {Loop}, __tostring = {Loop} }}) }}", "error" },
        { "crash_response_body_with_metatable", $"return {{ body = setmetatable({{}}, {{ __tostring = {Loop}, __concat = {Loop} }}) }}", "error" },
    };

    private static string Hostile(string attack) => $$"""
        function on_request(req)
          if req.headers["x-attack"] then
            {{attack}}
          end
        end
        function handle(req) return { status = 200, body = "ok" } end
        """;

    private static Microsoft.AspNetCore.Http.DefaultHttpContext Attack() =>
        ScriptHarness.Request(headers: new() { ["x-attack"] = "1" });

    [Theory]
    [MemberData(nameof(Cases))]
    public void Hostile_script_fails_with_its_reason_within_budget_and_pool_still_serves(string name, string attack, string kind)
    {
        for (int attempt = 1; ; attempt++)
        {
            var h = ScriptHarness.Create(Hostile(attack), budget: Budget);
            AssertServes(h, "before");
            var r = h.Run(Attack());
            output.WriteLine($"{name}: {r.Verdict} in {r.Elapsed.TotalMilliseconds:F2} ms: {r.Failure}");
            // A 1 ms wall-clock budget on a loaded 2-core box: a stall turns a 50 µs call into a budget failure. Only a
            // repeated one counts against a case that does not expect the budget.
            if (attempt < 3 && r.Verdict == ScriptVerdict.Failed && IsStall(kind, r))
            {
                output.WriteLine($"{name}: attempt {attempt} hit the budget instead of {kind}; retrying");
                continue;
            }

            Assert.Equal(ScriptVerdict.Failed, r.Verdict);
            AssertReason(kind, r.Failure);
            Assert.True(r.Elapsed <= CaseLimit, $"{name} took {r.Elapsed.TotalMilliseconds:F1} ms (limit {CaseLimit.TotalMilliseconds} ms)");
            AssertServes(h, "after");
            return;
        }
    }

    private static bool IsStall(string kind, RunResult r) =>
        !kind.Contains("budget") && r.Failure is { } f && f.Contains("exceeded its time budget") && r.Elapsed < CaseLimit;

    /// <summary>The whole suite once more, one case after another, for the median and the state leak check.</summary>
    [Fact]
    public void Suite_median_stays_within_budget_plus_5ms_and_states_do_not_leak()
    {
        var times = new List<(string Name, double Ms)>();
        foreach (var row in Cases) times.Add(((string)row[0], RunOnce((string)row[1], (string)row[0])));
        var sorted = times.OrderBy(t => t.Ms).ToArray();
        double median = sorted[sorted.Length / 2].Ms;
        foreach (var (name, ms) in sorted.Reverse().Take(10)) output.WriteLine($"{ms,9:F2} ms  {name}");
        output.WriteLine($"cases {sorted.Length}, median {median:F2} ms, max {sorted[^1].Ms:F2} ms ({sorted[^1].Name})");

        Assert.True(median <= MedianLimit.TotalMilliseconds, $"median {median:F2} ms");
        Assert.True(CollectWithin(TimeSpan.FromSeconds(10)), "the .NET finalizer thread is stuck");
        output.WriteLine($"Lua states open after the suite: {LuaState.Live}");
        Assert.True(LuaState.Live < LiveStateBound, $"{LuaState.Live} Lua states are still open");
    }

    /// <summary>Kept out of line so that no harness of the loop is still reachable when the test counts open states.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static double RunOnce(string attack, string name)
    {
        var h = ScriptHarness.Create(Hostile(attack), budget: Budget);
        AssertServes(h, "before");
        var r = h.Run(Attack());
        AssertServes(h, $"after {name}");
        return r.Elapsed.TotalMilliseconds;
    }

    // ---- cases that need their own assertions ----

    [Fact]
    public void A_large_string_rep_that_ends_past_the_deadline_fails_the_call_even_inside_pcall()
    {
        // A budget of 100 ns: building a megabyte always ends past it, long before the watchdog could look.
        var h = ScriptHarness.Create("""
            function handle(req)
              local ok = pcall(string.rep, "ab", 512 * 1024)
              return "caught: " .. tostring(ok)
            end
            """, budget: TimeSpan.FromTicks(1));

        var r = h.Run();

        Assert.Equal(ScriptVerdict.Failed, r.Verdict);
        Assert.Contains("budget", r.Failure);
    }

    [Fact]
    public void A_set_is_marked_overran_by_a_budget_failure_and_by_nothing_else()
    {
        var harness = ScriptHarness.Create("""
            function on_request(req)
              if req.headers["x-attack"] == "loop" then while true do end end
              if req.headers["x-attack"] == "error" then error("plain failure") end
            end
            """, budget: Budget);
        Assert.Equal(ScriptVerdict.Continue, harness.Run().Verdict);
        Assert.Equal(ScriptVerdict.Failed, harness.Run(ScriptHarness.Request(headers: new() { ["x-attack"] = "error" })).Verdict);
        Assert.False(harness.Set.Overran);

        var overrun = harness.Run(ScriptHarness.Request(headers: new() { ["x-attack"] = "loop" }));

        Assert.Equal(ScriptVerdict.Failed, overrun.Verdict);
        Assert.Contains("budget", overrun.Failure);
        Assert.True(harness.Set.Overran);
        Assert.Equal(ScriptVerdict.Continue, harness.Run().Verdict);
    }

    [Fact]
    public void A_loop_is_stopped_on_budget_when_the_idle_watchdog_had_stopped_ticking()
    {
        var h = ScriptHarness.Create(Hostile("while true do end"), budget: Budget);
        AssertServes(h, "before");
        // Nothing else runs scripts in this collection: after a second without calls the watchdog parks.
        var waited = Stopwatch.StartNew();
        while (!ScriptBudget.IsParked && waited.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(50);
        Assert.True(ScriptBudget.IsParked, "the watchdog kept ticking with no call running");

        var r = h.Run(Attack());

        Assert.Contains("exceeded its time budget", r.Failure);
        Assert.True(r.Elapsed <= CaseLimit, $"took {r.Elapsed.TotalMilliseconds:F1} ms (limit {CaseLimit.TotalMilliseconds} ms)");
        AssertServes(h, "after");
    }

    [Fact]
    public void Gc_finalizer_that_loops_never_runs()
    {
        var h = ScriptHarness.Create($$"""
            local keep = {}
            function on_request(req)
              if req.headers["x-attack"] then
                for i = 1, 100 do
                  local mt = { __gc = {{Loop}} }
                  setmetatable({}, mt)
                  keep[i] = setmetatable({}, mt)
                end
                keep = nil
              end
            end
            function handle(req)
              local churn = {}
              for i = 1, 2000 do churn[i] = { i } end
              return { status = 200, body = "ok" }
            end
            """, budget: TimeSpan.FromMilliseconds(50));
        var attack = h.Run(Attack());
        Assert.NotEqual(ScriptVerdict.Failed, attack.Verdict);

        Assert.True(CollectWithin(TimeSpan.FromSeconds(5)), "the .NET finalizer thread is stuck");
        for (int i = 0; i < 20; i++)
        {
            var r = h.Run();
            Assert.Equal(ScriptVerdict.Answered, r.Verdict);
            Assert.Equal("ok", r.Body);
            Assert.True(r.Elapsed <= TimeSpan.FromMilliseconds(150), $"request {i} took {r.Elapsed.TotalMilliseconds:F1} ms");
        }
    }

    [Fact]
    public void Gc_finalizer_does_not_run_when_an_abandoned_state_is_finalized()
    {
        // A pool dropped without Retire leaves its idle states to ~LuaState, which closes them on the finalizer thread.
        AttackThenAbandon();
        Assert.True(CollectWithin(TimeSpan.FromSeconds(5)), "the .NET finalizer thread is stuck closing a Lua state");
        var h = ScriptHarness.Create(Hostile("while true do end"), budget: Budget);
        AssertServes(h, "after finalization");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AttackThenAbandon()
    {
        var h = ScriptHarness.Create($$"""
            function on_request(req)
              if req.headers["x-attack"] then
                local mt = {}
                mt.__gc = {{Loop}}
                _G.pinned = setmetatable({}, mt)
                local late = setmetatable({}, {})
                getmetatable(late).__gc = {{Loop}}
                _G.late = late
              end
            end
            function handle(req) return { status = 200, body = "ok" } end
            """, budget: Budget);
        Assert.NotEqual(ScriptVerdict.Failed, h.Run(Attack()).Verdict);
    }

    private static bool CollectWithin(TimeSpan limit) => Task.Run(() =>
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }).Wait(limit);

    [Fact]
    public void Handler_response_with_looping_index_is_read_raw()
    {
        var h = ScriptHarness.Create($$"""
            function handle(req)
              if req.headers["x-attack"] then
                return setmetatable({ body = "raw" }, { __index = {{Loop}}, __pairs = {{Loop}}, __len = {{Loop}} })
              end
              return { status = 200, body = "ok" }
            end
            """, budget: Budget);
        var r = h.Run(Attack());
        Assert.True(r.Elapsed <= CaseLimit, $"{r.Elapsed.TotalMilliseconds:F1} ms");
        // Raw reads: the missing status is the default, never the metamethod's answer.
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal(200, r.Status);
        Assert.Equal("raw", r.Body);
        AssertServes(h, "after");
    }

    [Fact]
    public void Response_headers_with_looping_pairs_and_index_are_read_raw()
    {
        var h = ScriptHarness.Create($$"""
            function handle(req)
              if req.headers["x-attack"] then
                local headers = setmetatable({ ["x-real"] = "1" }, { __index = {{Loop}}, __pairs = {{Loop}}, __newindex = {{Loop}} })
                local list = setmetatable({}, { __index = {{Loop}}, __len = {{Loop}} })
                rawset(headers, "x-list", list)
                return { status = 200, headers = headers, body = "raw" }
              end
              return { status = 200, body = "ok" }
            end
            """, budget: Budget);
        var r = h.Run(Attack());
        Assert.True(r.Elapsed <= CaseLimit, $"{r.Elapsed.TotalMilliseconds:F1} ms");
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal("1", r.ResponseHeader("x-real"));
        Assert.Null(r.ResponseHeader("x-list"));
        AssertServes(h, "after");
    }

    [Fact]
    public void Binary_chunk_is_refused_as_a_script()
    {
        var errors = new List<ConfigError>();
        var set = ScriptHarness.TryCompile("\u001bLuaT\0\u0019\u0093\r\n\u001a\n\u0004\b\b", errors);
        Assert.Null(set);
        Assert.Contains(errors, e => e.ToString().Contains("binary", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Binary_chunk_is_refused_as_a_module()
    {
        var h = ScriptHarness.Create("""
            function on_request(req)
              if req.headers["x-attack"] then require("evil") end
            end
            function handle(req) return { status = 200, body = "ok" } end
            """, budget: Budget, libs: [("evil", "\u001bLuaT\0\u0019\u0093\r\n\u001a\n\u0004\b\b")]);
        var r = h.Run(Attack());
        Assert.Equal(ScriptVerdict.Failed, r.Verdict);
        Assert.Contains("failed: ", r.Failure);
        Assert.Contains("binary", r.Failure);
        AssertServes(h, "after");
    }

    [Fact]
    public void Library_tables_reached_through_pairs_cannot_be_changed()
    {
        // pairs(view) must not hand out the real library table: it is shared by every script in the state.
        var h = ScriptHarness.Create("""
            function on_request(req)
              if req.headers["x-attack"] then
                local _, real = pairs(string)
                if type(real) == "table" then pcall(function() real.lower = function() return "pwned" end end) end
              end
            end
            function handle(req) return { status = 200, body = ("OK"):lower() } end
            """, budget: TimeSpan.FromMilliseconds(50));
        h.Run(Attack());
        var r = h.Run();
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal("ok", r.Body);
    }

    [Fact]
    public void Request_object_kept_from_an_earlier_request_is_refused()
    {
        var h = ScriptHarness.Create("""
            local saved
            function on_request(req)
              if req.headers["x-attack"] then return { status = 200, body = saved and saved.method or "none" } end
              saved = req
            end
            function handle(req) return { status = 200, body = "ok" } end
            """, budget: Budget);
        AssertServes(h, "before");
        var r = h.Run(Attack());
        Assert.Equal(ScriptVerdict.Failed, r.Verdict);
        Assert.Contains("outside the hook call", r.Failure);
        AssertServes(h, "after");
    }

    [Fact]
    public void Response_phase_loop_fails_within_budget()
    {
        var h = ScriptHarness.Create($$"""
            function on_request(req) end
            function on_response(req, res)
              if req.headers["x-attack"] then while true do end end
            end
            """, budget: Budget);
        var request = h.Run(Attack());
        Assert.Equal(ScriptVerdict.Continue, request.Verdict);
        long started = Stopwatch.GetTimestamp();
        var (copy, body) = h.RunResponse(request);
        var elapsed = Stopwatch.GetElapsedTime(started);
        Assert.False(copy);
        Assert.Contains("exceeded its time budget", body);
        Assert.True(elapsed <= CaseLimit, $"{elapsed.TotalMilliseconds:F1} ms");
        var normal = h.Run();
        Assert.Equal(ScriptVerdict.Continue, normal.Verdict);
        Assert.True(h.RunResponse(normal).CopyBody);
    }

    [Fact]
    public void Context_carried_to_the_response_phase_is_encoded_within_budget()
    {
        // req.ctx goes to on_response as JSON, encoded after on_request returned: a table sharing one subtable
        // 2^24 times is tiny in Lua and cheap to build, but the encoder walks every path until 4 MB of output.
        var h = ScriptHarness.Create("""
            function on_request(req)
              if req.headers["x-attack"] then
                local t = { "xxxxxxxx" }
                for i = 1, 24 do t = { t, t } end
                req.ctx.bomb = t
              end
            end
            function on_response(req, res) end
            """, budget: Budget);
        var r = h.Run(Attack());
        output.WriteLine($"{r.Verdict} in {r.Elapsed.TotalMilliseconds:F1} ms");
        Assert.True(r.Elapsed <= CaseLimit, $"{r.Elapsed.TotalMilliseconds:F1} ms spent on a request whose script returned within {Budget.TotalMilliseconds} ms");
        Assert.Equal(ScriptVerdict.Continue, h.Run().Verdict);
    }

    [Fact]
    public void Response_table_with_many_headers_is_applied_within_budget()
    {
        // 20,000 header names, each a list of 64 values: building it is Lua (budgeted), applying it is C# (not).
        var budget = TimeSpan.FromMilliseconds(50);
        var h = ScriptHarness.Create("""
            function handle(req)
              if req.headers["x-attack"] then
                local list = {}
                for i = 1, 64 do list[i] = "v" .. i end
                local headers = {}
                for i = 1, 20000 do headers["h" .. i] = list end
                return { status = 200, headers = headers, body = "x" }
              end
              return { status = 200, body = "ok" }
            end
            """, budget: budget);
        var r = h.Run(Attack());
        output.WriteLine($"{r.Verdict} in {r.Elapsed.TotalMilliseconds:F1} ms, {r.Context.Response.Headers.Count} headers");
        Assert.True(r.Elapsed <= budget + TimeSpan.FromMilliseconds(100), $"{r.Elapsed.TotalMilliseconds:F1} ms with a {budget.TotalMilliseconds} ms budget");
        AssertServes(h, "after");
    }

    // ---- helpers ----

    /// <summary>A request without x-attack must be answered; a budget failure is retried twice (see the theory), anything else is not.</summary>
    private static void AssertServes(ScriptHarness h, string when)
    {
        RunResult r;
        int attempt = 0;
        do r = h.Run();
        while (++attempt < 3 && r.Failure is { } f && f.Contains("exceeded its time budget"));
        Assert.True(r.Verdict == ScriptVerdict.Answered && r.Status == 200 && r.Body == "ok",
            $"normal request {when}: {r.Verdict} {r.Status} '{r.Body}' {r.Failure}");
    }

    private static void AssertReason(string kind, string? failure)
    {
        Assert.NotNull(failure);
        var names = kind.Split('|').Select(k => k switch
        {
            "budget" => "exceeded its time budget",
            "memory" => "ran out of memory",
            "error" => failure.Contains("returned an invalid response") ? "returned an invalid response" : "failed: ",
            _ => throw new ArgumentException(k),
        }).ToArray();
        Assert.True(names.Any(failure.Contains), $"expected {kind}, got: {failure}");
    }
}

/// <summary>Hostile-script timing is measured against a 1 ms budget: nothing else may run beside it.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostileScriptCollection
{
    public const string Name = "Hostile scripts";
}
