using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Keystone.Scripting;

/// <summary>
/// Per-state memory accounting, in unmanaged memory so the allocator (a function pointer Lua calls on
/// every allocation) reaches it without a GC handle. Past <see cref="Limit"/> an allocation fails, which
/// Lua turns into a catchable "not enough memory" error inside the VM; while C# itself is pushing values
/// (<see cref="Infallible"/>) a failure would longjmp over a managed frame, so the allocation succeeds
/// and the state is marked to be discarded instead.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LuaHeap
{
    public long Used;
    public long Limit;
    public int Infallible;
    public int Denied;
    public int OverCap;

    public readonly bool Exhausted => Denied != 0 || OverCap != 0;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    public static unsafe nint Allocate(nint ud, nint block, nuint oldSize, nuint newSize)
    {
        var heap = (LuaHeap*)ud;
        if (newSize == 0)
        {
            if (block != 0)
            {
                NativeMemory.Free((void*)block);
                heap->Used -= (long)oldSize;
            }
            return 0;
        }
        // For a new block Lua passes a type tag in oldSize, not a size.
        long delta = (long)newSize - (block == 0 ? 0 : (long)oldSize);
        if (delta > 0 && heap->Used + delta > heap->Limit)
        {
            if (heap->Infallible == 0)
            {
                heap->Denied = 1;
                return 0;
            }
            heap->OverCap = 1;
        }
        void* moved = NativeMemory.Realloc((void*)block, newSize);
        if (moved == null)
        {
            heap->Denied = 1;
            return 0;
        }
        heap->Used += delta;
        return (nint)moved;
    }
}
