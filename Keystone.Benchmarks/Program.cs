using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Keystone.Benchmarks.Routing.RouterLookupBenchmarks).Assembly).Run(args);
