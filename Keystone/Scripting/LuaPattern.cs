using System.Diagnostics;

namespace Keystone.Scripting;

/// <summary>Outcome of one <see cref="LuaPattern.Find"/> call.</summary>
public enum PatternResult { NoMatch, Match, Error, Timeout }

/// <summary>
/// A capture: Start is a 0-based byte offset into the subject; Length is the byte length,
/// or <see cref="Position"/> for a position capture "()" (then the value Lua returns is Start + 1).
/// </summary>
public readonly record struct Capture(int Start, int Length)
{
    public const int Position = -2;
}

/// <summary>Lua 5.4 pattern matching (string.find/string.match semantics) with a deadline and a recursion cap.</summary>
/// <remarks>
/// The native matcher in lstrlib.c cannot be interrupted, so one string.find on a hostile pattern could hold a
/// request thread for minutes. This is the same backtracking algorithm, written so that it counts its steps and
/// gives up at a deadline, reports malformed patterns as values instead of longjmp-ing, and never recurses deeper
/// than Lua itself would (MAXCCALLS), which also keeps the CLR stack safe.
/// </remarks>
public static class LuaPattern
{
    public const int MaxCaptures = 32;   // LUA_MAXCAPTURES

    /// <summary>
    /// Searches subject for pattern starting at 0-based byte offset init (0 &lt;= init &lt;= subject.Length;
    /// the caller normalises Lua's 1-based/negative init). A leading '^' anchors at init.
    /// </summary>
    /// <remarks>
    /// On Match, [matchStart, matchEnd) is the whole match and captures[0..captureCount) the pattern's captures.
    /// On Error, error holds Lua's message text. Timeout means Stopwatch.GetTimestamp() passed deadlineTimestamp
    /// (checked about every 1024 matcher steps; long.MaxValue means no deadline).
    /// </remarks>
    public static PatternResult Find(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> pattern, int init,
        Span<Capture> captures, long deadlineTimestamp,
        out int matchStart, out int matchEnd, out int captureCount, out string? error)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(init);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(init, subject.Length);
        if (captures.Length < MaxCaptures)
        {
            throw new ArgumentException($"needs room for {MaxCaptures} captures", nameof(captures));
        }

        matchStart = -1;
        matchEnd = -1;
        captureCount = 0;
        error = null;

        // '^' is an anchor only as the very first byte; anywhere else the matcher treats it as a literal.
        bool anchored = pattern.Length > 0 && pattern[0] == '^';
        if (anchored)
        {
            pattern = pattern[1..];
        }

        var state = new MatchState(subject, pattern, captures, deadlineTimestamp);
        int start = init;
        do
        {
            state.Level = 0;
            int end = state.Match(start, 0);
            if (end >= 0)
            {
                // Lua only notices an open capture when it reads the captures back, which find/match always do.
                for (int i = 0; i < state.Level; i++)
                {
                    if (captures[i].Length == MatchState.Unfinished)
                    {
                        error = "unfinished capture";
                        return PatternResult.Error;
                    }
                }

                matchStart = start;
                matchEnd = end;
                captureCount = state.Level;
                return PatternResult.Match;
            }

            if (end == MatchState.Aborted)
            {
                error = state.Error;
                return error is null ? PatternResult.Timeout : PatternResult.Error;
            }
        }
        while (start++ < subject.Length && !anchored);

        return PatternResult.NoMatch;
    }

    /// <summary>The matcher: positions are indexes into the spans; results are an end offset, NoMatch or Aborted.</summary>
    private ref struct MatchState
    {
        public const int NoMatch = -1;
        public const int Aborted = -2;   // Error (message set) or Timeout (message null); unwinds every frame.
        public const int Unfinished = -1;

        private const int MaxDepth = 200;          // MAXCCALLS in lstrlib.c
        private const int StepsPerClockCheck = 1024;

        private readonly ReadOnlySpan<byte> _subject;
        private readonly ReadOnlySpan<byte> _pattern;
        private readonly Span<Capture> _captures;
        private readonly long _deadline;
        private int _depth;
        private int _budget;

        public int Level;
        public string? Error;

        public MatchState(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> pattern, Span<Capture> captures, long deadline)
        {
            _subject = subject;
            _pattern = pattern;
            _captures = captures;
            _deadline = deadline;
            _depth = MaxDepth;
            _budget = StepsPerClockCheck;
        }

        public int Match(int s, int p)
        {
            if (_depth-- == 0)
            {
                return Fail("pattern too complex");
            }

            // Each 'continue' is a tail call in Lua's matcher (its "goto init"); it does not count towards depth.
            while (true)
            {
                if (!Tick())
                {
                    return Aborted;
                }

                if (p == _pattern.Length)
                {
                    break;
                }

                switch (_pattern[p])
                {
                    case (byte)'(':
                        s = PatternAt(p + 1) == ')'
                            ? StartCapture(s, p + 2, Capture.Position)
                            : StartCapture(s, p + 1, Unfinished);
                        break;
                    case (byte)')':
                        s = EndCapture(s, p + 1);
                        break;
                    case (byte)'$' when p + 1 == _pattern.Length:
                        s = s == _subject.Length ? s : NoMatch;
                        break;
                    case (byte)'%' when PatternAt(p + 1) == 'b':
                        s = MatchBalance(s, p + 2);
                        if (s >= 0)
                        {
                            p += 4;
                            continue;
                        }

                        break;
                    case (byte)'%' when PatternAt(p + 1) == 'f':
                        {
                            p += 2;
                            if (PatternAt(p) != '[')
                            {
                                return Fail("missing '[' after '%f' in pattern");
                            }

                            int setEnd = ClassEnd(p);
                            if (setEnd < 0)
                            {
                                return Aborted;
                            }

                            // Outside the subject counts as '\0', as Lua reads the C string's terminator there.
                            byte previous = s == 0 ? (byte)0 : _subject[s - 1];
                            if (!MatchBracketClass(previous, p, setEnd - 1) && MatchBracketClass(SubjectAt(s), p, setEnd - 1))
                            {
                                p = setEnd;
                                continue;
                            }

                            s = NoMatch;
                            break;
                        }
                    case (byte)'%' when PatternAt(p + 1) - '0' is >= 0 and <= 9:
                        s = MatchBackReference(s, PatternAt(p + 1) - '0');
                        if (s >= 0)
                        {
                            p += 2;
                            continue;
                        }

                        break;
                    default:
                        {
                            int ep = ClassEnd(p);
                            if (ep < 0)
                            {
                                return Aborted;
                            }

                            byte suffix = PatternAt(ep);
                            if (!SingleMatch(s, p, ep))
                            {
                                if (suffix is (byte)'*' or (byte)'?' or (byte)'-')
                                {
                                    p = ep + 1;
                                    continue;
                                }

                                s = NoMatch;
                                break;
                            }

                            if (suffix == '?')
                            {
                                int result = Match(s + 1, ep + 1);
                                if (result != NoMatch)
                                {
                                    s = result;
                                    break;
                                }

                                p = ep + 1;
                                continue;
                            }

                            if (suffix is (byte)'*' or (byte)'+')
                            {
                                s = MaxExpand(suffix == '+' ? s + 1 : s, p, ep);
                                break;
                            }

                            if (suffix == '-')
                            {
                                s = MinExpand(s, p, ep);
                                break;
                            }

                            s++;
                            p = ep;
                            continue;
                        }
                }

                break;
            }

            _depth++;
            return s;
        }

        private int MaxExpand(int s, int p, int ep)
        {
            int count = 0;
            while (SingleMatch(s + count, p, ep))
            {
                count++;
                if (!Tick())
                {
                    return Aborted;
                }
            }

            // Greedy: try the rest of the pattern after the longest run first, then give back one byte at a time.
            for (; count >= 0; count--)
            {
                int result = Match(s + count, ep + 1);
                if (result != NoMatch)
                {
                    return result;
                }
            }

            return NoMatch;
        }

        private int MinExpand(int s, int p, int ep)
        {
            while (true)
            {
                int result = Match(s, ep + 1);
                if (result != NoMatch)
                {
                    return result;
                }

                if (!SingleMatch(s, p, ep))
                {
                    return NoMatch;
                }

                s++;
            }
        }

        private int StartCapture(int s, int p, int what)
        {
            if (Level >= MaxCaptures)
            {
                return Fail("too many captures");
            }

            _captures[Level] = new Capture(s, what);
            Level++;
            int result = Match(s, p);
            if (result == NoMatch)
            {
                Level--;
            }

            return result;
        }

        private int EndCapture(int s, int p)
        {
            int level = Level - 1;
            while (level >= 0 && _captures[level].Length != Unfinished)
            {
                level--;
            }

            if (level < 0)
            {
                return Fail("invalid pattern capture");
            }

            int start = _captures[level].Start;
            _captures[level] = new Capture(start, s - start);
            int result = Match(s, p);
            if (result == NoMatch)
            {
                _captures[level] = new Capture(start, Unfinished);
            }

            return result;
        }

        private int MatchBackReference(int s, int digit)
        {
            int index = digit - 1;
            if (index < 0 || index >= Level || _captures[index].Length == Unfinished)
            {
                return Fail($"invalid capture index %{digit}");
            }

            // A position capture has no text; Lua compares its length as a huge size_t, so it never matches.
            var capture = _captures[index];
            if (capture.Length == Capture.Position || _subject.Length - s < capture.Length)
            {
                return NoMatch;
            }

            if (!Charge(1 + (capture.Length >> 6)))
            {
                return Aborted;
            }

            return _subject.Slice(capture.Start, capture.Length).SequenceEqual(_subject.Slice(s, capture.Length))
                ? s + capture.Length
                : NoMatch;
        }

        private int MatchBalance(int s, int p)
        {
            if (p >= _pattern.Length - 1)
            {
                return Fail("malformed pattern (missing arguments to '%b')");
            }

            if (s >= _subject.Length || _subject[s] != _pattern[p])
            {
                return NoMatch;
            }

            byte open = _pattern[p];
            byte close = _pattern[p + 1];
            int depth = 1;
            while (++s < _subject.Length)
            {
                if (!Tick())
                {
                    return Aborted;
                }

                byte c = _subject[s];
                if (c == close)
                {
                    if (--depth == 0)
                    {
                        return s + 1;
                    }
                }
                else if (c == open)
                {
                    depth++;
                }
            }

            return NoMatch;
        }

        /// <summary>Index just past the single-byte class at p (a byte, '.', %x or [set]), or Aborted.</summary>
        private int ClassEnd(int p)
        {
            byte c = _pattern[p++];
            if (c == '%')
            {
                return p == _pattern.Length ? Fail("malformed pattern (ends with '%')") : p + 1;
            }

            if (c != '[')
            {
                return p;
            }

            if (PatternAt(p) == '^')
            {
                p++;
            }

            // The first byte of a set is never its end, so "[]]" and "[^]]" are sets holding ']'.
            do
            {
                if (p == _pattern.Length)
                {
                    return Fail("malformed pattern (missing ']')");
                }

                if (_pattern[p++] == '%' && p < _pattern.Length)
                {
                    p++;
                }
            }
            while (PatternAt(p) != ']');

            return p + 1;
        }

        private readonly bool SingleMatch(int s, int p, int ep)
        {
            if (s >= _subject.Length)
            {
                return false;
            }

            byte c = _subject[s];
            return _pattern[p] switch
            {
                (byte)'.' => true,
                (byte)'%' => MatchClass(c, _pattern[p + 1]),
                (byte)'[' => MatchBracketClass(c, p, ep - 1),
                _ => _pattern[p] == c,
            };
        }

        /// <summary>Whether c is in the set that opens with '[' at p and closes with ']' at close.</summary>
        private readonly bool MatchBracketClass(byte c, int p, int close)
        {
            bool inSet = true;
            if (_pattern[p + 1] == '^')
            {
                inSet = false;
                p++;
            }

            while (++p < close)
            {
                if (_pattern[p] == '%')
                {
                    p++;
                    if (MatchClass(c, _pattern[p]))
                    {
                        return inSet;
                    }
                }
                else if (_pattern[p + 1] == '-' && p + 2 < close)
                {
                    p += 2;
                    if (_pattern[p - 2] <= c && c <= _pattern[p])
                    {
                        return inSet;
                    }
                }
                else if (_pattern[p] == c)
                {
                    return inSet;
                }
            }

            return !inSet;
        }

        // The C locale: only ASCII has classes, so bytes >= 0x80 are in no class and in every complement.
        private static bool MatchClass(byte c, byte cl)
        {
            bool upper = cl is >= (byte)'A' and <= (byte)'Z';
            bool result;
            switch (upper ? cl | 0x20 : cl)
            {
                case 'a': result = IsAlpha(c); break;
                case 'c': result = c < 0x20 || c == 0x7f; break;
                case 'd': result = IsDigit(c); break;
                case 'g': result = c is > 0x20 and < 0x7f; break;
                case 'l': result = c is >= (byte)'a' and <= (byte)'z'; break;
                case 'p': result = c is > 0x20 and < 0x7f && !IsAlpha(c) && !IsDigit(c); break;
                case 's': result = c == ' ' || c is >= 0x09 and <= 0x0d; break;
                case 'u': result = c is >= (byte)'A' and <= (byte)'Z'; break;
                case 'w': result = IsAlpha(c) || IsDigit(c); break;
                case 'x': result = IsDigit(c) || (c | 0x20) is >= 'a' and <= 'f'; break;
                case 'z': result = c == 0; break;   // deprecated in 5.2 but still accepted by 5.4
                default: return cl == c;
            }

            return upper ? !result : result;
        }

        private static bool IsAlpha(byte c) => (c | 0x20) is >= 'a' and <= 'z';

        private static bool IsDigit(byte c) => c is >= (byte)'0' and <= (byte)'9';

        // Lua's strings carry a '\0' terminator that the C matcher reads past the end; these reproduce that.
        private readonly byte PatternAt(int p) => p < _pattern.Length ? _pattern[p] : (byte)0;

        private readonly byte SubjectAt(int s) => s < _subject.Length ? _subject[s] : (byte)0;

        private bool Tick() => --_budget > 0 || CheckClock();

        private bool Charge(int steps)
        {
            _budget -= steps;
            return _budget > 0 || CheckClock();
        }

        private bool CheckClock()
        {
            _budget = StepsPerClockCheck;
            return _deadline == long.MaxValue || Stopwatch.GetTimestamp() <= _deadline;
        }

        private int Fail(string message)
        {
            Error = message;
            return Aborted;
        }
    }
}
