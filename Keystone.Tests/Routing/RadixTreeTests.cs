using Keystone.Routing;
using Keystone.Tests.Support;
using static Keystone.Tests.Routing.Resolved;

namespace Keystone.Tests.Routing;

public sealed class RadixTreeTests
{
    private const MethodSet Get = MethodSet.Get;
    private const MethodSet Post = MethodSet.Post;
    private const MethodSet All = MethodSet.All;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Static_segment_beats_parameter_whatever_the_insertion_order(bool reversed)
    {
        (string, string, MethodSet)[] routes = [("new", "/users/new", Get), ("id", "/users/{id}", Get)];
        var tree = Tree(reversed ? [routes[1], routes[0]] : routes);

        Assert.Equal("new", Lookup(tree, "/users/new", Get).Value);
        Assert.Equal("id", Lookup(tree, "/users/42", Get).Value);
        Assert.Equal("id", Lookup(tree, "/users/newer", Get).Value);
        Assert.Equal("id", Lookup(tree, "/users/ne", Get).Value);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Parameter_beats_catch_all_whatever_the_insertion_order(bool reversed)
    {
        (string, string, MethodSet)[] routes = [("rest", "/a/{*rest}", Get), ("x", "/a/{x}", Get), ("b", "/a/b", Get)];
        var tree = Tree(reversed ? [.. routes.Reverse()] : routes);

        Assert.Equal("b", Lookup(tree, "/a/b", Get).Value);
        Assert.Equal("x", Lookup(tree, "/a/c", Get).Value);
        Assert.Equal("rest", Lookup(tree, "/a/c/d", Get).Value);
        Assert.Equal("rest", Lookup(tree, "/a/b/d", Get).Value);
    }

    [Fact]
    public void Lookup_backtracks_to_parameter_when_static_leaf_lacks_the_method()
    {
        var tree = Tree(("new", "/users/new", Get), ("id", "/users/{id}", Get | Post));

        var post = Lookup(tree, "/users/new", Post);

        Assert.Equal("id", post.Value);
        Assert.Equal("new", post.Params["id"]);
    }

    [Fact]
    public void Lookup_backtracks_out_of_a_static_branch_that_dead_ends_deeper()
    {
        var tree = Tree(("static", "/users/new/edit", Get), ("param", "/users/{id}/view", Get), ("all", "/{*rest}", Get));

        Assert.Equal("param", Lookup(tree, "/users/new/view", Get).Value);
        Assert.Equal("all", Lookup(tree, "/users/new/other", Get).Value);
        Assert.Equal("users/new/other", Lookup(tree, "/users/new/other", Get).Params["rest"]);
    }

    [Fact]
    public void Lookup_backtracks_to_catch_all_when_deeper_leaves_lack_the_method()
    {
        var tree = Tree(("files", "/files", Get), ("one", "/files/{name}", Get), ("any", "/files/{*rest}", Post));

        Assert.Equal("files", Lookup(tree, "/files", Get).Value);
        Assert.Equal("any", Lookup(tree, "/files", Post).Value);
        Assert.Equal("any", Lookup(tree, "/files/x", Post).Value);
    }

    [Fact]
    public void Parameters_are_extracted_in_pattern_order()
    {
        var tree = Tree(("post", "/users/{user}/posts/{post}", Get));

        var match = Lookup(tree, "/users/ada/posts/7", Get);

        Assert.Equal(MatchKind.Found, match.Kind);
        Assert.Equal(["user", "post"], match.Params.Keys);
        Assert.Equal("ada", match.Params["user"]);
        Assert.Equal("7", match.Params["post"]);
    }

    [Fact]
    public void Route_without_parameters_reports_none()
    {
        var tree = Tree(("health", "/health", Get));
        Span<Range> ranges = stackalloc Range[16];

        var match = tree.Lookup("/health", Get, ranges);

        Assert.Equal(0, match.ParamCount);
        Assert.Empty(match.ParamNames);
    }

    [Fact]
    public void Parameter_never_matches_an_empty_segment()
    {
        var tree = Tree(("id", "/users/{id}", Get), ("posts", "/users/{id}/posts", Get));

        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/users/", Get).Kind);
        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/users//posts", Get).Kind);
    }

    [Fact]
    public void Encoded_slash_stays_inside_one_segment()
    {
        var tree = Tree(("id", "/users/{id}", Get), ("posts", "/users/{id}/posts", Get));

        var match = Lookup(tree, "/users/a%2Fb", Get);
        Assert.Equal("id", match.Value);
        Assert.Equal("a%2Fb", match.Params["id"]);
        Assert.Equal("a%2Fb", Lookup(tree, "/users/a%2Fb/posts", Get).Params["id"]);
        Assert.Equal("id", Lookup(tree, "/users/a%2Fposts", Get).Value);
    }

    [Fact]
    public void Trailing_slash_is_a_different_path()
    {
        var tree = Tree(("bare", "/users", Get), ("slash", "/docs/", Get));

        Assert.Equal("bare", Lookup(tree, "/users", Get).Value);
        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/users/", Get).Kind);
        Assert.Equal("slash", Lookup(tree, "/docs/", Get).Value);
        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/docs", Get).Kind);
    }

    [Theory]
    [InlineData("/files", "")]
    [InlineData("/files/", "")]
    [InlineData("/files/a", "a")]
    [InlineData("/files/a/b", "a/b")]
    [InlineData("/files/a/", "a/")]
    [InlineData("/files//a", "/a")]
    public void Catch_all_is_a_prefix_route_whose_value_excludes_the_leading_slash(string path, string rest)
    {
        var tree = Tree(("files", "/files/{*rest}", Get));

        var match = Lookup(tree, path, Get);

        Assert.Equal("files", match.Value);
        Assert.Equal(rest, match.Params["rest"]);
    }

    [Fact]
    public void Catch_all_does_not_match_a_longer_segment()
    {
        var tree = Tree(("files", "/files/{*rest}", Get));

        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/filesystem", Get).Kind);
        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/file", Get).Kind);
    }

    [Fact]
    public void Star_segment_is_an_unnamed_catch_all()
    {
        var tree = Tree(("files", "/files/*", Get));

        var match = Lookup(tree, "/files/a/b", Get);

        Assert.Equal("files", match.Value);
        Assert.Equal("a/b", match.Params["*"]);
    }

    [Fact]
    public void Catch_all_after_a_parameter_takes_the_rest()
    {
        var tree = Tree(("blob", "/repos/{repo}/blob/{*path}", Get));

        var match = Lookup(tree, "/repos/keystone/blob/src/main.cs", Get);

        Assert.Equal("keystone", match.Params["repo"]);
        Assert.Equal("src/main.cs", match.Params["path"]);
    }

    [Fact]
    public void Root_route_matches_only_the_root()
    {
        var tree = Tree(("root", "/", Get), ("about", "/about", Get));

        Assert.Equal("root", Lookup(tree, "/", Get).Value);
        Assert.Equal("about", Lookup(tree, "/about", Get).Value);
        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/x", Get).Kind);
    }

    [Fact]
    public void Root_catch_all_matches_everything_left_over()
    {
        var tree = Tree(("all", "/{*rest}", Get), ("api", "/api/users", Get));

        Assert.Equal("", Lookup(tree, "/", Get).Params["rest"]);
        Assert.Equal("x/y", Lookup(tree, "/x/y", Get).Params["rest"]);
        Assert.Equal("api", Lookup(tree, "/api/users", Get).Value);
        Assert.Equal("api/users/1", Lookup(tree, "/api/users/1", Get).Params["rest"]);
    }

    [Fact]
    public void Method_mismatch_gives_405_with_the_union_of_methods_on_that_path()
    {
        var tree = Tree(
            ("static", "/users/new", Post),
            ("param", "/users/{id}", MethodSet.Put),
            ("all", "/users/{*rest}", MethodSet.Delete),
            ("other", "/other", MethodSet.Patch));

        var match = Lookup(tree, "/users/new", Get);

        Assert.Equal(MatchKind.MethodNotAllowed, match.Kind);
        Assert.Equal(Post | MethodSet.Put | MethodSet.Delete, match.Allowed);
        Assert.Null(match.Value);
    }

    [Fact]
    public void Allowed_methods_include_head_where_get_is_allowed()
    {
        var tree = Tree(("users", "/users", Get));

        Assert.Equal(Get | MethodSet.Head, Lookup(tree, "/users", Post).Allowed);
    }

    [Fact]
    public void Unmatched_path_gives_404_even_when_other_paths_exist()
    {
        var tree = Tree(("users", "/users", Get));

        var match = Lookup(tree, "/orders", Get);

        Assert.Equal(MatchKind.NotFound, match.Kind);
        Assert.Equal(MethodSet.None, match.Allowed);
    }

    [Fact]
    public void Head_is_served_by_a_get_route()
    {
        var tree = Tree(("users", "/users", Get));

        Assert.Equal("users", Lookup(tree, "/users", MethodSet.Head).Value);
    }

    [Fact]
    public void Explicit_head_route_beats_get_route_on_the_same_path()
    {
        var tree = Tree(("get", "/users", Get), ("head", "/users", MethodSet.Head));

        Assert.Equal("head", Lookup(tree, "/users", MethodSet.Head).Value);
        Assert.Equal("get", Lookup(tree, "/users", Get).Value);
    }

    [Fact]
    public void Unknown_method_matches_only_routes_for_any_method()
    {
        var tree = Tree(("named", "/a", MethodSet.All & ~MethodSet.Trace), ("any", "/b", All));

        Assert.Equal(MatchKind.MethodNotAllowed, Lookup(tree, "/a", MethodSet.None).Kind);
        Assert.Equal("any", Lookup(tree, "/b", MethodSet.None).Value);
    }

    [Fact]
    public void Same_shape_with_different_methods_is_not_a_conflict()
    {
        var tree = Tree(("get", "/users/{id}", Get), ("post", "/users/{name}", Post));

        var post = Lookup(tree, "/users/7", Post);

        Assert.Equal("post", post.Value);
        Assert.Equal("7", post.Params["name"]);
        Assert.Equal("7", Lookup(tree, "/users/7", Get).Params["id"]);
    }

    [Fact]
    public void Same_shape_and_method_with_different_parameter_names_is_a_conflict_naming_both_routes()
    {
        var tree = Tree(("a", "/users/{id}", Get));

        string? error = tree.Add("/users/{name}", Get, "b", "b");

        Assert.Equal("route 'b' (GET /users/{name}) conflicts with route 'a' (GET /users/{id})", error);
        Assert.Equal("a", Lookup(tree, "/users/1", Get).Value);
        Assert.Equal(1, tree.Count);
    }

    [Theory]
    [InlineData("/files/{*rest}", "/files/*")]
    [InlineData("/", "/")]
    [InlineData("/a/{x}/b", "/a/{y}/b")]
    public void Same_shape_and_overlapping_methods_is_a_conflict(string first, string second)
    {
        var tree = Tree(("first", first, Get | Post));

        string? error = tree.Add(second, All, "second", "second");

        Assert.NotNull(error);
        Assert.Contains("'first'", error);
        Assert.Contains("'second'", error);
    }

    [Theory]
    [InlineData("/users/{id}", "/users/{id}/")]
    [InlineData("/users/{id}", "/users/{*id}")]
    [InlineData("/users/{id}", "/users/id")]
    [InlineData("/files", "/files/{*rest}")]
    public void Different_shapes_are_not_a_conflict(string first, string second)
    {
        var tree = new RadixTree<string>();

        Assert.Null(tree.Add(first, Get, "first", "first"));
        Assert.Null(tree.Add(second, Get, "second", "second"));
    }

    [Theory]
    [InlineData("users")]
    [InlineData("")]
    [InlineData("/files/{*rest}/more")]
    [InlineData("/files/*/more")]
    [InlineData("/a/{}")]
    [InlineData("/a/{*}")]
    [InlineData("/a/{id")]
    [InlineData("/a/id}")]
    [InlineData("/a{id}")]
    [InlineData("/a/{id}b")]
    [InlineData("/a/{i{d}}")]
    [InlineData("/a/{id}/{id}")]
    [InlineData("/a/{id}/{*id}")]
    [InlineData("/a?b=1")]
    [InlineData("/a#top")]
    [InlineData("/a*")]
    [InlineData("/a/{id:int}")]
    public void Invalid_pattern_is_rejected_with_its_text(string pattern)
    {
        var tree = new RadixTree<string>();

        string? error = tree.Add(pattern, Get, "r", "r");

        Assert.NotNull(error);
        Assert.Contains("'r'", error);
        Assert.Contains($"'{pattern}'", error);
        Assert.Equal(0, tree.Count);
    }

    [Fact]
    public void Route_without_methods_is_rejected()
    {
        Assert.NotNull(new RadixTree<string>().Add("/a", MethodSet.None, "r", "r"));
    }

    [Fact]
    public void Branch_needing_more_parameters_than_the_span_holds_does_not_match()
    {
        var tree = Tree(("two", "/{a}/{b}", Get), ("all", "/{*rest}", Get));
        Span<Range> one = stackalloc Range[1];

        var match = tree.Lookup("/x/y", Get, one);

        Assert.Equal("all", match.Value);
        Assert.Equal("x/y", "/x/y"[one[0]]);
    }

    [Fact]
    public void Path_text_is_case_sensitive()
    {
        var tree = Tree(("users", "/users", Get));

        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/Users", Get).Kind);
    }

    [Fact]
    public void Shared_prefixes_split_without_losing_routes()
    {
        var tree = Tree(
            ("search", "/search", Get),
            ("support", "/support", Get),
            ("blog", "/blog/{post}", Get),
            ("blob", "/blob/{*path}", Get),
            ("s", "/s", Get),
            ("se", "/se", Get));

        Assert.Equal("search", Lookup(tree, "/search", Get).Value);
        Assert.Equal("support", Lookup(tree, "/support", Get).Value);
        Assert.Equal("s", Lookup(tree, "/s", Get).Value);
        Assert.Equal("se", Lookup(tree, "/se", Get).Value);
        Assert.Equal("blog", Lookup(tree, "/blog/hello", Get).Value);
        Assert.Equal("blob", Lookup(tree, "/blob/a/b", Get).Value);
        Assert.Equal(MatchKind.NotFound, Lookup(tree, "/sea", Get).Kind);
    }

    [Fact]
    public void Lookup_does_not_allocate()
    {
        var tree = Tree(
            ("new", "/users/new", Get),
            ("id", "/users/{id}", Get | Post),
            ("posts", "/users/{id}/posts/{post}", Get),
            ("files", "/files/{*rest}", All));
        string[] paths = ["/users/new", "/users/42", "/users/42/posts/7", "/files/a/b", "/missing", "/users/new"];
        var ranges = new Range[16];
        int found = 0;
        long allocated = Allocations.LeastOf(3, () =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                foreach (string path in paths)
                {
                    var match = tree.Lookup(path, i % 2 == 0 ? Get : Post, ranges);
                    found += match.Kind == MatchKind.Found ? 1 : 0;
                }
            }
        });

        Assert.Equal(0, allocated);
        Assert.True(found > 0);
    }
}
