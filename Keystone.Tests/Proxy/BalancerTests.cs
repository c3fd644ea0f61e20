using System.Net;
using Keystone.Proxy;
using Keystone.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using Xunit.Abstractions;

namespace Keystone.Tests.Proxy;

/// <summary>The balancers in isolation: health, load, weights, the hash ring's remapping, and hash keys.</summary>
public sealed class BalancerTests
{
    private readonly ITestOutputHelper _output;

    public BalancerTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public static TheoryData<string> Kinds => new()
    {
        "round_robin", "least_requests", "random",
        "hash:client_ip", "hash:header:X-User", "hash:cookie:sid", "hash:header:X-Absent",
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Balancer_skips_unhealthy_targets(string kind)
    {
        var targets = Targets(1, 1, 1);
        var balancer = Build(kind, targets);
        Eject(targets[0]);
        Eject(targets[2]);

        var contexts = Contexts(200);
        foreach (var context in contexts)
            Assert.Same(targets[1], balancer.Pick(context));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Balancer_returns_null_when_every_target_is_unhealthy(string kind)
    {
        var targets = Targets(1, 2, 3);
        var single = Targets(1);
        var balancer = Build(kind, targets);
        var alone = Build(kind, single);
        foreach (var t in targets) Eject(t);
        Eject(single[0]);

        foreach (var context in Contexts(50))
        {
            Assert.Null(balancer.Pick(context));
            Assert.Null(alone.Pick(context));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Balancer_returns_a_target_that_is_healthy_again(string kind)
    {
        var targets = Targets(1, 1);
        var balancer = Build(kind, targets);
        Eject(targets[0]);
        Eject(targets[1]);
        Admit(targets[0]);

        foreach (var context in Contexts(50))
            Assert.Same(targets[0], balancer.Pick(context));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Balancer_picks_without_allocating_after_warm_up(string kind)
    {
        var targets = Targets(1, 2, 3, 1);
        var balancer = Build(kind, targets);
        Eject(targets[3]); // unhealthy targets are walked past on the hot path too
        var contexts = Contexts(64);
        long allocated = Allocations.LeastOf(3, () =>
        {
            for (int i = 0; i < 10_000; i++) balancer.Pick(contexts[i % contexts.Length]);
        });

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Least_requests_with_two_targets_always_picks_the_one_with_fewer_in_flight()
    {
        var targets = Targets(1, 1);
        targets[0].InFlight = 3;
        targets[1].InFlight = 2;
        var balancer = new LeastRequests(targets);

        for (int i = 0; i < 500; i++)
            Assert.Same(targets[1], balancer.Pick(new DefaultHttpContext()));
    }

    [Fact]
    public void Least_requests_never_picks_the_busiest_of_three()
    {
        var targets = Targets(1, 1, 1);
        targets[0].InFlight = 10;
        targets[1].InFlight = 0;
        targets[2].InFlight = 5;
        var balancer = new LeastRequests(targets);
        var context = new DefaultHttpContext();

        var counts = new int[3];
        for (int i = 0; i < 3_000; i++) counts[Array.IndexOf(targets, balancer.Pick(context))]++;

        // The idlest wins every pair it is drawn into (2 pairs of 3), the middle one only the pair with the busiest.
        Assert.Equal(0, counts[0]);
        Assert.InRange(counts[1], 1_700, 2_300);
        Assert.InRange(counts[2], 700, 1_300);
    }

    [Fact]
    public void Least_requests_compares_load_per_unit_of_weight()
    {
        var targets = Targets(4, 1);
        targets[0].InFlight = 4; // 1 per unit of weight
        targets[1].InFlight = 2; // 2 per unit of weight
        var balancer = new LeastRequests(targets);

        for (int i = 0; i < 200; i++)
            Assert.Same(targets[0], balancer.Pick(new DefaultHttpContext()));
    }

    [Fact]
    public void Least_requests_under_equal_load_draws_by_weight()
    {
        var targets = Targets(1, 1, 2);
        var balancer = new LeastRequests(targets);
        var context = new DefaultHttpContext();

        var counts = new int[3];
        for (int i = 0; i < 40_000; i++) counts[Array.IndexOf(targets, balancer.Pick(context))]++;

        // Ties go to the first draw, which is weighted: 1/4, 1/4, 1/2.
        Assert.InRange(counts[0], 8_800, 11_200);
        Assert.InRange(counts[1], 8_800, 11_200);
        Assert.InRange(counts[2], 18_800, 21_200);
    }

    [Fact]
    public void Random_follows_weights()
    {
        var targets = Targets(1, 3);
        var balancer = new RandomBalancer(targets);
        var context = new DefaultHttpContext();

        int heavy = 0;
        for (int i = 0; i < 40_000; i++)
            if (balancer.Pick(context) == targets[1]) heavy++;

        Assert.InRange(heavy / 40_000.0, 0.72, 0.78);
    }

    [Fact]
    public void Random_gives_an_ejected_targets_share_to_the_others_by_weight()
    {
        var targets = Targets(5, 1, 3);
        var balancer = new RandomBalancer(targets);
        Eject(targets[0]);
        var context = new DefaultHttpContext();

        int heavy = 0;
        for (int i = 0; i < 40_000; i++)
            if (balancer.Pick(context) == targets[2]) heavy++;

        Assert.InRange(heavy / 40_000.0, 0.72, 0.78);
    }

    [Fact]
    public void Hash_sends_the_same_key_to_the_same_target_every_time_and_in_every_instance()
    {
        var targets = Targets(1, 1, 1, 1);
        var first = Ring(targets);
        var second = Ring(Targets(1, 1, 1, 1));
        var reordered = Ring([targets[2], targets[0], targets[3], targets[1]]);

        for (int i = 0; i < 1_000; i++)
        {
            var key = "user-" + i;
            var owner = Owner(first, key);
            for (int repeat = 0; repeat < 3; repeat++) Assert.Same(owner, Owner(first, key));
            Assert.Equal(owner!.Name, Owner(second, key)!.Name);
            Assert.Same(owner, Owner(reordered, key));
        }
    }

    [Fact]
    public void Hash_function_is_fixed_so_keys_keep_their_target_across_processes()
    {
        // Golden values: a change here remaps every client of every hashed upstream on upgrade.
        Assert.Equal(0xEFD01F60BA992926UL, HashKey.Hash(""));
        Assert.Equal(0x6BA54D52C4C45CE4UL, HashKey.Hash("10.0.0.1-0"));
    }

    [Fact]
    public void Removing_one_of_four_targets_keeps_at_least_70_percent_of_keys_and_spreads_the_rest()
    {
        var targets = Targets(1, 1, 1, 1);
        var four = Ring(targets);
        var three = Ring([targets[0], targets[1], targets[3]]);
        var removed = targets[2];

        int kept = 0, moved = 0;
        var movedTo = new Dictionary<Target, int>();
        for (int i = 0; i < 10_000; i++)
        {
            var key = "user-" + i;
            var before = Owner(four, key)!;
            var after = Owner(three, key)!;
            if (before == after)
            {
                kept++;
                continue;
            }
            Assert.Same(removed, before); // only the removed target's keys move
            moved++;
            movedTo[after] = movedTo.GetValueOrDefault(after) + 1;
        }

        _output.WriteLine($"kept {kept / 100.0:0.00}% of 10,000 keys; moved {moved}: {string.Join(", ", movedTo.Select(p => $"{p.Key.Name}={p.Value}"))}");
        Assert.True(kept >= 7_000, $"kept {kept} of 10,000 keys");
        Assert.Equal(3, movedTo.Count);
        foreach (var share in movedTo.Values) Assert.True(share >= moved / 5, $"moved keys spread unevenly: {share} of {moved}");
    }

    [Fact]
    public void Adding_the_removed_target_back_restores_every_key()
    {
        var targets = Targets(1, 1, 1, 1);
        var original = Ring(targets);
        _ = Ring([targets[0], targets[1], targets[3]]);
        var restored = Ring(Targets(1, 1, 1, 1));

        for (int i = 0; i < 10_000; i++)
            Assert.Equal(Owner(original, "user-" + i)!.Name, Owner(restored, "user-" + i)!.Name);
    }

    [Fact]
    public void Adding_a_fifth_target_moves_only_keys_onto_it()
    {
        var four = Ring(Targets(1, 1, 1, 1));
        var five = Ring(Targets(1, 1, 1, 1, 1));

        int moved = 0;
        for (int i = 0; i < 10_000; i++)
        {
            var before = Owner(four, "user-" + i)!;
            var after = Owner(five, "user-" + i)!;
            if (before.Name == after.Name) continue;
            Assert.Equal("10.0.0.5", after.Name);
            moved++;
        }
        Assert.InRange(moved, 1_200, 2_800); // a fair share is 1/5
    }

    [Fact]
    public void Ejecting_a_target_moves_only_its_keys_and_readmitting_it_moves_them_back()
    {
        var targets = Targets(1, 1, 1, 1);
        var ring = Ring(targets);
        var owners = new Target[10_000];
        for (int i = 0; i < owners.Length; i++) owners[i] = Owner(ring, "user-" + i)!;

        Eject(targets[1]);
        int moved = 0;
        for (int i = 0; i < owners.Length; i++)
        {
            var now = Owner(ring, "user-" + i)!;
            if (owners[i] == targets[1])
            {
                Assert.NotSame(targets[1], now);
                moved++;
            }
            else
            {
                Assert.Same(owners[i], now);
            }
        }
        Assert.InRange(moved, 1_500, 3_500);

        Admit(targets[1]);
        for (int i = 0; i < owners.Length; i++)
            Assert.Same(owners[i], Owner(ring, "user-" + i));
    }

    [Fact]
    public void Hash_ring_shares_follow_weights()
    {
        var targets = Targets(1, 1, 2);
        var ring = Ring(targets);

        var counts = new int[3];
        for (int i = 0; i < 20_000; i++) counts[Array.IndexOf(targets, Owner(ring, "user-" + i))]++;

        Assert.InRange(counts[0], 4_000, 6_000);
        Assert.InRange(counts[1], 4_000, 6_000);
        Assert.InRange(counts[2], 8_500, 11_500);
    }

    [Fact]
    public void Hash_without_a_key_goes_round_robin_over_healthy_targets()
    {
        var targets = Targets(1, 1, 1);
        var balancer = new ConsistentHash(targets, HashKey.Parse("cookie:sid"));
        Eject(targets[1]);
        var context = new DefaultHttpContext();
        context.Request.Headers.Cookie = "other=1";

        var picks = new Target?[6];
        for (int i = 0; i < picks.Length; i++) picks[i] = balancer.Pick(context);

        Assert.Equal([targets[0], targets[2], targets[0], targets[2], targets[0], targets[2]], picks);
    }

    [Theory]
    [InlineData("client_ip", HashKeySource.ClientIp, null)]
    [InlineData("header:X-User-Id", HashKeySource.Header, "X-User-Id")]
    [InlineData("cookie:sid", HashKeySource.Cookie, "sid")]
    [InlineData("cookie:__Host-session", HashKeySource.Cookie, "__Host-session")]
    public void Hash_key_parses_each_source(string text, HashKeySource source, string? name)
    {
        Assert.True(HashKey.TryParse(text, out var key, out var error));
        Assert.Null(error);
        Assert.Equal(source, key.Source);
        Assert.Equal(name, key.Name);
        Assert.Equal(text, key.ToString());
    }

    [Theory]
    [InlineData("header:", "hash_on 'header:' needs a header name after 'header:', e.g. header:X-User-Id")]
    [InlineData("header", "hash_on 'header' needs a header name after 'header:', e.g. header:X-User-Id")]
    [InlineData("cookie:", "hash_on 'cookie:' needs a cookie name after 'cookie:', e.g. cookie:session")]
    [InlineData("ip", "hash_on 'ip' is not client_ip, header:<name> or cookie:<name>")]
    [InlineData("query:user", "hash_on 'query:user' is not client_ip, header:<name> or cookie:<name>")]
    [InlineData("Client_IP", "hash_on 'Client_IP' is not client_ip, header:<name> or cookie:<name>")]
    [InlineData("", "hash_on is empty; use client_ip, header:<name> or cookie:<name>")]
    [InlineData("header:X User", "hash_on 'header:X User': ' ' cannot appear in a header name")]
    [InlineData("cookie:a=b", "hash_on 'cookie:a=b': '=' cannot appear in a cookie name")]
    public void Hash_key_parse_errors_say_what_is_wrong(string text, string message)
    {
        Assert.False(HashKey.TryParse(text, out _, out var error));
        Assert.Equal(message, error);
        Assert.Throws<ArgumentException>(() => HashKey.Parse(text));
    }

    [Theory]
    [InlineData("10.1.2.3", "10.1.2.3")]
    [InlineData("2001:db8::1", "2001:db8::1")]
    [InlineData("::ffff:10.1.2.3", "10.1.2.3")]
    [InlineData("fe80::1%3", "fe80::1%3")]
    public void Client_ip_key_is_the_address_text_with_mapped_ipv4_unwrapped(string address, string expected)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(address);

        Assert.Equal(expected, Read("client_ip", context));
    }

    [Fact]
    public void Client_ip_key_is_missing_without_a_remote_address()
    {
        Assert.Null(Read("client_ip", new DefaultHttpContext()));
    }

    [Fact]
    public void Header_key_is_the_first_value_and_missing_when_absent_or_empty()
    {
        var context = new DefaultHttpContext();
        Assert.Null(Read("header:X-User", context));

        context.Request.Headers["X-User"] = "";
        Assert.Null(Read("header:X-User", context));

        context.Request.Headers["x-user"] = new StringValues(["alice", "bob"]);
        Assert.Equal("alice", Read("header:X-User", context));
    }

    [Theory]
    [InlineData("a=1; sid=xyz; b=2", "xyz")]
    [InlineData("sid=xyz", "xyz")]
    [InlineData("a=1;sid=xyz", "xyz")]
    [InlineData("xsid=1; sid=2; sidx=3", "2")]
    [InlineData("sid=\"quoted\"", "quoted")]
    [InlineData("sid=a=b", "a=b")]
    [InlineData("sid=; sid=second", "second")]
    [InlineData("  sid = spaced  ;", "spaced")]
    [InlineData("a=1; b=2", null)]
    [InlineData("SID=upper", null)]
    [InlineData("sid", null)]
    [InlineData("sid=", null)]
    [InlineData("", null)]
    public void Cookie_key_is_found_in_the_cookie_header(string header, string? expected)
    {
        var context = new DefaultHttpContext();
        context.Request.Headers.Cookie = header;

        Assert.Equal(expected, Read("cookie:sid", context));
    }

    [Fact]
    public void Cookie_key_is_found_in_a_later_cookie_header_field()
    {
        var context = new DefaultHttpContext();
        context.Request.Headers.Cookie = new StringValues(["a=1", "b=2; sid=later"]);

        Assert.Equal("later", Read("cookie:sid", context));
    }

    private static ILoadBalancer Build(string kind, Target[] targets) => kind switch
    {
        "round_robin" => new SmoothWeightedRoundRobin(targets),
        "least_requests" => new LeastRequests(targets),
        "random" => new RandomBalancer(targets),
        _ => new ConsistentHash(targets, HashKey.Parse(kind["hash:".Length..])),
    };

    /// <summary>Requests that carry every kind of key, varied, over IPv4, IPv6 and mapped client addresses.</summary>
    private static DefaultHttpContext[] Contexts(int count)
    {
        var contexts = new DefaultHttpContext[count];
        for (int i = 0; i < count; i++)
        {
            var context = new DefaultHttpContext();
            context.Connection.RemoteIpAddress = (i % 3) switch
            {
                0 => new IPAddress([10, 0, (byte)(i >> 8), (byte)i]),
                1 => IPAddress.Parse($"2001:db8::{i:x}"),
                _ => IPAddress.Parse($"::ffff:192.168.0.{i}"),
            };
            context.Request.Headers["X-User"] = "user-" + i;
            context.Request.Headers.Cookie = $"a=1; sid=session-{i}; b=2";
            contexts[i] = context;
        }
        return contexts;
    }

    private static Target[] Targets(params int[] weights)
    {
        var targets = new Target[weights.Length];
        for (int i = 0; i < weights.Length; i++)
            targets[i] = new Target("up", new Uri($"http://10.0.0.{i + 1}:80"), weights[i]);
        return targets;
    }

    private static ConsistentHash Ring(Target[] targets) => new(targets, HashKey.Parse("header:X-User"));

    private static Target? Owner(ConsistentHash ring, string key)
    {
        var context = new DefaultHttpContext();
        context.Request.Headers["X-User"] = key;
        return ring.Pick(context);
    }

    private static string? Read(string hashOn, HttpContext context)
    {
        Span<char> scratch = stackalloc char[HashKey.ScratchChars];
        return HashKey.Parse(hashOn).TryRead(context, scratch, out var key) ? key.ToString() : null;
    }

    private static void Eject(Target target) => target.Health.Record(false, 1, "x", 1, 1);

    private static void Admit(Target target) => target.Health.Record(true, 1, null, 1, 1);
}
