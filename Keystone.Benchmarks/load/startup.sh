#!/usr/bin/env bash
# Start to first served request (issue 8: <= 300 ms for dist/keystone), and idle RSS right after.
# Starts the binary on the default config (configs/keystone.yaml) with a free port, polls GET /healthz
# every 5 ms from the moment of the exec, and records the time of the first 200. Repeats RUNS times
# and prints each run and the median. Only loopback; every process it starts is stopped by PID.
# Usage: bash Keystone.Benchmarks/load/startup.sh [RUNS] [BINARY]   (default: 7 dist/keystone, built when missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-7}
BIN=${2:-dist/keystone}
source Keystone.Benchmarks/load/common.sh startup
if [ ! -x "$BIN" ] && [ "$BIN" = dist/keystone ]; then make publish >/dev/null; fi
[ -x "$BIN" ] || { echo "no executable at $BIN" >&2; exit 1; }
need curl curl

PORT=18499
times=()
for run in $(seq 1 "$RUNS"); do
  start=$(date +%s%N)
  KEYSTONE_PORT=$PORT "$BIN" serve --config configs/keystone.yaml >"$WORK/out.log" 2>"$WORK/err.log" &
  pid=$!
  PIDS+=("$pid")
  until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz"; do
    kill -0 "$pid" 2>/dev/null || { echo "keystone exited; its log:" >&2; cat "$WORK/err.log" >&2; exit 1; }
    [ $(( ($(date +%s%N) - start) / 1000000 )) -lt 10000 ] || { echo "no answer within 10 s" >&2; exit 1; }
    sleep 0.005
  done
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  sleep 1
  rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf 'run %d: first 200 after %d ms, RSS 1 s later %s MB\n' "$run" "$ms" "$rss"
  times+=("$ms")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
echo "$BIN: median start to first served request $median ms over $RUNS runs (target <= 300 ms)"
