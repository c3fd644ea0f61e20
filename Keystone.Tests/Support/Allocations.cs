namespace Keystone.Tests.Support;

/// <summary>
/// Measures what a warmed-up body allocates on the current thread. The runtime itself sometimes allocates on the
/// test's thread in the middle of a measurement (tiered JIT promoting a method, a type's first use by a new code
/// version): CI saw 6,744 B once in a loop that allocates nothing. Code that allocates per call does so in every
/// attempt, so the least of a few attempts keeps the test able to fail while ignoring a one-off.
/// </summary>
public static class Allocations
{
    public static long LeastOf(int attempts, Action body)
    {
        body(); // warm-up: first calls compile, resolve types and fill caches
        long least = long.MaxValue;
        for (int attempt = 0; attempt < attempts && least > 0; attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            body();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }
}
