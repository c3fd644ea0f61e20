using Keystone.Routing;
using Keystone.Tests.Support;

namespace Keystone.Tests.Routing;

public sealed class MethodsTests
{
    [Theory]
    [InlineData("GET", MethodSet.Get)]
    [InlineData("HEAD", MethodSet.Head)]
    [InlineData("POST", MethodSet.Post)]
    [InlineData("PUT", MethodSet.Put)]
    [InlineData("DELETE", MethodSet.Delete)]
    [InlineData("PATCH", MethodSet.Patch)]
    [InlineData("OPTIONS", MethodSet.Options)]
    [InlineData("TRACE", MethodSet.Trace)]
    public void Known_methods_parse_to_their_flag(string method, MethodSet expected) =>
        Assert.Equal(expected, Methods.Parse(method));

    [Theory]
    [InlineData("get")]
    [InlineData("Get")]
    [InlineData("CONNECT")]
    [InlineData("PROPFIND")]
    [InlineData("GETX")]
    [InlineData("")]
    public void Other_methods_parse_to_none_because_methods_are_case_sensitive_tokens(string method) =>
        Assert.Equal(MethodSet.None, Methods.Parse(method));

    [Fact]
    public void Allow_header_lists_methods_in_fixed_order()
    {
        Assert.Equal("GET, HEAD, POST", Methods.AllowHeader(MethodSet.Post | MethodSet.Get | MethodSet.Head));
        Assert.Equal("PUT, DELETE, TRACE", Methods.AllowHeader(MethodSet.Trace | MethodSet.Delete | MethodSet.Put));
        Assert.Equal("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE", Methods.AllowHeader(MethodSet.All));
        Assert.Equal("", Methods.AllowHeader(MethodSet.None));
    }

    [Fact]
    public void Allow_header_is_cached_per_set()
    {
        var set = MethodSet.Get | MethodSet.Patch;
        Assert.Same(Methods.AllowHeader(set), Methods.AllowHeader(set));
    }

    [Fact]
    public void Parse_and_allow_header_do_not_allocate()
    {
        long allocated = Allocations.LeastOf(3, static () =>
        {
            for (int i = 0; i < 1000; i++)
            {
                Methods.Parse("DELETE");
                Methods.Parse("BREW");
                Methods.AllowHeader((MethodSet)(i & 255));
            }
        });

        Assert.Equal(0, allocated);
    }
}
