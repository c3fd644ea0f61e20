using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Keystone.Tests.Integration;

/// <summary>
/// Keystone's config is its YAML file. ASP.NET Core's own configuration files are read once, never watched: watching
/// them means watching the working directory and every directory below it.
/// </summary>
public sealed class HostConfigurationTests
{
    [Fact]
    public async Task No_listener_watches_the_working_directory_for_configuration_files()
    {
        await using var keystone = await KeystoneInstance.StartAsync("""
            routes:
              - name: hello
                path: /hello
                respond:
                  body: hello
            """);

        foreach (var services in new[] { keystone.Host.TrafficServices, keystone.Host.AdminServices! })
        {
            var configuration = (IConfigurationRoot)services.GetRequiredService<IConfiguration>();
            Assert.Contains(configuration.Providers, p => p is FileConfigurationProvider); // the control: appsettings.json is read
            Assert.DoesNotContain(configuration.Providers, p => p is FileConfigurationProvider { Source.ReloadOnChange: true });
        }
    }
}
