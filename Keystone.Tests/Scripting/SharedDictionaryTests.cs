using System.Text;
using Keystone.Scripting;
using Keystone.Tests.Support;

namespace Keystone.Tests.Scripting;

public sealed class SharedDictionaryTests
{
    private const int Overhead = SharedDictionary.EntryOverheadBytes;

    // A one-byte key holding a number: 1 + 8 + overhead.
    private const int SmallNumberEntry = 1 + 8 + Overhead;

    /// <summary>A clock that moves only when the test advances it; timestamps are <see cref="TimeSpan"/> ticks.</summary>
    private sealed class FakeClock : TimeProvider
    {
        // Away from zero so that nothing passes by comparing against an unset timestamp.
        private long _ticks = TimeSpan.TicksPerDay;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UnixEpoch.AddTicks(Interlocked.Read(ref _ticks));

        public void Advance(double seconds) => Interlocked.Add(ref _ticks, (long)(seconds * TimeSpan.TicksPerSecond));
    }

    private static byte[] B(string text) => Encoding.UTF8.GetBytes(text);

    private static string? GetString(SharedDictionary dict, string key) =>
        dict.TryGet(B(key), out var value) ? Encoding.UTF8.GetString(value.Bytes!) : null;

    private static double? GetNumber(SharedDictionary dict, string key) =>
        dict.TryGet(B(key), out var value) && value.Kind == SharedValueKind.Number ? value.Number : null;

    private static void SetNumber(SharedDictionary dict, string key, double number, double ttl = 0) =>
        Assert.Equal(SharedSetResult.Stored, dict.Set(B(key), SharedValue.FromNumber(number), ttl));

    [Fact]
    public void Values_of_each_kind_round_trip()
    {
        var dict = new SharedDictionary(1 << 20);
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("s"), SharedValue.FromString(B("héllo")), 0));
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("n"), SharedValue.FromNumber(-2.5), 0));
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("t"), SharedValue.FromBoolean(true), 0));
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("f"), SharedValue.FromBoolean(false), 0));

        Assert.True(dict.TryGet(B("s"), out var s));
        Assert.Equal(SharedValueKind.String, s.Kind);
        Assert.Equal(B("héllo"), s.Bytes);
        Assert.True(dict.TryGet(B("n"), out var n));
        Assert.Equal(SharedValueKind.Number, n.Kind);
        Assert.Equal(-2.5, n.Number);
        Assert.True(dict.TryGet(B("t"), out var t));
        Assert.Equal(SharedValueKind.Boolean, t.Kind);
        Assert.True(t.Boolean);
        Assert.True(dict.TryGet(B("f"), out var f));
        Assert.False(f.Boolean);
        Assert.Equal(4, dict.Count);
    }

    [Fact]
    public void Set_replaces_the_value_and_its_kind()
    {
        var dict = new SharedDictionary(1 << 20);
        dict.Set(B("k"), SharedValue.FromString(B("old")), 0);
        SetNumber(dict, "k", 7);
        Assert.Equal(7, GetNumber(dict, "k"));
        Assert.Equal(1, dict.Count);
        Assert.Equal(1 + 8 + Overhead, dict.UsedBytes);
    }

    [Fact]
    public void Missing_keys_read_as_missing()
    {
        var dict = new SharedDictionary(1 << 20);
        Assert.False(dict.TryGet(B("nope"), out var value));
        Assert.Equal(default, value);
        Assert.False(dict.Delete(B("nope")));
    }

    [Fact]
    public void Keys_are_raw_bytes_compared_by_content()
    {
        var dict = new SharedDictionary(1 << 20);
        byte[] binary = [0xFF, 0x00, 0xFE];
        dict.Set(binary, SharedValue.FromNumber(1), 0);
        dict.Set([0xFF, 0x00], SharedValue.FromNumber(2), 0);
        dict.Set([], SharedValue.FromNumber(3), 0);

        Assert.True(dict.TryGet(new byte[] { 0xFF, 0x00, 0xFE }, out var a));
        Assert.Equal(1, a.Number);
        Assert.True(dict.TryGet(new byte[] { 0xFF, 0x00 }, out var b));
        Assert.Equal(2, b.Number);
        Assert.True(dict.TryGet(ReadOnlySpan<byte>.Empty, out var c));
        Assert.Equal(3, c.Number);
        Assert.False(dict.TryGet(new byte[] { 0xFF }, out _));
    }

    [Fact]
    public void Changing_the_callers_key_array_does_not_change_the_stored_key()
    {
        var dict = new SharedDictionary(1 << 20);
        var key = B("key");
        dict.Set(key, SharedValue.FromNumber(1), 0);
        key[0] = (byte)'x';
        Assert.Equal(1, GetNumber(dict, "key"));
        Assert.Null(GetNumber(dict, "xey"));
    }

    [Fact]
    public void Delete_removes_the_key_and_reports_whether_it_was_there()
    {
        var dict = new SharedDictionary(1 << 20);
        SetNumber(dict, "k", 1);
        Assert.True(dict.Delete(B("k")));
        Assert.False(dict.TryGet(B("k"), out _));
        Assert.False(dict.Delete(B("k")));
        Assert.Equal(0, dict.Count);
    }

    [Fact]
    public void Entries_expire_when_their_ttl_passes_on_the_clock()
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(1 << 20, clock);
        dict.Set(B("k"), SharedValue.FromString(B("v")), 10);

        clock.Advance(9.9);
        Assert.Equal("v", GetString(dict, "k"));
        clock.Advance(0.1);
        Assert.Null(GetString(dict, "k"));
        Assert.False(dict.Delete(B("k")));
        Assert.Equal(0, dict.Count);
        Assert.Equal(0, dict.UsedBytes);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(1e300)]
    public void Zero_negative_nan_and_huge_ttls_never_expire(double ttl)
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(1 << 20, clock);
        SetNumber(dict, "k", 1, ttl);
        clock.Advance(100 * 365 * 86400.0);
        Assert.Equal(1, GetNumber(dict, "k"));
    }

    [Fact]
    public void Set_replaces_the_ttl()
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(1 << 20, clock);
        SetNumber(dict, "forever", 1, 5);
        SetNumber(dict, "forever", 2, 0);
        SetNumber(dict, "longer", 1, 5);
        SetNumber(dict, "longer", 2, 50);
        clock.Advance(10);
        Assert.Equal(2, GetNumber(dict, "forever"));
        Assert.Equal(2, GetNumber(dict, "longer"));
        clock.Advance(40);
        Assert.Null(GetNumber(dict, "longer"));
    }

    [Fact]
    public void Expired_entries_are_reclaimed_from_count_and_used_bytes()
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(1 << 20, clock);
        for (int i = 0; i < 100; i++) SetNumber(dict, "k" + i, i, ttl: 1 + i % 3);
        SetNumber(dict, "stays", 1);
        clock.Advance(3);
        Assert.Equal(1, dict.Count);
        Assert.Equal(5 + 8 + Overhead, dict.UsedBytes);
    }

    [Fact]
    public void Increment_of_a_missing_key_starts_at_zero_and_takes_the_ttl()
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(1 << 20, clock);
        Assert.True(dict.TryIncrement(B("hits"), 3, 60, out double value, out string? error));
        Assert.Null(error);
        Assert.Equal(3, value);
        Assert.True(dict.TryIncrement(B("hits"), -0.5, 60, out value, out _));
        Assert.Equal(2.5, value);
        Assert.Equal(2.5, GetNumber(dict, "hits"));
        clock.Advance(60);
        Assert.Null(GetNumber(dict, "hits"));
    }

    [Fact]
    public void Increment_of_an_existing_number_keeps_its_ttl()
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(1 << 20, clock);
        dict.TryIncrement(B("window"), 1, 10, out _, out _);
        clock.Advance(8);
        Assert.True(dict.TryIncrement(B("window"), 1, 10, out double value, out _));
        Assert.Equal(2, value);
        clock.Advance(2);
        Assert.Null(GetNumber(dict, "window"));
    }

    [Fact]
    public void Increment_of_an_expired_key_starts_again_at_zero_whatever_it_held()
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(1 << 20, clock);
        SetNumber(dict, "n", 100, 1);
        dict.Set(B("s"), SharedValue.FromString(B("text")), 1);
        clock.Advance(1);

        Assert.True(dict.TryIncrement(B("n"), 1, 0, out double n, out _));
        Assert.Equal(1, n);
        Assert.True(dict.TryIncrement(B("s"), 1, 0, out double s, out _));
        Assert.Equal(1, s);
        Assert.Equal(2 * (1 + 8 + Overhead), dict.UsedBytes);
    }

    [Fact]
    public void Increment_of_a_non_number_fails_and_leaves_the_value()
    {
        var dict = new SharedDictionary(1 << 20);
        dict.Set(B("s"), SharedValue.FromString(B("text")), 0);
        dict.Set(B("b"), SharedValue.FromBoolean(true), 0);

        Assert.False(dict.TryIncrement(B("s"), 1, 0, out _, out string? error));
        Assert.Equal("not a number", error);
        Assert.False(dict.TryIncrement(B("b"), 1, 0, out _, out error));
        Assert.Equal("not a number", error);
        Assert.Equal("text", GetString(dict, "s"));
    }

    [Fact]
    public void Keys_and_values_over_the_limits_are_refused()
    {
        var dict = new SharedDictionary(4L << 20);
        var longKey = new byte[SharedDictionary.MaxKeyBytes + 1];
        var bigValue = SharedValue.FromString(new byte[SharedDictionary.MaxValueBytes + 1]);

        Assert.Equal(SharedSetResult.TooLarge, dict.Set(longKey, SharedValue.FromNumber(1), 0));
        Assert.Equal(SharedSetResult.TooLarge, dict.Set(B("k"), bigValue, 0));
        Assert.False(dict.TryIncrement(longKey, 1, 0, out _, out string? error));
        Assert.Equal("key too long", error);
        Assert.Equal(0, dict.Count);
        Assert.Equal(0, dict.UsedBytes);

        // Exactly at the limits is fine.
        Assert.Equal(SharedSetResult.Stored, dict.Set(new byte[SharedDictionary.MaxKeyBytes], SharedValue.FromNumber(1), 0));
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("k"), SharedValue.FromString(new byte[SharedDictionary.MaxValueBytes]), 0));
    }

    [Fact]
    public void An_entry_larger_than_the_whole_dictionary_is_refused_without_evicting_anything()
    {
        var dict = new SharedDictionary(200);
        SetNumber(dict, "a", 1);
        var value = SharedValue.FromString(new byte[200 - Overhead]); // with the key, one byte too many
        Assert.Equal(SharedSetResult.TooLarge, dict.Set(B("a"), value, 0));
        Assert.Equal(SharedSetResult.TooLarge, dict.Set(B("b"), value, 0));
        Assert.Equal(1, GetNumber(dict, "a"));
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("b"), SharedValue.FromString(new byte[200 - Overhead - 1]), 0));
        Assert.Equal(1, dict.Count);

        var tiny = new SharedDictionary(Overhead);
        Assert.False(tiny.TryIncrement(B("k"), 1, 0, out _, out string? error));
        Assert.Equal("no memory", error);
    }

    [Fact]
    public void Used_bytes_count_key_value_and_overhead_and_return_to_zero_after_deletes()
    {
        var dict = new SharedDictionary(1 << 20);
        dict.Set(B("key"), SharedValue.FromString(B("12345")), 0);
        dict.Set(B("n"), SharedValue.FromNumber(1), 0);
        dict.Set(B("bool"), SharedValue.FromBoolean(true), 0);
        dict.TryIncrement(B("ctr"), 1, 0, out _, out _);
        Assert.Equal(3 + 5 + 1 + 8 + 4 + 8 + 3 + 8 + 4 * Overhead, dict.UsedBytes);

        dict.Set(B("key"), SharedValue.FromString(B("1")), 0);
        Assert.Equal(3 + 1 + 1 + 8 + 4 + 8 + 3 + 8 + 4 * Overhead, dict.UsedBytes);

        foreach (var key in new[] { "key", "n", "bool", "ctr" }) Assert.True(dict.Delete(B(key)));
        Assert.Equal(0, dict.UsedBytes);
        Assert.Equal(0, dict.Count);
    }

    [Fact]
    public void Least_recently_used_entries_are_evicted_first_and_reads_count_as_use()
    {
        var dict = new SharedDictionary(3 * SmallNumberEntry);
        SetNumber(dict, "a", 1);
        SetNumber(dict, "b", 2);
        SetNumber(dict, "c", 3);
        Assert.True(dict.TryGet(B("a"), out _)); // order of use now: b, c, a

        SetNumber(dict, "d", 4);
        Assert.Null(GetNumber(dict, "b"));
        Assert.Equal(3, dict.Count);

        dict.TryIncrement(B("c"), 1, 0, out _, out _); // order: a, d, c
        SetNumber(dict, "e", 5);
        Assert.Null(GetNumber(dict, "a"));
        Assert.Equal(4, GetNumber(dict, "c"));
        Assert.Equal(4, GetNumber(dict, "d"));
        Assert.Equal(5, GetNumber(dict, "e"));
        Assert.True(dict.UsedBytes <= dict.CapacityBytes);
    }

    [Fact]
    public void A_large_value_evicts_as_many_old_entries_as_it_needs()
    {
        var dict = new SharedDictionary(4 * SmallNumberEntry);
        foreach (var key in new[] { "a", "b", "c", "d" }) SetNumber(dict, key, 1);
        var value = SharedValue.FromString(new byte[SmallNumberEntry + 8]); // needs the room of two small entries
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("e"), value, 0));

        Assert.Null(GetNumber(dict, "a"));
        Assert.Null(GetNumber(dict, "b"));
        Assert.Equal(1, GetNumber(dict, "c"));
        Assert.Equal(1, GetNumber(dict, "d"));
        Assert.True(dict.UsedBytes <= dict.CapacityBytes);
    }

    [Fact]
    public void Growing_a_value_evicts_others_but_never_itself()
    {
        var dict = new SharedDictionary(3 * SmallNumberEntry);
        SetNumber(dict, "a", 1);
        SetNumber(dict, "b", 2);
        SetNumber(dict, "c", 3);
        // "a" is least recently used, yet it is the entry being replaced.
        var value = SharedValue.FromString(new byte[SmallNumberEntry + 8]);
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("a"), value, 0));

        Assert.True(dict.TryGet(B("a"), out var a));
        Assert.Equal(SmallNumberEntry + 8, a.Bytes!.Length);
        Assert.Null(GetNumber(dict, "b"));
        Assert.Equal(3, GetNumber(dict, "c"));
        Assert.Equal(2, dict.Count);
    }

    [Fact]
    public void Expired_entries_make_room_before_live_ones_are_evicted()
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(3 * SmallNumberEntry, clock);
        SetNumber(dict, "a", 1);        // least recently used, but live
        SetNumber(dict, "b", 2, ttl: 5);
        SetNumber(dict, "c", 3);
        clock.Advance(5);

        SetNumber(dict, "d", 4);
        Assert.Equal(1, GetNumber(dict, "a"));
        Assert.Equal(3, GetNumber(dict, "c"));
        Assert.Equal(4, GetNumber(dict, "d"));
        Assert.Equal(3, dict.Count);
    }

    [Fact]
    public void A_write_drops_every_expired_entry_it_needs_before_evicting_a_live_one()
    {
        // More expired entries than a write reclaims in passing, so the room must come from MakeRoom's expired pass.
        var clock = new FakeClock();
        var dict = new SharedDictionary(12 * SmallNumberEntry, clock);
        SetNumber(dict, "a", 1);
        for (int i = 0; i < 10; i++) SetNumber(dict, i.ToString(System.Globalization.CultureInfo.InvariantCulture), i, ttl: 5);
        SetNumber(dict, "z", 26);
        clock.Advance(5);

        var big = SharedValue.FromString(new byte[10 * SmallNumberEntry - Overhead - 3]);
        Assert.Equal(SharedSetResult.Stored, dict.Set(B("big"), big, 0));
        Assert.Equal(1, GetNumber(dict, "a"));
        Assert.Equal(26, GetNumber(dict, "z"));
        Assert.Equal(12 * SmallNumberEntry, dict.UsedBytes);
    }

    [Fact]
    public void Ttls_agree_with_a_simple_model_under_random_sets_deletes_and_increments()
    {
        var clock = new FakeClock();
        var dict = new SharedDictionary(1 << 20, clock);
        var model = new Dictionary<string, (double Value, double ExpiresAt)>();
        var random = new Random(1234);
        double now = 0;

        for (int step = 0; step < 5000; step++)
        {
            string key = "k" + random.Next(200);
            int ttl = random.Next(-2, 30); // <= 0: no expiry
            double expiresAt = ttl > 0 ? now + ttl : double.PositiveInfinity;
            bool live = model.TryGetValue(key, out var known) && known.ExpiresAt > now;
            switch (random.Next(4))
            {
                case 0:
                    SetNumber(dict, key, step, ttl);
                    model[key] = (step, expiresAt);
                    break;
                case 1:
                    Assert.Equal(live, dict.Delete(B(key)));
                    model.Remove(key);
                    break;
                case 2:
                    Assert.True(dict.TryIncrement(B(key), 1, ttl, out double value, out _));
                    model[key] = live ? (known.Value + 1, known.ExpiresAt) : (1, expiresAt);
                    Assert.Equal(model[key].Value, value);
                    break;
                default:
                    clock.Advance(1);
                    now += 1;
                    break;
            }
            if (step % 50 == 0)
            {
                foreach (var (k, entry) in model)
                    Assert.Equal(entry.ExpiresAt > now ? entry.Value : (double?)null, GetNumber(dict, k));
            }
        }
        int liveCount = 0;
        foreach (var entry in model.Values) if (entry.ExpiresAt > now) liveCount++;
        Assert.Equal(liveCount, dict.Count);
    }

    [Fact]
    public void Concurrent_increments_from_four_threads_add_up_exactly()
    {
        var dict = new SharedDictionary(1 << 20);
        const int PerThread = 10_000;
        using var start = new Barrier(4);
        var threads = new Thread[4];
        for (int t = 0; t < threads.Length; t++)
        {
            threads[t] = new Thread(() =>
            {
                ReadOnlySpan<byte> key = "hits"u8;
                start.SignalAndWait();
                for (int i = 0; i < PerThread; i++) dict.TryIncrement(key, 1, 0, out _, out _);
            });
            threads[t].Start();
        }
        foreach (var thread in threads) thread.Join();

        Assert.Equal(4 * PerThread, GetNumber(dict, "hits"));
    }

    [Fact]
    public void TryGet_and_TryIncrement_of_existing_keys_do_not_allocate()
    {
        var dict = new SharedDictionary(1 << 20);
        dict.Set(B("string"), SharedValue.FromString(B("value")), 0);
        dict.Set(B("counter"), SharedValue.FromNumber(0), 3600);
        long allocated = Allocations.LeastOf(3, () =>
        {
            for (int i = 0; i < 10_000; i++) Exercise(dict);
        });

        Assert.Equal(0, allocated);
        Assert.True(GetNumber(dict, "counter") >= 20_000); // the warm-up and at least one measured run counted

        static void Exercise(SharedDictionary dict)
        {
            dict.TryGet("string"u8, out _);
            dict.TryGet("missing"u8, out _);
            dict.TryIncrement("counter"u8, 1, 0, out _, out _);
        }
    }

    [Fact]
    public void Capacity_must_be_positive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SharedDictionary(0));
        Assert.Equal(1000, new SharedDictionary(1000).CapacityBytes);
    }
}
