#!/usr/bin/env bash
# Issue 5 check: throughput with metrics and the access log on must stay >= 0.95x of both off.
# Interleaved rounds (off, on, off, on, ...) against one fixed nginx backend, all on 127.0.0.1.
# Everything started here is stopped by PID on exit. Usage: observability-overhead.sh [rounds] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
SECONDS_PER_ROUND=${2:-10}
source Keystone.Benchmarks/load/common.sh obs
need wrk wrk
need nginx nginx-light

# The backend: nginx answering a tiny fixed body, its own config, never the system service.
start_backend 18080

dotnet build Keystone -c Release -v q >/dev/null
KEYSTONE="dotnet Keystone/bin/Release/net10.0/keystone.dll"

write_config() { # name port metrics access_log
  cat > "$WORK/$1.yaml" <<YAML
listen: [http://127.0.0.1:$2]
admin: { listen: http://127.0.0.1:$(( $2 + 1000 )) }
metrics: $3
access_log: $4
log_level: warning
upstreams:
  backend: { targets: [http://127.0.0.1:18080] }
routes:
  - { name: api, path: "/api/{*rest}", upstream: backend }
YAML
}
# off: neither; metrics: metrics only; on: metrics and the access log (to a file).
write_config off 18081 false off
write_config on 18082 true "$WORK/access.log"
write_config metrics 18083 true off
declare -A PORT=([off]=18081 [on]=18082 [metrics]=18083)
VARIANTS=(off metrics on)
declare -A KPID
for v in "${VARIANTS[@]}"; do $KEYSTONE serve --config "$WORK/$v.yaml" & PIDS+=($!); KPID[$v]=$!; done
for port in 18080 18081 18082 18083; do wait_http "http://127.0.0.1:$port/api/x"; done

# Warm-up, then interleaved rounds.
for v in "${VARIANTS[@]}"; do wrk -t1 -c32 -d3s "http://127.0.0.1:${PORT[$v]}/api/hello" >/dev/null; done
declare -A total=([off]=0 [on]=0 [metrics]=0) cpu=([off]=0 [on]=0 [metrics]=0) reqs=([off]=0 [on]=0 [metrics]=0)
for round in $(seq 1 "$ROUNDS"); do
  for variant in "${VARIANTS[@]}"; do
    port=${PORT[$variant]}
    before=$(cpu_ticks "${KPID[$variant]}")
    out=$(wrk -t1 -c32 -d"${SECONDS_PER_ROUND}s" "http://127.0.0.1:$port/api/hello")
    after=$(cpu_ticks "${KPID[$variant]}")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    total[$variant]=$(echo "${total[$variant]} + $rps" | bc -l)
    cpu[$variant]=$(( ${cpu[$variant]} + after - before )); reqs[$variant]=$(( ${reqs[$variant]} + n ))
    printf 'round %d %-7s %10.0f req/s %6.1f CPU-us/req\n' "$round" "$variant" "$rps" \
      "$(echo "($after - $before) * 1000000 / $HZ / $n" | bc -l)"
  done
done
off=$(echo "${total[off]} / $ROUNDS" | bc -l); on=$(echo "${total[on]} / $ROUNDS" | bc -l)
metrics=$(echo "${total[metrics]} / $ROUNDS" | bc -l)
printf 'mean: off %.0f req/s, metrics only %.0f req/s, metrics + access log %.0f req/s\n' "$off" "$metrics" "$on"
printf 'ratios to off: metrics only %.3f, metrics + access log %.3f (target >= 0.95)\n' \
  "$(echo "$metrics / $off" | bc -l)" "$(echo "$on / $off" | bc -l)"
for v in "${VARIANTS[@]}"; do
  printf 'Keystone CPU per request, %-7s %.1f us\n' "$v" "$(echo "${cpu[$v]} * 1000000 / $HZ / ${reqs[$v]}" | bc -l)"
done
printf 'access log lines written: %s\n' "$(wc -l < "$WORK/access.log")"
