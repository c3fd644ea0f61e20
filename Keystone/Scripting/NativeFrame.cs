namespace Keystone.Scripting;

/// <summary>
/// The frame every native function runs in: finds its state, makes C# pushes infallible (an allocation
/// failure there would longjmp over managed frames), and never lets an exception reach Lua: a bug
/// becomes a script error and the state is discarded.
/// </summary>
internal static unsafe class NativeFrame
{
    public static int Run(nint L, delegate*<LuaState, nint, int> body)
    {
        var state = LuaState.From(L);
        state.EnterNative();
        try
        {
            return body(state, L);
        }
        catch (Exception e)
        {
            state.MarkDiscard();
            return LuaText.Raise(L, "internal error: " + e.GetType().Name);
        }
        finally
        {
            state.LeaveNative();
        }
    }
}
