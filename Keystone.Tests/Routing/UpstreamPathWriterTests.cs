using Keystone.Routing;

namespace Keystone.Tests.Routing;

public sealed class UpstreamPathWriterTests
{
    private static string Decoded(string text) => Write(literal: "", decoded: text, out _);

    private static bool ClimbsOut(string literal, string decoded = "")
    {
        Write(literal, decoded, out var climbs);
        return climbs;
    }

    private static string Write(string literal, string decoded, out bool climbsOut)
    {
        var writer = new UpstreamPathWriter(4);
        try
        {
            writer.AppendLiteral(literal);
            writer.AppendDecoded(decoded);
            climbsOut = writer.ClimbsOut();
            Assert.Equal(writer.Written.ToString(), writer.ToString());
            return writer.ToString();
        }
        finally
        {
            writer.Dispose();
        }
    }

    [Theory]
    [InlineData("/users/42", "/users/42")]
    [InlineData("a-b._~", "a-b._~")]
    [InlineData("!$&'()*+,;=:@", "!$&'()*+,;=:@")]
    [InlineData("a b", "a%20b")]
    [InlineData("100%", "100%25")]
    [InlineData("%41", "%2541")]
    [InlineData("a?b#c", "a%3Fb%23c")]
    [InlineData("\"<>\\^`{|}", "%22%3C%3E%5C%5E%60%7B%7C%7D")]
    [InlineData("\t\r\n", "%09%0D%0A")]
    public void Decoded_text_is_percent_encoded_where_a_path_requires(string text, string expected)
    {
        Assert.Equal(expected, Decoded(text));
    }

    [Theory]
    [InlineData("café", "caf%C3%A9")]
    [InlineData("日本", "%E6%97%A5%E6%9C%AC")]
    [InlineData("😀", "%F0%9F%98%80")]
    public void Unicode_is_encoded_as_utf8_bytes(string text, string expected)
    {
        Assert.Equal(expected, Decoded(text));
    }

    [Fact]
    public void Lone_surrogate_becomes_the_replacement_character()
    {
        Assert.Equal("a%EF%BF%BDb", Decoded("a\uD800b"));
    }

    [Theory]
    [InlineData("a%2Fb", "a%2Fb")]
    [InlineData("a%2fb", "a%2Fb")]
    [InlineData("%2F", "%2F")]
    [InlineData("a%2", "a%252")]
    [InlineData("a%2Gb", "a%252Gb")]
    public void Encoded_slash_stays_encoded_and_other_percents_are_escaped(string text, string expected)
    {
        Assert.Equal(expected, Decoded(text));
    }

    [Fact]
    public void Literal_text_is_copied_as_is()
    {
        Assert.Equal("/v2%20x/a b", Write("/v2%20x/a b", "", out _));
    }

    [Fact]
    public void Writer_grows_past_its_initial_capacity()
    {
        var segment = new string('x', 500);
        var expected = "/" + segment + string.Concat(Enumerable.Repeat("%C3%A9", 300));

        Assert.Equal(expected, Write("/" + segment, new string('é', 300), out _));
    }

    [Theory]
    [InlineData("/a/../b")]
    [InlineData("/a/./b")]
    [InlineData("/..")]
    [InlineData("/a/..")]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("/a/..%2Fb")]
    [InlineData("/a%2F..%2Fb")]
    [InlineData("/a%2f..%2fb")]
    [InlineData("/a%2F.")]
    [InlineData("/a%2F..")]
    public void Dot_and_dot_dot_segments_climb_out_even_between_encoded_slashes(string path)
    {
        Assert.True(ClimbsOut(path));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/")]
    [InlineData("/a/b")]
    [InlineData("/a/...")]
    [InlineData("/a/..b")]
    [InlineData("/a/b..")]
    [InlineData("/a/.hidden")]
    [InlineData("/a%2Fb")]
    [InlineData("/a%2F...%2Fb")]
    public void Paths_without_dot_segments_do_not_climb_out(string path)
    {
        Assert.False(ClimbsOut(path));
    }

    [Theory]
    [InlineData("..")]
    [InlineData("../etc/passwd")]
    [InlineData("a/../../etc")]
    [InlineData("..%2F..%2Fetc")]
    [InlineData("x%2F..")]
    public void Parameter_value_that_walks_out_of_the_prefix_is_detected(string value)
    {
        Assert.True(ClimbsOut("/files/", value));
    }

    [Fact]
    public void Encoded_dots_in_a_parameter_are_escaped_and_do_not_climb_out()
    {
        // Kestrel has already decoded "%2E"; a literal "%2E" in the decoded value is text and gets "%25".
        Assert.Equal("/files/%252E%252E", Write("/files/", "%2E%2E", out var climbs));
        Assert.False(climbs);
    }
}
