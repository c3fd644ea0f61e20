using Keystone;
using Keystone.Cli;

RuntimeDefaults.Apply();
return await CommandLine.RunAsync(args, Console.Out, Console.Error);
