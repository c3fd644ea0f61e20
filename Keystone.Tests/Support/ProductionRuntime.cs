using System.Runtime.CompilerServices;

namespace Keystone.Tests.Support;

/// <summary>The tests run the gateway in process, so they apply the runtime settings the keystone binary applies at start.</summary>
internal static class ProductionRuntime
{
    [ModuleInitializer]
    internal static void Apply() => RuntimeDefaults.Apply();
}
