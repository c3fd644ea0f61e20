# Keystone — every target is one line of intent. See README.md.
CONFIG ?= configs/keystone.yaml
RID ?= linux-x64
ROUNDS ?= 3
SECONDS ?= 12

.PHONY: run test test-deps bench bench-load bench-startup publish publish-aot docker clean

run:      ## serve the default config on http://localhost:8080
	dotnet run --project Keystone -c Release -- serve --config $(CONFIG)

test: test-deps  ## build and run every test (writes TestResults/*.trx for .ci/run)
	rm -rf TestResults && dotnet test keystone.sln -c Release --logger "trx" --logger "console;verbosity=minimal" --results-directory TestResults

test-deps: ## tools the tests use: promtool (Debian's prometheus package), installed once if missing
	@command -v promtool >/dev/null || { export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends prometheus >/dev/null && \
	  { pkill -x prometheus || true; }; }

bench:    ## BenchmarkDotNet micro benchmarks
	dotnet run --project Keystone.Benchmarks -c Release -- --filter '*'

bench-load: ## Keystone vs nginx, nginx + Lua, HAProxy, Caddy under load, one core each (~12 min; ROUNDS=3 SECONDS=12)
	bash Keystone.Benchmarks/load/bench-load.sh $(ROUNDS) $(SECONDS)

bench-startup: ## start to first served request and idle RSS of dist/keystone (built when missing), median of 7
	bash Keystone.Benchmarks/load/startup.sh 7

publish:  ## self-contained single-file binary at dist/keystone
	dotnet publish Keystone -c Release -r $(RID) --self-contained -p:PublishSingleFile=true -p:PublishReadyToRun=true -p:IncludeNativeLibrariesForSelfExtract=true -o dist

publish-aot: ## Native AOT binary at dist-aot/keystone (+ liblua54.so): 32 MB idle and ~90 ms to first request, but 1.2-1.4x the CPU per request
	dotnet publish Keystone -c Release -r $(RID) -p:PublishAot=true -p:CopyOutputSymbolsToPublishDirectory=false -o dist-aot

docker:   ## container image (needs a Docker engine; not available on the CI machines)
	docker build -t keystone:latest .

clean:
	rm -rf dist dist-aot TestResults */bin */obj
