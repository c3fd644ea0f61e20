using System.Diagnostics;
using System.Text;
using Keystone.Scripting;
using Keystone.Tests.Support;
using KeraLua;

namespace Keystone.Tests.Scripting;

public sealed class LuaPatternTests
{
    private static readonly Encoding Bytes = Encoding.Latin1;

    // (subject, pattern, 0-based init, what Lua's string.find returns, printed Lua-style with 1-based positions).
    // Every pattern here has a special byte, so string.find runs the matcher rather than a plain substring search.
    public static TheoryData<string, string, int, string> Cases() => new()
    {
        // Single bytes, '.', empty pattern, init.
        { "hello", "l", 0, "3 3" },
        { "hello", "xyz", 0, "nil" },
        { "hello", "lo", 4, "nil" },
        { "hello", "", 0, "1 0" },
        { "hello", "", 5, "6 5" },
        { "hello", ".", 0, "1 1" },
        { "", ".", 0, "nil" },
        { "", "", 0, "1 0" },
        { "a\0b", "\0b", 0, "2 3" },

        // Classes and their complements, ASCII only.
        { "ab1 c", "%d", 0, "3 3" },
        { "12ab", "%a+", 0, "3 4" },
        { "ab\u0001c", "%c", 0, "3 3" },
        { "a\u007f", "%c", 0, "2 2" },
        { "  x", "%g", 0, "3 3" },
        { "abCD", "%u+", 0, "3 4" },
        { "ABcd", "%l+", 0, "3 4" },
        { "ab,c", "%p", 0, "3 3" },
        { "a!", "%p", 0, "2 2" },
        { "a~", "%p", 0, "2 2" },
        { "ab \t\n\v\f\rc", "%s+", 0, "3 8" },
        { "__a1Z", "%w+", 0, "3 5" },
        { "xyzfF9g", "%x+", 0, "4 6" },
        { "a\0b", "%z", 0, "2 2" },
        { "abc1", "%A", 0, "4 4" },
        { "123a", "%D+", 0, "4 4" },
        { "ab c", "%S+", 2, "4 4" },
        { "a b", "%W", 0, "2 2" },
        { "abc", "%L", 0, "nil" },
        { "\u00e9a", "%a", 0, "2 2" },
        { "\u00e9a", "%A", 0, "1 1" },
        { "\u00e9", "%g", 0, "nil" },
        { "\u00e9", "%p", 0, "nil" },
        { "\u00e9", "%c", 0, "nil" },
        { "\u00e9", "%W", 0, "1 1" },

        // Escapes: a non-class byte after '%' is itself.
        { "a.b", "%.", 0, "2 2" },
        { "a%b", "%%", 0, "2 2" },
        { "f(x)", "%(%a%)", 0, "2 4" },
        { "aq", "%q", 0, "2 2" },
        { "a]", "%]", 0, "2 2" },

        // Sets.
        { "xbay", "[ab]+", 0, "2 3" },
        { "abcz", "[^ab]", 0, "3 3" },
        { "hello9", "[a-f]", 0, "2 2" },
        { "xyzc", "[a-c]", 0, "4 4" },
        { "xyza", "[a-c]", 0, "4 4" },
        { "x-y", "[a-]", 0, "2 2" },
        { "x-y", "[-a]", 0, "2 2" },
        { "a]b", "[]]", 0, "2 2" },
        { "]a", "[^]]", 0, "2 2" },
        { "a1_", "[%d_]+", 0, "2 3" },
        { "a%b", "[%%]", 0, "2 2" },
        { "a^", "[b^]", 0, "2 2" },
        { "a]", "[%]]", 0, "2 2" },
        { "ab1", "[^%a]", 0, "3 3" },
        { "\u00e9", "[^a-z]", 0, "1 1" },

        // Quantifiers.
        { "aaab", "a*", 0, "1 3" },
        { "baaa", "a*", 0, "1 0" },
        { "baaa", "a+", 0, "2 4" },
        { "aaab", "a-b", 0, "1 4" },
        { "aaab", "a-", 0, "1 0" },
        { "<a><b>", "<(.-)>", 0, "1 3 'a'" },
        { "<a><b>", "<(.*)>", 0, "1 6 'a><b'" },
        { "color colour", "colou?r", 6, "7 12" },
        { "ab", "a?b?c?", 0, "1 2" },
        { "xaaa", "a?a", 0, "2 3" },
        { "aaa", "^a-$", 0, "1 3" },
        { "aab", "a+b", 0, "1 3" },
        { "xy", "[xy]*y", 0, "1 2" },

        // Anchors: '^' only first, '$' only last; elsewhere they are literal bytes.
        { "hello", "^h", 0, "1 1" },
        { "hello", "^e", 0, "nil" },
        { "hello", "^e", 1, "2 2" },
        { "hello", "o$", 0, "5 5" },
        { "hello", "l$", 0, "nil" },
        { "a$b", "$b", 0, "2 3" },
        { "a^b", "a^", 0, "1 2" },
        { "", "^$", 0, "1 0" },
        { "abc", "$", 0, "4 3" },
        { "abc", "^", 2, "3 2" },

        // Captures and position captures.
        { "hello world", "(%a+) (%a+)", 0, "1 11 'hello' 'world'" },
        { "hello", "()ll()", 0, "3 4 3 5" },
        { "abc", "()", 3, "4 3 4" },
        { "key=val", "((%a+)=(%a+))", 0, "1 7 'key=val' 'key' 'val'" },
        { "ab", "(a)()(b)", 0, "1 2 'a' 2 'b'" },
        { "ab", "()", 0, "1 0 1" },
        { "a", "(.-)", 0, "1 0 ''" },

        // Back-references.
        { "x'hi'y", "(['\"])(.-)%1", 0, "2 5 ''' 'hi'" },
        { "abab", "(ab)%1", 0, "1 4 'ab'" },
        { "abac", "(ab)%1", 0, "nil" },
        { "aa", "()a%1", 0, "nil" },
        { "aa", "(a*)%1", 0, "1 2 'a'" },

        // Balanced pairs.
        { "f(a(b)c) d", "%b()", 0, "2 8" },
        { "((", "%b()", 0, "nil" },
        { "[x]]", "%b[]", 0, "1 3" },
        { "aa", "%baa", 0, "1 2" },
        { "x(a)y", "%b()y", 0, "2 5" },

        // Frontiers; outside the subject reads as '\0'.
        { "THE (quick) fox", "%f[%a]%a+", 0, "1 3" },
        { "THE (quick) fox", "%f[%a]%a+", 3, "6 10" },
        { "abc", "%f[%w]", 0, "1 0" },
        { "abc", "%f[%z]", 0, "4 3" },
        { "abc", "%f[^%w]", 0, "4 3" },
        { "aab", "%f[b]", 0, "3 2" },
        { "ab", "%f[^%z]a", 0, "1 1" },
        { "a\0b", "%f[%z]", 0, "2 1" },

        // Errors, with Lua's messages.
        { "a", "%", 0, "error: malformed pattern (ends with '%')" },
        { "a", "a%", 0, "error: malformed pattern (ends with '%')" },
        { "a", "[a", 0, "error: malformed pattern (missing ']')" },
        { "a", "[a%]", 0, "error: malformed pattern (missing ']')" },
        { "a", "[]", 0, "error: malformed pattern (missing ']')" },
        { "a", "(a)%2", 0, "error: invalid capture index %2" },
        { "a", "(a%1)", 0, "error: invalid capture index %1" },
        { "a", "%0", 0, "error: invalid capture index %0" },
        { "ab", "a.)", 0, "error: invalid pattern capture" },
        { "a", "(a", 0, "error: unfinished capture" },
        { "a", "a(", 0, "error: unfinished capture" },
        { "a", "%f", 0, "error: missing '[' after '%f' in pattern" },
        { "a", "%fa", 0, "error: missing '[' after '%f' in pattern" },
        { "a", "%f[a", 0, "error: malformed pattern (missing ']')" },
        { "a", "%b", 0, "error: malformed pattern (missing arguments to '%b')" },
        { "a", "%ba", 0, "error: malformed pattern (missing arguments to '%b')" },
        { "a", new string('(', 33) + "a" + new string(')', 33), 0, "error: too many captures" },
        { "a", new string('(', 250) + "a" + new string(')', 250), 0, "error: too many captures" },
        { new string('a', 300), string.Concat(Enumerable.Repeat("a?", 300)), 0, "error: pattern too complex" },

        // Errors are raised only when the matcher reaches them, as in Lua.
        { "b", "a[", 0, "nil" },
        { "b", "a.)", 0, "nil" },
        { "b", "a%1", 0, "nil" },
        { "a", string.Concat(Enumerable.Repeat("a?", 300)), 0, "1 1" },
    };

    [Theory]
    [MemberData(nameof(Cases), DisableDiscoveryEnumeration = true)]
    public void Finds_what_Lua_string_find_finds(string subject, string pattern, int init, string expected)
    {
        Assert.Equal(expected, Managed(Bytes.GetBytes(subject), Bytes.GetBytes(pattern), init, plain: false));
    }

    [Theory]
    [MemberData(nameof(Cases), DisableDiscoveryEnumeration = true)]
    public void Table_expectations_are_what_real_Lua_returns(string subject, string pattern, int init, string expected)
    {
        using var lua = new ReferenceLua();

        Assert.Equal(expected, lua.Find(Bytes.GetBytes(subject), Bytes.GetBytes(pattern), init));
    }

    [Fact]
    public void Agrees_with_real_Lua_on_6000_generated_patterns()
    {
        string[] pieces =
        [
            "a", "b", "x", ".", "%a", "%A", "%s", "%p", "%.", "%(", "[ab]", "[^a]", "[a-c]", "[%a(]", "[]a]", "a*", "a-",
            "a+", "a?", ".*", ".-", ".+", "[ab]*", "%a-", "b-", "()", "(a)", "(.-)", "(a*)", "%1", "%bab", "%b()",
            "%f[a]", "%f[^a]", "%f[%a]", "%f[%z]", "%f[^%z]", "[b-x]", "[(-a]", "^", "$",
        ];

        // Pieces that are malformed on their own or turn later pieces into errors; rarer, or most pairs would error.
        string[] rarePieces = ["%", "[", "]", "(", ")", "%2", "%0", "%b", "%f", "\0", "%z"];
        const string alphabet = "aaaabb(x)%. ^$";
        var random = new Random(5406);
        using var lua = new ReferenceLua();
        var mismatches = new List<string>();
        var pattern = new StringBuilder();
        const int pairs = 6000;

        for (int n = 0; n < pairs; n++)
        {
            pattern.Clear();
            int pieceCount = random.Next(1, 6);
            for (int i = 0; i < pieceCount; i++)
            {
                pattern.Append(random.Next(8) == 0 ? rarePieces[random.Next(rarePieces.Length)] : pieces[random.Next(pieces.Length)]);
            }

            var subject = new byte[random.Next(0, 17)];
            for (int i = 0; i < subject.Length; i++)
            {
                subject[i] = random.Next(40) == 0 ? (byte)0 : (byte)alphabet[random.Next(alphabet.Length)];
            }

            byte[] patternBytes = Bytes.GetBytes(pattern.ToString());
            int init = random.Next(0, subject.Length + 1);

            // string.find does a plain substring search when the pattern has no special byte (then ')' is literal),
            // so those patterns go through string.match, which always uses the matcher.
            bool plain = patternBytes.AsSpan().IndexOfAny("^$*+?.([%-"u8) < 0;
            string expected = plain ? lua.Match(subject, patternBytes, init) : lua.Find(subject, patternBytes, init);
            string actual = Managed(subject, patternBytes, init, plain);
            if (expected != actual)
            {
                mismatches.Add($"find({Quote(subject)}, {Quote(patternBytes)}, {init + 1}): Lua {expected}, managed {actual}");
            }
        }

        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches.Take(20)));
    }

    [Fact]
    public void Every_class_agrees_with_real_Lua_on_every_byte()
    {
        using var lua = new ReferenceLua();
        var mismatches = new List<string>();

        foreach (char letter in "acdglpsuwxzqACDGLPSUWXZQ")
        {
            foreach (string pattern in new[] { "%" + letter, "[%" + letter + "]", "[^%" + letter + "]" })
            {
                byte[] patternBytes = Bytes.GetBytes(pattern);
                for (int c = 0; c < 256; c++)
                {
                    byte[] subject = [(byte)c];
                    string expected = lua.Find(subject, patternBytes, 0);
                    if (expected != Managed(subject, patternBytes, 0, plain: false))
                    {
                        mismatches.Add($"{pattern} on byte {c}: Lua {expected}");
                    }
                }
            }
        }

        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches.Take(20)));
    }

    [Theory]
    [InlineData(195)]
    [InlineData(198)]
    [InlineData(199)]
    [InlineData(200)]
    [InlineData(201)]
    [InlineData(205)]
    public void Recursion_limit_is_exactly_Lua_s(int pieces)
    {
        byte[] subject = Bytes.GetBytes(new string('a', pieces));
        byte[] pattern = Bytes.GetBytes(string.Concat(Enumerable.Repeat("a?", pieces)));
        using var lua = new ReferenceLua();

        Assert.Equal(lua.Find(subject, pattern, 0), Managed(subject, pattern, 0, plain: false));
    }

    [Fact]
    public void Thirty_two_captures_fit_and_are_all_returned()
    {
        byte[] subject = Bytes.GetBytes(new string('a', 32));
        byte[] pattern = Bytes.GetBytes(string.Concat(Enumerable.Repeat("(a)", 32)));
        using var lua = new ReferenceLua();

        string result = Managed(subject, pattern, 0, plain: false);

        Assert.StartsWith("1 32 'a'", result);
        Assert.Equal(lua.Find(subject, pattern, 0), result);
    }

    [Fact]
    public void Deep_patterns_fail_cleanly_on_a_small_stack()
    {
        string? complex = null;
        string? captures = null;
        var thread = new Thread(
            () =>
            {
                complex = Managed(Bytes.GetBytes(new string('a', 300)), Bytes.GetBytes(string.Concat(Enumerable.Repeat("a?", 300))), 0, plain: false);
                captures = Managed("a"u8.ToArray(), Bytes.GetBytes(new string('(', 250) + "a" + new string(')', 250)), 0, plain: false);
            },
            maxStackSize: 256 * 1024);

        thread.Start();
        thread.Join();

        Assert.Equal("error: pattern too complex", complex);
        Assert.Equal("error: too many captures", captures);
    }

    [Fact]
    public void Lazy_quantifier_chain_times_out_soon_after_the_deadline()
    {
        byte[] subject = Bytes.GetBytes(new string('a', 20_000));

        var (result, elapsed) = FindWithDeadline(subject, ".-.-b"u8, TimeSpan.FromMilliseconds(1));

        Assert.Equal(PatternResult.Timeout, result);
        Assert.True(elapsed < TimeSpan.FromMilliseconds(200), $"took {elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public void Cubic_pattern_on_100k_bytes_times_out_soon_after_the_deadline()
    {
        byte[] subject = Bytes.GetBytes(new string('a', 100_000));

        var (result, elapsed) = FindWithDeadline(subject, ".-.-.-b"u8, TimeSpan.FromMilliseconds(5));

        Assert.Equal(PatternResult.Timeout, result);
        Assert.True(elapsed < TimeSpan.FromMilliseconds(200), $"took {elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public void Balance_scans_count_towards_the_deadline()
    {
        byte[] subject = Bytes.GetBytes(new string('(', 100_000));

        var (result, elapsed) = FindWithDeadline(subject, ".-%b()"u8, TimeSpan.FromMilliseconds(5));

        Assert.Equal(PatternResult.Timeout, result);
        Assert.True(elapsed < TimeSpan.FromMilliseconds(200), $"took {elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public void Without_a_deadline_a_slow_pattern_runs_to_completion()
    {
        byte[] subject = Bytes.GetBytes(new string('a', 300));

        var (result, _) = FindWithDeadline(subject, ".-.-b"u8, Timeout.InfiniteTimeSpan);

        Assert.Equal(PatternResult.NoMatch, result);
    }

    [Fact]
    public void Matching_does_not_allocate()
    {
        byte[] subject = "key=value; other=thing (nested (parens)) end"u8.ToArray();
        var captures = new Capture[LuaPattern.MaxCaptures];
        long deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 60;

        int runs = 0, matches = 0;
        long allocated = Allocations.LeastOf(3, () =>
        {
            for (int i = 0; i < 100; i++)
            {
                matches += RunAll(subject, captures, deadline);
                runs++;
            }
        });

        Assert.Equal(0, allocated);
        Assert.Equal(runs * 5, matches);

        static int RunAll(byte[] subject, Span<Capture> captures, long deadline)
        {
            int found = 0;
            found += Hit(LuaPattern.Find(subject, "(%a+)=(%a+)"u8, 0, captures, deadline, out _, out _, out _, out _));
            found += Hit(LuaPattern.Find(subject, "()%b()()"u8, 0, captures, deadline, out _, out _, out _, out _));
            found += Hit(LuaPattern.Find(subject, "%f[%a]end$"u8, 0, captures, deadline, out _, out _, out _, out _));
            found += Hit(LuaPattern.Find(subject, "(t)h.-%1"u8, 0, captures, deadline, out _, out _, out _, out _));
            found += Hit(LuaPattern.Find(subject, "[xyz]+"u8, 0, captures, deadline, out _, out _, out _, out _));
            return found;
        }

        static int Hit(PatternResult result) => result == PatternResult.Match ? 1 : 0;
    }

    [Fact]
    public void Out_of_range_init_is_a_caller_bug()
    {
        var captures = new Capture[LuaPattern.MaxCaptures];

        Assert.Throws<ArgumentOutOfRangeException>(() => LuaPattern.Find("abc"u8, "a"u8, 4, captures, long.MaxValue, out _, out _, out _, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => LuaPattern.Find("abc"u8, "a"u8, -1, captures, long.MaxValue, out _, out _, out _, out _));
    }

    private static (PatternResult Result, TimeSpan Elapsed) FindWithDeadline(byte[] subject, ReadOnlySpan<byte> pattern, TimeSpan budget)
    {
        Span<Capture> captures = stackalloc Capture[LuaPattern.MaxCaptures];
        long started = Stopwatch.GetTimestamp();
        long deadline = budget == Timeout.InfiniteTimeSpan ? long.MaxValue : started + (long)(budget.TotalSeconds * Stopwatch.Frequency);
        var result = LuaPattern.Find(subject, pattern, 0, captures, deadline, out _, out _, out _, out _);
        return (result, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>Runs the managed matcher and prints the outcome the way <see cref="ReferenceLua"/> prints Lua's.</summary>
    private static string Managed(byte[] subject, byte[] pattern, int init, bool plain)
    {
        Span<Capture> captures = stackalloc Capture[LuaPattern.MaxCaptures];
        var result = LuaPattern.Find(subject, pattern, init, captures, long.MaxValue, out int start, out int end, out int count, out string? error);
        switch (result)
        {
            case PatternResult.NoMatch:
                return "nil";
            case PatternResult.Error:
                return "error: " + error;
            case PatternResult.Timeout:
                return "timeout";
        }

        // string.match returns the whole match when the pattern has no captures; string.find returns positions.
        if (plain)
        {
            return count == 0 ? Quote(subject.AsSpan(start, end - start)) : "captures from a plain pattern?";
        }

        var text = new StringBuilder().Append(start + 1).Append(' ').Append(end);
        foreach (var capture in captures[..count])
        {
            text.Append(' ').Append(capture.Length == Capture.Position
                ? (capture.Start + 1).ToString()
                : Quote(subject.AsSpan(capture.Start, capture.Length)));
        }

        return text.ToString();
    }

    private static string Quote(ReadOnlySpan<byte> bytes) => "'" + Bytes.GetString(bytes) + "'";

    /// <summary>Real Lua 5.4 (through KeraLua) with results printed like "3 4 'cap' 5", "nil" or "error: message".</summary>
    private sealed class ReferenceLua : IDisposable
    {
        private readonly Lua _lua = new();

        public ReferenceLua()
        {
            _lua.OpenLibs();
            Define("lua_find", "return pcall(string.find, S, P, I)");
            Define("lua_match", "return pcall(string.match, S, P, I)");
        }

        public string Find(byte[] subject, byte[] pattern, int init) => Call("lua_find", subject, pattern, init);

        public string Match(byte[] subject, byte[] pattern, int init) => Call("lua_match", subject, pattern, init);

        public void Dispose() => _lua.Dispose();

        private void Define(string name, string chunk)
        {
            Assert.Equal(LuaStatus.OK, _lua.LoadString(chunk));
            _lua.SetGlobal(name);
        }

        private string Call(string function, byte[] subject, byte[] pattern, int init)
        {
            _lua.SetTop(0);
            _lua.PushBuffer(subject);
            _lua.SetGlobal("S");
            _lua.PushBuffer(pattern);
            _lua.SetGlobal("P");
            _lua.PushInteger(init + 1);
            _lua.SetGlobal("I");
            _lua.GetGlobal(function);
            Assert.Equal(LuaStatus.OK, _lua.PCall(0, -1, 0));

            if (!_lua.ToBoolean(1))
            {
                return "error: " + WithoutLocation(Bytes.GetString(_lua.ToBuffer(2)));
            }

            var text = new StringBuilder();
            for (int i = 2; i <= _lua.GetTop(); i++)
            {
                if (i > 2)
                {
                    text.Append(' ');
                }

                text.Append(_lua.Type(i) switch
                {
                    LuaType.Nil => "nil",
                    LuaType.Number => _lua.ToInteger(i).ToString(),
                    _ => Quote(_lua.ToBuffer(i)),
                });
            }

            return text.ToString();
        }

        // Lua prefixes "chunk:line: " when the error comes from Lua code; string.find's own errors carry none.
        private static string WithoutLocation(string message)
        {
            int colon = message.IndexOf(':');
            int digits = colon + 1;
            while (colon >= 0 && digits < message.Length && char.IsAsciiDigit(message[digits]))
            {
                digits++;
            }

            return colon >= 0 && digits > colon + 1 && message.AsSpan(digits).StartsWith(": ") ? message[(digits + 2)..] : message;
        }
    }
}
