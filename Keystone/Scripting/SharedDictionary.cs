namespace Keystone.Scripting;

/// <summary>What a <see cref="SharedValue"/> holds.</summary>
public enum SharedValueKind { String, Number, Boolean }

/// <summary>The outcome of <see cref="SharedDictionary.Set"/>.</summary>
public enum SharedSetResult
{
    Stored,
    /// <summary>The key or value is over its limit, or the entry alone is larger than the whole dictionary.</summary>
    TooLarge,
}

/// <summary>A value in a <see cref="SharedDictionary"/>: a Lua string (raw bytes), number or boolean.</summary>
public readonly struct SharedValue
{
    private SharedValue(SharedValueKind kind, byte[]? bytes, double number, bool boolean)
    {
        Kind = kind;
        Bytes = bytes;
        Number = number;
        Boolean = boolean;
    }

    public SharedValueKind Kind { get; }

    /// <summary>The string's bytes; shared with the dictionary, so nobody may write into it.</summary>
    public byte[]? Bytes { get; }

    public double Number { get; }

    public bool Boolean { get; }

    /// <summary>A string value. The dictionary keeps <paramref name="bytes"/> without copying it: do not modify it after <c>Set</c>.</summary>
    public static SharedValue FromString(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return new(SharedValueKind.String, bytes, 0, false);
    }

    public static SharedValue FromNumber(double number) => new(SharedValueKind.Number, null, number, false);

    public static SharedValue FromBoolean(bool boolean) => new(SharedValueKind.Boolean, null, 0, boolean);
}

/// <summary>
/// The process-wide store behind <c>keystone.shared</c> (nginx's lua_shared_dict): byte-string keys, one lock.
/// Each entry costs key bytes + value bytes (8 for a number or boolean) + <see cref="EntryOverheadBytes"/>.
/// A write that needs room first drops expired entries, then evicts least recently used ones (reads and
/// increments count as use) until the entry fits. TTLs run on the <see cref="TimeProvider"/>'s monotonic
/// timestamp; an expired entry reads as missing at once and its bytes are reclaimed lazily: a few per write,
/// all of them when room is needed or <see cref="Count"/>/<see cref="UsedBytes"/> is read.
/// </summary>
public sealed class SharedDictionary
{
    public const int MaxKeyBytes = 250;
    public const int MaxValueBytes = 1 << 20;
    public const int EntryOverheadBytes = 64;

    private const long Never = long.MaxValue;

    // Expired entries reclaimed per write, at most: more than one write can add, so reclaiming keeps ahead of
    // expiry without a single write paying for a mass expiry.
    private const int ReclaimPerWrite = 4;

    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly Dictionary<byte[], Entry> _map;
    private readonly Dictionary<byte[], Entry>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly Entry _lru = new([]); // sentinel of a circular list: Next is the most recently used, Prev the least
    private readonly ExpiryHeap _expiries = new();
    private long _used;

    public SharedDictionary(long capacityBytes, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        CapacityBytes = capacityBytes;
        _time = time ?? TimeProvider.System;
        _map = new Dictionary<byte[], Entry>(KeyComparer.Instance);
        _lookup = _map.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    public long CapacityBytes { get; }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                ReclaimExpired(_time.GetTimestamp(), int.MaxValue);
                return _map.Count;
            }
        }
    }

    public long UsedBytes
    {
        get
        {
            lock (_gate)
            {
                ReclaimExpired(_time.GetTimestamp(), int.MaxValue);
                return _used;
            }
        }
    }

    /// <summary>Reads a live entry and marks it used; does not allocate.</summary>
    public bool TryGet(ReadOnlySpan<byte> key, out SharedValue value)
    {
        lock (_gate)
        {
            if (_lookup.TryGetValue(key, out var entry))
            {
                if (entry.ExpiresAt > _time.GetTimestamp())
                {
                    MoveToFront(entry);
                    value = entry.Value;
                    return true;
                }
                Remove(entry);
            }
        }
        value = default;
        return false;
    }

    /// <summary>Stores <paramref name="value"/>, replacing any old one and its TTL; <paramref name="ttlSeconds"/> &lt;= 0 (or NaN) never expires.</summary>
    public SharedSetResult Set(ReadOnlySpan<byte> key, SharedValue value, double ttlSeconds)
    {
        if (value.Kind == SharedValueKind.String && value.Bytes is null) value = SharedValue.FromString([]);
        if (key.Length > MaxKeyBytes || ValueBytes(value) > MaxValueBytes) return SharedSetResult.TooLarge;
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            ReclaimExpired(now, ReclaimPerWrite);
            _lookup.TryGetValue(key, out var entry);
            return Store(key, entry, value, ExpiryAfter(ttlSeconds, now), now) ? SharedSetResult.Stored : SharedSetResult.TooLarge;
        }
    }

    /// <summary>
    /// Adds <paramref name="delta"/> to a number. A missing or expired key starts at 0 and takes
    /// <paramref name="ttlSeconds"/>; an existing number keeps its TTL (as nginx's incr with init). Errors:
    /// "not a number", "key too long", "no memory" (the entry alone exceeds the capacity).
    /// Does not allocate when the key already holds a number.
    /// </summary>
    public bool TryIncrement(ReadOnlySpan<byte> key, double delta, double ttlSeconds, out double newValue, out string? error)
    {
        newValue = 0;
        error = null;
        if (key.Length > MaxKeyBytes)
        {
            error = "key too long";
            return false;
        }
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            ReclaimExpired(now, ReclaimPerWrite);
            if (_lookup.TryGetValue(key, out var entry) && entry.ExpiresAt > now)
            {
                if (entry.Value.Kind != SharedValueKind.Number)
                {
                    error = "not a number";
                    return false;
                }
                newValue = entry.Value.Number + delta;
                entry.Value = SharedValue.FromNumber(newValue);
                MoveToFront(entry);
                return true;
            }
            if (!Store(key, entry, SharedValue.FromNumber(delta), ExpiryAfter(ttlSeconds, now), now))
            {
                error = "no memory";
                return false;
            }
            newValue = delta;
            return true;
        }
    }

    /// <summary>Removes the key; true when it held a live (unexpired) value.</summary>
    public bool Delete(ReadOnlySpan<byte> key)
    {
        lock (_gate)
        {
            if (!_lookup.TryGetValue(key, out var entry)) return false;
            bool live = entry.ExpiresAt > _time.GetTimestamp();
            Remove(entry);
            return live;
        }
    }

    // Caller holds the lock and has checked the key and value limits; entry is the key's current entry, if any.
    private bool Store(ReadOnlySpan<byte> key, Entry? entry, SharedValue value, long expiresAt, long now)
    {
        long size = (long)key.Length + ValueBytes(value) + EntryOverheadBytes;
        if (size > CapacityBytes) return false;
        if (entry is not null)
        {
            // Out of the LRU list and the expiry heap while making room, so that it cannot evict itself.
            Unlink(entry);
            _expiries.Remove(entry);
            _used -= entry.Size;
        }
        MakeRoom(size, now);
        if (entry is null)
        {
            entry = new Entry(key.ToArray());
            _map.Add(entry.Key, entry);
        }
        entry.Value = value;
        entry.Size = size;
        entry.ExpiresAt = expiresAt;
        if (expiresAt != Never) _expiries.Add(entry);
        LinkFirst(entry);
        _used += size;
        return true;
    }

    private void MakeRoom(long size, long now)
    {
        while (_used + size > CapacityBytes && _expiries.Peek() is { } soonest && soonest.ExpiresAt <= now)
            Remove(soonest);
        while (_used + size > CapacityBytes && _lru.Prev != _lru)
            Remove(_lru.Prev);
    }

    private void ReclaimExpired(long now, int limit)
    {
        while (limit-- > 0 && _expiries.Peek() is { } soonest && soonest.ExpiresAt <= now)
            Remove(soonest);
    }

    private void Remove(Entry entry)
    {
        Unlink(entry);
        _expiries.Remove(entry);
        _map.Remove(entry.Key);
        _used -= entry.Size;
    }

    private long ExpiryAfter(double ttlSeconds, long now)
    {
        if (!(ttlSeconds > 0)) return Never; // also NaN, which a script can pass
        // Rounded up so that a tiny TTL still outlives the write that set it; a huge or infinite one never expires.
        double ticks = Math.Ceiling(ttlSeconds * _time.TimestampFrequency);
        return ticks >= Never - now ? Never : now + (long)ticks;
    }

    private static int ValueBytes(SharedValue value) =>
        value.Kind == SharedValueKind.String ? value.Bytes?.Length ?? 0 : sizeof(double);

    private void LinkFirst(Entry entry)
    {
        entry.Prev = _lru;
        entry.Next = _lru.Next;
        _lru.Next.Prev = entry;
        _lru.Next = entry;
    }

    private static void Unlink(Entry entry)
    {
        entry.Prev.Next = entry.Next;
        entry.Next.Prev = entry.Prev;
        entry.Prev = entry.Next = entry;
    }

    private void MoveToFront(Entry entry)
    {
        if (_lru.Next == entry) return;
        Unlink(entry);
        LinkFirst(entry);
    }

    /// <summary>One key's slot; it is its own LRU list node and knows its place in the expiry heap.</summary>
    private sealed class Entry
    {
        public readonly byte[] Key;
        public SharedValue Value;
        public long Size;
        public long ExpiresAt = Never;
        public int HeapIndex = -1;
        public Entry Prev;
        public Entry Next;

        public Entry(byte[] key)
        {
            Key = key;
            Prev = Next = this; // unlinked: a loop of one
        }
    }

    /// <summary>A binary min-heap of expiring entries by <see cref="Entry.ExpiresAt"/>, indexed through the entries so removal is O(log n).</summary>
    private sealed class ExpiryHeap
    {
        private Entry[] _items = new Entry[16];
        private int _count;

        public Entry? Peek() => _count > 0 ? _items[0] : null;

        public void Add(Entry entry)
        {
            if (_count == _items.Length) Array.Resize(ref _items, _count * 2);
            Place(entry, _count++);
            SiftUp(entry.HeapIndex);
        }

        public void Remove(Entry entry)
        {
            int at = entry.HeapIndex;
            if (at < 0) return;
            entry.HeapIndex = -1;
            var last = _items[--_count];
            _items[_count] = null!;
            if (last == entry) return;
            Place(last, at);
            SiftDown(at);
            SiftUp(last.HeapIndex);
        }

        private void Place(Entry entry, int at)
        {
            _items[at] = entry;
            entry.HeapIndex = at;
        }

        private void SiftUp(int at)
        {
            var entry = _items[at];
            while (at > 0)
            {
                int parent = (at - 1) >> 1;
                if (_items[parent].ExpiresAt <= entry.ExpiresAt) break;
                Place(_items[parent], at);
                at = parent;
            }
            Place(entry, at);
        }

        private void SiftDown(int at)
        {
            var entry = _items[at];
            while (true)
            {
                int child = 2 * at + 1;
                if (child >= _count) break;
                if (child + 1 < _count && _items[child + 1].ExpiresAt < _items[child].ExpiresAt) child++;
                if (entry.ExpiresAt <= _items[child].ExpiresAt) break;
                Place(_items[child], at);
                at = child;
            }
            Place(entry, at);
        }
    }

    /// <summary>
    /// Compares keys by content so a span can find a byte[] key without copying it. HashCode is seeded
    /// randomly per process, so clients who choose key bytes (an IP, a user id) cannot aim for collisions.
    /// </summary>
    private sealed class KeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] key) => Hash(key);

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate) => Hash(alternate);

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();

        private static int Hash(ReadOnlySpan<byte> key)
        {
            var hash = new HashCode();
            hash.AddBytes(key);
            return hash.ToHashCode();
        }
    }
}
