using static Keystone.Tests.Configuration.TestConfig;

namespace Keystone.Tests.Configuration;

/// <summary>Header names and values in <c>set_headers</c>, <c>remove_headers</c> and <c>respond.headers</c>.</summary>
public sealed class HeaderErrorTests
{
    [Fact]
    public void Set_header_with_an_invalid_name_is_rejected_at_the_name()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: r
                path: /
                upstream: api
                set_headers:
                  X Bad: value
            """);

        Assert.Equal(At(9, 7) + "route 'r': 'X Bad' is not a valid header name", error);
    }

    [Fact]
    public void Header_value_with_cr_lf_is_rejected_as_header_injection()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: r
                path: /
                upstream: api
                set_headers:
                  X-Note: "one\r\nX-Injected: two"
            """);

        Assert.Equal(At(9, 7) + "route 'r': header 'X-Note' has a CR, LF or NUL in its value", error);
    }

    [Fact]
    public void Respond_header_value_with_a_newline_is_rejected()
    {
        var error = SingleError("""
            routes:
              - name: r
                path: /
                respond:
                  headers:
                    Content-Type: "text/plain\nX-Evil: 1"
            """);

        Assert.Equal(At(6, 9) + "route 'r': header 'Content-Type' has a CR, LF or NUL in its value", error);
    }

    [Theory]
    [InlineData("Host")]
    [InlineData("host")]
    public void Host_in_set_headers_points_to_preserve_host(string header)
    {
        var error = SingleError($"""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: r
                path: /
                upstream: api
                set_headers:
                  {header}: example.com
            """);

        Assert.Equal(At(9, 7) + "route 'r': set the Host header with the upstream's 'preserve_host' instead", error);
    }

    [Fact]
    public void Remove_header_with_an_invalid_name_is_rejected_at_the_item()
    {
        var error = SingleError("""
            upstreams:
              api:
                targets: [http://127.0.0.1:9001]
            routes:
              - name: r
                path: /
                upstream: api
                remove_headers: [X-Ok, "X: bad"]
            """);

        Assert.Equal(At(8, 28) + "route 'r': 'X: bad' is not a valid header name", error);
    }
}
