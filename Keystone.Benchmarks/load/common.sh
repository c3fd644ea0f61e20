# Sourced by the load scripts (from the repository root): a scratch folder, every process started
# here stopped by PID on exit, Debian packages installed on demand, and CPU time read from /proc.
# Usage: source Keystone.Benchmarks/load/common.sh <name>
WORK=$(mktemp -d "/tmp/keystone-$1-XXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
HZ=$(getconf CLK_TCK)
