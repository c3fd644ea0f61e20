using Xunit;

namespace Keystone.Tests.Integration;

/// <summary>
/// Tests that measure time or the whole process's memory (1 GiB transfers, timeouts, drain) run in this collection,
/// after the parallel ones and one at a time, so neither other tests' CPU nor their allocations skew them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProxySerialCollection
{
    public const string Name = "Proxy timing and memory";
}
