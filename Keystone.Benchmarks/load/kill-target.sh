#!/usr/bin/env bash
# Issue 6 figure: a 30 s load over three targets; one target is killed at 10 s and restarted at 20 s.
# Reports failed requests (non-2xx/3xx and socket errors) and how long the restarted target took to be
# re-admitted. All on 127.0.0.1; everything started here is stopped by PID on exit.
# Usage: kill-target.sh [GET|POST]   (POST sends a small form body; Keystone never retries it)
set -euo pipefail
METHOD=${1:-GET}
cd "$(dirname "$0")/../.."
source Keystone.Benchmarks/load/common.sh kill
need wrk wrk
need nginx nginx-light

start_nginx() { # port -> pid
  mkdir -p "$WORK/nginx-$1"
  cat > "$WORK/nginx-$1/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/nginx-$1/nginx.pid;
error_log $WORK/nginx-$1/error.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$1; location / { return 200 "ok $1\n"; } } }
NGINX
  nginx -c "$WORK/nginx-$1/nginx.conf" -p "$WORK/nginx-$1" >/dev/null 2>&1 &
  echo $!
}
declare -A NGINX_PID
for port in 19001 19002 19003; do NGINX_PID[$port]=$(start_nginx $port); PIDS+=(${NGINX_PID[$port]}); done

dotnet build Keystone -c Release -v q >/dev/null
cat > "$WORK/keystone.yaml" <<YAML
listen: [http://127.0.0.1:19000]
admin: { listen: http://127.0.0.1:19100 }
access_log: off
log_level: warning
upstreams:
  app:
    targets: [http://127.0.0.1:19001, http://127.0.0.1:19002, http://127.0.0.1:19003]
    health: { path: /, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 1 }
routes:
  - { name: app, path: "/{*rest}", upstream: app }
YAML
dotnet Keystone/bin/Release/net10.0/keystone.dll serve --config "$WORK/keystone.yaml" & PIDS+=($!)
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:19000/ && break; sleep 0.1; done
sleep 2 # first health checks

printf 'wrk.method = "%s"\n' "$METHOD" > "$WORK/method.lua"
[ "$METHOD" = GET ] || printf 'wrk.body = "order=1"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n' >> "$WORK/method.lua"
wrk -t1 -c32 -d30s -s "$WORK/method.lua" http://127.0.0.1:19000/load > "$WORK/wrk.txt" &
WRK=$!; PIDS+=($WRK)
sleep 10
kill "${NGINX_PID[19002]}"; echo "10 s: killed target 127.0.0.1:19002"
sleep 10
NGINX_PID[19002]=$(start_nginx 19002); PIDS+=(${NGINX_PID[19002]})
restarted=$(date +%s%N); echo "20 s: restarted target 127.0.0.1:19002"
readmitted=""
while [ -z "$readmitted" ] && [ $(( ($(date +%s%N) - restarted) / 1000000 )) -lt 9000 ]; do
  if curl -s http://127.0.0.1:19100/metrics | grep -q 'keystone_upstream_target_healthy{upstream="app",target="127.0.0.1:19002"} 1'; then
    readmitted=$(( ($(date +%s%N) - restarted) / 1000000 ))
  else sleep 0.05; fi
done
wait "$WRK" || true
cat "$WORK/wrk.txt"
total=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt"); non2xx=${non2xx:-0}
sockerr=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' "$WORK/wrk.txt"); sockerr=${sockerr:-0}
printf '%s requests: %s, failed: %s non-2xx + %s socket errors (%.4f%%), re-admitted after: %s ms\n' \
  "$METHOD" "$total" "$non2xx" "$sockerr" "$(echo "($non2xx + $sockerr) * 100 / $total" | bc -l)" "${readmitted:-not within 9 s}"
