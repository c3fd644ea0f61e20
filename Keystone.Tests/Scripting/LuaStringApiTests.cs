namespace Keystone.Tests.Scripting;

/// <summary>
/// string.find/match/gmatch/gsub as scripts see them: Keystone runs them on its own pattern engine (and gmatch/gsub
/// in sandbox Lua), so each result is also compared with plain Lua 5.4 running the same code.
/// </summary>
public sealed class LuaStringApiTests
{
    /// <summary>Shows the values of <paramref name="expressions"/>, or "error: message" (without location) when they raise.</summary>
    private static string Body(string expressions) => Shown("show(" + expressions + ")");

    /// <summary>Returns the string <paramref name="expression"/> evaluates to, or "error: message" when it raises.</summary>
    private static string Shown(string expression) =>
        "local ok, r = pcall(function() return " + expression + " end)\n"
        + "if ok then return r end\nreturn 'error: ' .. tostring(r)";

    /// <summary>Asserts Keystone's result and plain Lua's result are both <paramref name="expected"/>.</summary>
    private static void Same(string expected, string expressions) => SameBody(expected, Body(expressions));

    private static void SameBody(string expected, string body)
    {
        Assert.Equal(expected, Normalize(LuaScripts.InKeystone(body)));
        Assert.Equal(expected, Normalize(LuaScripts.Native(body)));
    }

    private static string Normalize(string shown) =>
        shown.StartsWith("error: ", StringComparison.Ordinal) ? "error: " + LuaScripts.WithoutLocation(shown["error: ".Length..]) : shown;

    // ---- find ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("1 3", "('hello world'):find('hel')")]
    [InlineData("5 7", "('hello world'):find('o w')")]
    [InlineData("2 2", "('a.b.c'):find('.', 1, true)")]
    [InlineData("4 4", "('a.b.c'):find('.', 3, true)")]
    [InlineData("3 3", "('a.b.c'):find('.', 3)")]
    [InlineData("4 4", "('hello'):find('l', -2)")]
    [InlineData("3 3", "('hello'):find('l', -100)")]
    [InlineData("3 3", "('hello'):find('l', 0)")]
    [InlineData("nil", "('hello'):find('', 10)")]
    [InlineData("6 5", "('hello'):find('', 6)")]
    [InlineData("1 0", "(''):find('')")]
    [InlineData("nil", "('hello'):find('xyz')")]
    [InlineData("2 2", "('[x]'):find('x', 1.0)")]
    [InlineData("1 1", "('[test]'):find('[', 1, true)")]
    [InlineData("5 11 'quick'", "('THE (quick) fox'):find('%((%a+)%)')")]
    [InlineData("3 3", "('abc'):find('c$')")]
    [InlineData("2 3", "('a$c'):find('$c')")]
    [InlineData("error: malformed pattern (missing ']')", "('abc'):find('[a')")]
    [InlineData("error: malformed pattern (ends with '%')", "('abc'):find('a%')")]
    public void Find_matches_plain_lua(string expected, string expression) => Same(expected, expression);

    // ---- match ---------------------------------------------------------------------------------------

    [Theory]
    [InlineData("'key' 'value'", "('key = value'):match('(%w+)%s*=%s*(%w+)')")]
    [InlineData("3 5", "('hello'):match('()ll()')")]
    [InlineData("'ll' 'o'", "('hello'):match('.-(l+)(.*)', 2)")]
    [InlineData("'trim'", "('  trim  '):match('^%s*(.-)%s*$')")]
    [InlineData("nil", "('abc'):match('^b')")]
    [InlineData("'b'", "('abc'):match('b', -2)")]
    [InlineData("'2024' '01' '31'", "('on 2024-01-31'):match('(%d+)-(%d%d)-(%d%d)')")]
    [InlineData("'abc'", "('abc'):match('.*')")]
    [InlineData("'a' 2 'bc'", "('abc'):match('(a)()(.*)')")]
    [InlineData("'THE'", "('THE (quick) fox'):match('%f[%a]%a+')")]
    [InlineData("error: unfinished capture", "('abc'):match('(a')")]
    [InlineData("error: invalid capture index %1", "('abc'):match('%1')")]
    public void Match_matches_plain_lua(string expected, string expression) => Same(expected, expression);

    // ---- gmatch --------------------------------------------------------------------------------------

    [Theory]
    [InlineData("'one','two','three'", "each('one two  three', '%a+')")]
    [InlineData("'k1' 'v1','k2' 'v2'", "each('k1=v1, k2=v2', '(%w+)=(%w+)')")]
    [InlineData("'','','',''", "each('abc', '')")]
    [InlineData("'ab','cd'", "each('ab cd', '%w*')")]
    [InlineData("'a','b','','c'", "each('a,b,,c', '([^,]*)')")]
    [InlineData("3,4", "each('hello', '()l')")]
    [InlineData("'b'", "each('abcabc', 'b', 3)")]
    [InlineData("'c'", "each('abc', '.', -1)")]
    [InlineData("", "each('abc', '.', 10)")]
    [InlineData("'a','b','c'", "each('abc', '.', 0)")]
    [InlineData("'^a'", "each('aa^a', '^a')")]
    [InlineData("", "each('aaa', '^a')")]
    public void Gmatch_matches_plain_lua(string expected, string expression) => SameBody(expected, Shown(expression));

    // ---- gsub ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("'hell0 w0rld' 2", "('hello world'):gsub('o', '0')")]
    [InlineData("'<hello> <world>' 2", "('hello world'):gsub('%w+', '<%0>')")]
    [InlineData("'cba%' 1", "('abc'):gsub('(a)(b)(c)', '%3%2%1%%')")]
    [InlineData("'abc' 3", "('abc'):gsub('%w', '%1')")]
    [InlineData("'ihgfedcbaabcdefghi' 1", "('abcdefghi'):gsub('(a)(b)(c)(d)(e)(f)(g)(h)(i)', '%9%8%7%6%5%4%3%2%1%0')")]
    [InlineData("'he34o' 2", "('hello'):gsub('()l', '%1')")]
    [InlineData("'world hello lua from' 2", "('hello world from lua'):gsub('(%w+) (%w+)', '%2 %1')")]
    [InlineData("'bbbb' 4", "string.gsub('abab', '%w', 'b')")]
    [InlineData("'aXXc' 1", "('abc'):gsub('b', '%0%0'):gsub('bb', 'XX')")]
    [InlineData("'a5c' 1", "('abc'):gsub('b', 5)")]
    [InlineData("'-a-b-c-' 4", "('abc'):gsub('', '-')")]
    [InlineData("'x' 1", "('abc'):gsub('%w*', 'x')")]
    [InlineData("'-a-c-' 3", "('abc'):gsub('b*', '-')")]
    [InlineData("'|a|b|c|' 4", "('a,b,,c'):gsub(',*', '|')")]
    [InlineData("'abc' 4", "('abc'):gsub('', '')")]
    [InlineData("'HI world' 2", "('hello world'):gsub('%w+', { hello = 'HI', world = false })")]
    [InlineData("'a1b' 1", "('a b'):gsub('%s', { [' '] = 1 })")]
    [InlineData("'a2b4' 2", "('a1b2'):gsub('%d', function(d) return d * 2 end)")]
    [InlineData("'AbC' 3", "('abc'):gsub('.', function(c) if c == 'b' then return nil end return c:upper() end)")]
    [InlineData("'bbaa' 2", "('aaaa'):gsub('a', 'b', 2)")]
    [InlineData("'aaaa' 0", "('aaaa'):gsub('a', 'b', 0)")]
    [InlineData("'x  ' 1", "('  x  '):gsub('^%s+', '')")]
    [InlineData("'baa' 1", "('aaa'):gsub('^a', 'b')")]
    [InlineData("'xabc' 1", "('abc'):gsub('^', 'x')")]
    [InlineData("'abc' 0", "('abc'):gsub('^b', 'x')")]
    [InlineData("'X X' 2", "('one two'):gsub('%f[%w]%w+', 'X')")]
    [InlineData("'he%o' 1", "('hello'):gsub('l+', '%%')")]
    [InlineData("error: invalid capture index %2", "('abc'):gsub('%w', '%2')")]
    [InlineData("error: invalid use of '%' in replacement string", "('abc'):gsub('%w', '%x')")]
    [InlineData("error: invalid replacement value (a boolean)", "('abc'):gsub('.', { a = true })")]
    [InlineData("error: invalid replacement value (a table)", "('abc'):gsub('.', function() return {} end)")]
    public void Gsub_matches_plain_lua(string expected, string expression) => Same(expected, expression);

    [Fact]
    public void String_methods_on_values_use_the_same_engine()
    {
        Assert.Equal("'b' 2 'x-c' 1", LuaScripts.Eval("('abc'):match('b'), ('abc'):find('b'), ('abc'):gsub('^ab', 'x-')"));
    }

    [Fact]
    public void Gsub_refuses_a_replacement_of_another_type()
    {
        Assert.Equal("bad argument #3 to 'gsub' (string/function/table expected, got boolean)", LuaScripts.ErrorOf("('abc'):gsub('a', true)"));
        Assert.Equal("bad argument #3 to 'gsub' (string/function/table expected, got no value)", LuaScripts.ErrorOf("('abc'):gsub('a')"));
    }
}
