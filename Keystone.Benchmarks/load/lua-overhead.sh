#!/usr/bin/env bash
# Issue 4 check: the same proxied route with a Lua hook must keep >= 0.9x the requests/s of the route without it.
# The hook does what the benchmark issue asks of every proxy's hook: check an API key header, set a header
# for the upstream, add a response header. Interleaved rounds (plain, hook, plain, hook, ...) against one
# nginx backend, all on 127.0.0.1; everything started here is stopped by PID on exit.
# Usage: lua-overhead.sh [rounds] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
SECONDS_PER_ROUND=${2:-10}
source Keystone.Benchmarks/load/common.sh lua
need wrk wrk
need nginx nginx-light

start_backend 18180
mkdir -p "$WORK/scripts"
cp Keystone.Benchmarks/load/bench_auth.lua "$WORK/scripts/"

dotnet build Keystone -c Release -v q >/dev/null
KEYSTONE="dotnet Keystone/bin/Release/net10.0/keystone.dll"

write_config() { # name port hooks
  cat > "$WORK/$1.yaml" <<YAML
listen: [http://127.0.0.1:$2]
admin: { listen: http://127.0.0.1:$(( $2 + 1000 )) }
access_log: off
log_level: warning
lua: { scripts_dir: $WORK/scripts }
upstreams:
  backend: { targets: [http://127.0.0.1:18180] }
routes:
  - { name: api, path: "/api/{*rest}", upstream: backend, hooks: [$3] }
YAML
}
write_config plain 18181 ""
write_config hook 18182 bench_auth
declare -A PORT=([plain]=18181 [hook]=18182)
VARIANTS=(plain hook)
declare -A KPID
for v in "${VARIANTS[@]}"; do $KEYSTONE serve --config "$WORK/$v.yaml" & PIDS+=($!); KPID[$v]=$!; done
for port in 18180 18181 18182; do wait_http "http://127.0.0.1:$port/api/x" -H "X-Api-Key: bench-key"; done
# The hook must do its work: a wrong key is refused, the right one gets the response header.
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:18182/api/x")" = 401 ] || { echo "hook did not refuse a missing key"; exit 1; }
curl -s -D - -o /dev/null -H "X-Api-Key: bench-key" "http://127.0.0.1:18182/api/x" | grep -qi '^x-gateway: keystone' || { echo "hook did not add x-gateway"; exit 1; }

# Long enough for tiered compilation to settle on both paths.
for v in "${VARIANTS[@]}"; do wrk -t1 -c32 -d10s -H "X-Api-Key: bench-key" "http://127.0.0.1:${PORT[$v]}/api/hello" >/dev/null; done
declare -A total=([plain]=0 [hook]=0) cpu=([plain]=0 [hook]=0) reqs=([plain]=0 [hook]=0) p99=([plain]="" [hook]="")
for round in $(seq 1 "$ROUNDS"); do
  for variant in "${VARIANTS[@]}"; do
    port=${PORT[$variant]}
    before=$(cpu_ticks "${KPID[$variant]}")
    out=$(wrk -t1 -c32 -d"${SECONDS_PER_ROUND}s" --latency -H "X-Api-Key: bench-key" "http://127.0.0.1:$port/api/hello")
    after=$(cpu_ticks "${KPID[$variant]}")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    total[$variant]=$(echo "${total[$variant]} + $rps" | bc -l)
    cpu[$variant]=$(( ${cpu[$variant]} + after - before )); reqs[$variant]=$(( ${reqs[$variant]} + n ))
    printf 'round %d %-6s %10.0f req/s %6.1f CPU-us/req  p99 %s  non-2xx %s\n' "$round" "$variant" "$rps" \
      "$(echo "($after - $before) * 1000000 / $HZ / $n" | bc -l)" "$(awk '/ 99%/ {print $2}' <<<"$out")" "${errors:-0}"
  done
done
plain=$(echo "${total[plain]} / $ROUNDS" | bc -l); hook=$(echo "${total[hook]} / $ROUNDS" | bc -l)
printf 'mean: plain %.0f req/s, with Lua hook %.0f req/s\n' "$plain" "$hook"
printf 'ratio hook / plain: %.3f (target >= 0.90)\n' "$(echo "$hook / $plain" | bc -l)"
for v in "${VARIANTS[@]}"; do
  printf 'Keystone CPU per request, %-6s %.1f us\n' "$v" "$(echo "${cpu[$v]} * 1000000 / $HZ / ${reqs[$v]}" | bc -l)"
done
