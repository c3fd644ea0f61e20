#!/usr/bin/env bash
# Issue 8 load benchmark (`make bench-load ROUNDS=3 SECONDS=12`): one workload, in ONE run with interleaved rounds
# (A B C ... A B C ...), through
#   direct        straight to the backend: no proxy (what the client and backend alone do)
#   nginx         nginx as a reverse proxy with upstream keep-alive
#   nginx + Lua   the same with access_by_lua + header_filter_by_lua doing bench_auth.lua's work
#   HAProxy       plain reverse proxy
#   Caddy         reverse_proxy
#   Keystone      one proxied route
#   Keystone + Lua  the same route with the bench_auth.lua hook (check X-Api-Key -> 401, set X-Consumer
#                 upstream, add X-Gateway to the response)
# Workload: GET /api/hello with "X-Api-Key: bench-key", 32 keep-alive connections from one loader thread
# (wrk -t1 -c32 --latency), one backend: nginx `return 200 "hello"` (1 worker). All traffic on 127.0.0.1.
#
# Fair by construction: one core per proxy. Every proxy is pinned (taskset) to the last CPU, the loader and the
# backend to the others, so the backend is never counted as a proxy and a proxy never shares its core.
#   nginx: worker_processes 1 (master + worker counted) · HAProxy: nbthread 1 · Caddy: GOMAXPROCS=1 ·
#   Keystone: Release build run as `dotnet Keystone/bin/Release/net10.0/keystone.dll serve --config ...`
#   (framework-dependent, like the other load scripts), with its project defaults (workstation non-concurrent
#   GC, TieredPGO); the affinity mask makes .NET see one CPU (Environment.ProcessorCount = 1: one Kestrel I/O
#   queue, one socket-engine thread, a thread pool that starts at one thread and grows as it needs).
#   PIN=0 runs everything unpinned instead (Keystone then uses every core, the others still one worker).
# Keep-alive both sides for all: nginx `keepalive 64` + HTTP/1.1 upstream, HAProxy `http-reuse always`,
#   Caddy keep-alive with 64 idle connections per host, Keystone its YARP connection pool (defaults). nginx's
#   (and the backend's) `keepalive_requests` is raised from 1,000 so that no one closes connections on a count.
# Logging as shipped: Keystone runs its defaults, metrics: true and access_log: stdout (one JSON line per
#   request; stdout goes to a file), log_level information. To keep the work equal, every other proxy writes
#   one access line per request to a file too (nginx `access_log` combined, HAProxy `option httplog` to
#   stdout, Caddy `log` to stdout); the files are emptied between rounds. ACCESS_LOG=off turns every access
#   log off (Keystone: access_log: off, metrics still on, as a user would run it without the log).
#
# Per target: requests/s, p50/p99 latency (wrk --latency; mean over rounds), CPU microseconds per request of the
# proxy process(es) (utime+stime from /proc/<pid>/stat over the round, / requests), peak RSS (VmHWM from
# /proc/<pid>/status after the full-speed rounds; nginx: master + worker summed) and idle RSS (VmRSS after
# start), each with its ratio to nginx. Also: the share of its core each proxy used and how busy the loader's
# CPUs were (near 100%: that row is bounded by client + backend, not by the proxy), and how many connections the
# backend accepted during the rounds (nginx stub_status; proves upstream keep-alive), and errors.
# Fixed-rate mode (FIXED=1, the default): every target again at one request rate, RATE_PCT (60) % of nginx's
# measured maximum or RATE=<req/s>, with h2load --h1 -c32 --rps (Debian's nghttp2-client: wrk has no rate mode,
# and wrk2, oha and vegeta are not in Debian 12), for CPU per request and p50/p99 at equal load.
# Time: ~20 s to build and start, WARMUP (30) s per target, then ROUNDS x SECONDS per target for each mode:
# the defaults (3 x 12 s) take about 12 minutes. Output: a markdown table on stdout, also written to
# Keystone.Benchmarks/load/results/bench-load-<date>.md. Progress goes to stderr. Everything started here is
# stopped by PID on exit.
# Usage: bench-load.sh [rounds] [seconds]   (env: WARMUP FIXED RATE_PCT RATE ACCESS_LOG PIN CONNECTIONS)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
SECONDS_PER_ROUND=${2:-12}
WARMUP=${WARMUP:-30} # on one core, tiered compilation keeps recompiling Keystone for ~30 s of load (10 s left rounds 1.5x apart)
FIXED=${FIXED:-1}
RATE_PCT=${RATE_PCT:-60}
RATE=${RATE:-}
ACCESS_LOG=${ACCESS_LOG:-on}
PIN=${PIN:-1}
C=${CONNECTIONS:-32}
KEY="X-Api-Key: bench-key"
SECONDS=0 # bash's clock, for the elapsed time at the end
read -r LOAD_START _ < /proc/loadavg
source Keystone.Benchmarks/load/common.sh bench-load
fail() { echo "FAILED: $*" >&2; exit 1; }

LUA_MODULE=/usr/lib/nginx/modules/ngx_http_lua_module.so
need wrk wrk
need nginx nginx-light
need "$LUA_MODULE" libnginx-mod-http-lua
need haproxy haproxy
need caddy caddy
[ "$FIXED" = 0 ] || need h2load nghttp2-client

TARGETS=(direct nginx nginx_lua haproxy caddy keystone keystone_lua)
declare -A LABEL=([direct]="direct (no proxy)" [nginx]="nginx" [nginx_lua]="nginx + Lua" [haproxy]="HAProxy"
  [caddy]="Caddy" [keystone]="Keystone" [keystone_lua]="Keystone + Lua")
BACKEND=18400
declare -A PORT=([direct]=$BACKEND [nginx]=18401 [nginx_lua]=18402 [haproxy]=18403 [caddy]=18404
  [keystone]=18405 [keystone_lua]=18406)
for port in "${PORT[@]}" 18415 18416; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is in use: stop what listens there" >&2; exit 1; fi
done

# One core per proxy: the last CPU; the loader and the backend get the rest.
NCPU=$(nproc)
PROXY_PIN=(); LOAD_PIN=(); LOAD_CPUS=""; STAT_CPUS="cpu"
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
  PROXY_CPU=$(( NCPU - 1 )); LOAD_CPUS="0-$(( NCPU - 2 ))"
  PROXY_PIN=(taskset -c "$PROXY_CPU"); LOAD_PIN=(taskset -c "$LOAD_CPUS")
  STAT_CPUS=$(seq -f 'cpu%g' 0 $(( NCPU - 2 )) | tr '\n' ' ')
  PLACEMENT="One core per proxy: each proxy pinned to CPU $PROXY_CPU, loader and backend to CPU ${LOAD_CPUS%-0};"
  PLACEMENT+=" nginx worker_processes 1, HAProxy nbthread 1, Caddy GOMAXPROCS=1, Keystone one CPU in its affinity mask and its defaults otherwise."
else
  [ "$PIN" = 0 ] || echo "warning: $NCPU CPU: nothing pinned" >&2
  PIN=0; PLACEMENT="Nothing pinned ($NCPU CPUs shared by all); nginx worker_processes 1, HAProxy nbthread 1, Caddy GOMAXPROCS=1,"
  PLACEMENT+=" Keystone its defaults on every CPU; the loader CPU column is the whole machine."
fi
echo "bench-load: ${#TARGETS[@]} targets, $ROUNDS rounds x ${SECONDS_PER_ROUND} s, fixed-rate mode: $([ "$FIXED" = 0 ] && echo off || echo on);" \
  "about $(( (20 + ${#TARGETS[@]} * (WARMUP + ROUNDS * SECONDS_PER_ROUND * (FIXED == 0 ? 1 : 2))) / 60 + 1 )) minutes" >&2

build=$(dotnet build Keystone -c Release -v q 2>&1) || fail "dotnet build: $build"
start_backend $BACKEND "$LOAD_CPUS"

# Access log destinations: nginx writes its file itself, the others write to stdout, which goes to a file.
ACCESS_FILES=()
if [ "$ACCESS_LOG" = off ]; then NGINX_ACCESS=off; else NGINX_ACCESS=""; fi
log_to() { if [ "$ACCESS_LOG" = off ]; then LOG_DEST=/dev/null; else LOG_DEST=$1; ACCESS_FILES+=("$1"); fi; }

# nginx and nginx + Lua: the same config, the second with the Lua module and the hook.
declare -A PROCS # target -> the PIDs whose CPU and memory count
start_nginx() { # target port with_lua
  local dir="$WORK/$1" modules="" hook=""
  mkdir -p "$dir"
  if [ "$3" = 1 ]; then
    modules="load_module ${LUA_MODULE%/*}/ndk_http_module.so;
load_module $LUA_MODULE;"
    # bench_auth.lua's work in nginx's Lua (LuaJIT): the key check, a header upstream, a response header.
    hook='access_by_lua_block {
        if ngx.var.http_x_api_key ~= "bench-key" then
          ngx.status = 401
          ngx.print("invalid api key")
          return ngx.exit(401)
        end
        ngx.req.set_header("X-Consumer", "bench")
      }
      header_filter_by_lua_block { ngx.header["X-Gateway"] = "keystone" }'
  fi
  [ "$ACCESS_LOG" = off ] || { NGINX_ACCESS="$dir/access.log"; ACCESS_FILES+=("$NGINX_ACCESS"); }
  cat > "$dir/nginx.conf" <<NGINX
$modules
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log $NGINX_ACCESS;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$2;
    location / {
      $hook
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
  "${PROXY_PIN[@]}" nginx -c "$dir/nginx.conf" -p "$dir" & PIDS+=($!); PROCS[$1]=$!
}
start_nginx nginx "${PORT[nginx]}" 0
start_nginx nginx_lua "${PORT[nginx_lua]}" 1

mkdir -p "$WORK/haproxy"
HAPROXY_LOG=""; [ "$ACCESS_LOG" = off ] || HAPROXY_LOG="  log stdout format raw local0"
cat > "$WORK/haproxy/haproxy.cfg" <<HAPROXY
global
  nbthread 1
  maxconn 4096
$HAPROXY_LOG
defaults
  mode http
  $([ "$ACCESS_LOG" = off ] || echo "log global
  option httplog")
  http-reuse always
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend proxy
  bind 127.0.0.1:${PORT[haproxy]}
  default_backend app
backend app
  server backend 127.0.0.1:$BACKEND
HAPROXY
log_to "$WORK/haproxy/access.log"
"${PROXY_PIN[@]}" haproxy -db -f "$WORK/haproxy/haproxy.cfg" >>"$LOG_DEST" 2>"$WORK/haproxy/stderr" &
PIDS+=($!); PROCS[haproxy]=$!

mkdir -p "$WORK/caddy"
CADDY_LOG=""; [ "$ACCESS_LOG" = off ] || CADDY_LOG=$'\tlog {\n\t\toutput stdout\n\t}'
cat > "$WORK/caddy/Caddyfile" <<CADDY
{
	admin off
	auto_https off
}
http://127.0.0.1:${PORT[caddy]} {
$CADDY_LOG
	reverse_proxy 127.0.0.1:$BACKEND {
		transport http {
			keepalive 2m
			keepalive_idle_conns_per_host 64
		}
	}
}
CADDY
log_to "$WORK/caddy/access.log"
HOME="$WORK/caddy" XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" GOMAXPROCS=1 \
  "${PROXY_PIN[@]}" caddy run --config "$WORK/caddy/Caddyfile" --adapter caddyfile \
  >>"$LOG_DEST" 2>"$WORK/caddy/stderr" &
PIDS+=($!); PROCS[caddy]=$!

# Keystone: the shipped defaults for metrics, access log and log level; Lua only where the hook is (the plain
# instance points scripts_dir at a missing folder, which turns Lua off, rather than at the repository's scripts/).
mkdir -p "$WORK/keystone/scripts"
cp Keystone.Benchmarks/load/bench_auth.lua "$WORK/keystone/scripts/"
start_keystone() { # target port scripts_dir hooks
  cat > "$WORK/keystone/$1.yaml" <<YAML
listen: [http://127.0.0.1:$2]
admin: { listen: http://127.0.0.1:$(( $2 + 10 )) }
$([ "$ACCESS_LOG" = off ] && echo "access_log: off")
lua: { scripts_dir: $3 }
upstreams:
  backend: { targets: [http://127.0.0.1:$BACKEND] }
routes:
  - { name: api, path: "/api/{*rest}", upstream: backend, hooks: [$4] }
YAML
  log_to "$WORK/keystone/$1.access.log"
  "${PROXY_PIN[@]}" dotnet Keystone/bin/Release/net10.0/keystone.dll serve --config "$WORK/keystone/$1.yaml" \
    >>"$LOG_DEST" 2>"$WORK/keystone/$1.stderr" &
  PIDS+=($!); PROCS[$1]=$!
}
start_keystone keystone "${PORT[keystone]}" "$WORK/keystone/no-scripts" ""
start_keystone keystone_lua "${PORT[keystone_lua]}" "$WORK/keystone/scripts" bench_auth

for t in "${TARGETS[@]}"; do wait_http "http://127.0.0.1:${PORT[$t]}/api/hello" -H "$KEY"; done
# nginx counts with its worker.
for t in nginx nginx_lua; do PROCS[$t]="${PROCS[$t]} $(pgrep -P "${PROCS[$t]}" | tr '\n' ' ')"; done

# Every proxy must really proxy, and both Lua flavours must really do the hook's work; otherwise stop here.
for t in "${TARGETS[@]}"; do
  body=$(curl -s -H "$KEY" "http://127.0.0.1:${PORT[$t]}/api/hello")
  [ "$body" = hello ] || fail "${LABEL[$t]}: GET /api/hello answered '$body', not the backend's 'hello'"
done
for t in nginx_lua keystone_lua; do
  url="http://127.0.0.1:${PORT[$t]}/api/check"
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
  [ "$code" = 401 ] || fail "${LABEL[$t]}: no X-Api-Key got $code, not 401"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Api-Key: wrong" "$url")
  [ "$code" = 401 ] || fail "${LABEL[$t]}: a wrong X-Api-Key got $code, not 401"
  answer=$(curl -s -i -H "$KEY" "$url" | tr -d '\r')
  grep -q '^HTTP/1.1 200' <<<"$answer" || fail "${LABEL[$t]}: the right key did not get 200: $(head -1 <<<"$answer")"
  grep -qi '^x-gateway: keystone$' <<<"$answer" || fail "${LABEL[$t]}: no 'X-Gateway: keystone' response header"
  grep -q '^consumer=bench$' <<<"$answer" || fail "${LABEL[$t]}: the backend did not get 'X-Consumer: bench'"
done
for t in nginx_lua keystone_lua; do echo "hook checked: ${LABEL[$t]} answers 401 without the key, 200 + X-Gateway with it, and sets X-Consumer upstream" >&2; done

rss_kb() { # field pids: the field of /proc/<pid>/status summed over the PIDs, in kB
  local f=$1 p t=0; shift
  for p in "$@"; do t=$(( t + $(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status") )); done; echo "$t"
}
declare -A IDLE_RSS PEAK_RSS
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086 # PID lists
  [ "$t" = direct ] || IDLE_RSS[$t]=$(rss_kb VmRSS ${PROCS[$t]})
done

calc() { awk "BEGIN { printf \"%.6f\", ($*) }"; } # the parentheses keep awk from reading > as a redirection
backend_accepts() { curl -s "http://127.0.0.1:$BACKEND/backend_status" | awk 'NR == 3 { print $1 }'; }
loader_stat() { # total and idle clock ticks of the loader CPUs (all CPUs when unpinned)
  awk -v want=" $STAT_CPUS " 'index(want, " " $1 " ") { for (i = 2; i <= 9; i++) t += $i; idle += $5 + $6 }
    END { print t, idle }' /proc/stat
}
# Parsed as: req/s, requests, p50 ms, p99 ms, errors (non-2xx + socket errors).
parse_wrk() {
  awk 'function ms(v) { if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
                        if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
                        if (v ~ /m$/) return substr(v, 1, length(v) - 1) * 60000
                        if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
                        return v + 0 }
    /Requests\/sec/ { rps = $2 } / requests in / { n = $1 }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    /Non-2xx/ { e += $NF } /Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
    END { print rps + 0, n + 0, p50 + 0, p99 + 0, e + 0 }'
}
parse_h2load() { # h2load's summary on stdin, its per-request log (start us, status, duration us) as $1
  local s n p50 p99 rps e
  s=$(awk '/^finished in/ { rps = $4 } /^requests:/ { e = $10 + $14 } END { print rps + 0, e + 0 }')
  read -r n p50 p99 < <(cut -f3 "$1" | sort -n | awk '{ v[NR] = $1 }
    function at(p) { i = int(NR * p); if (i < NR * p) i++; if (i < 1) i = 1; return v[i] / 1000 }
    END { if (NR == 0) print 0, 0, 0; else print NR, at(0.5), at(0.99) }')
  read -r rps e <<<"$s"
  echo "$rps $n $p50 $p99 $e"
}

declare -A RPS P50 P99 ERR TICKS CONNS NREQ BUSY WALL PER_ROUND
measure() { # mode target seconds -> accumulates into the arrays under "mode:target"
  local mode=$1 t=$2 k="$1:$2" url="http://127.0.0.1:${PORT[$2]}/api/hello" out a0 a1 c0 c1 l0 l1 w0 w1 rps n p50 p99 e
  local f; for f in "${ACCESS_FILES[@]}"; do : > "$f"; done
  # shellcheck disable=SC2086 # PID lists
  { [ "$t" = direct ] || c0=$(cpu_ticks ${PROCS[$t]}); a0=$(backend_accepts); l0=$(loader_stat); w0=$(date +%s%N); }
  if [ "$mode" = max ]; then
    out=$("${LOAD_PIN[@]}" wrk -t1 -c"$C" -d"$3s" --latency -H "$KEY" "$url")
    read -r rps n p50 p99 e < <(parse_wrk <<<"$out")
  else
    rm -f "$WORK/h2load.log"
    out=$("${LOAD_PIN[@]}" h2load --h1 -t1 -c"$C" --rps="$PER_CLIENT" -D "$3" -H "$KEY" --log-file="$WORK/h2load.log" "$url")
    read -r rps n p50 p99 e < <(parse_h2load "$WORK/h2load.log" <<<"$out")
  fi
  # shellcheck disable=SC2086
  { w1=$(date +%s%N); [ "$t" = direct ] || c1=$(cpu_ticks ${PROCS[$t]}); l1=$(loader_stat); a1=$(backend_accepts); }
  [ "$n" -gt 0 ] || fail "${LABEL[$t]}: no request completed ($mode): $out"
  RPS[$k]=$(calc "${RPS[$k]:-0} + $rps"); P50[$k]=$(calc "${P50[$k]:-0} + $p50"); P99[$k]=$(calc "${P99[$k]:-0} + $p99")
  ERR[$k]=$(( ${ERR[$k]:-0} + e )); WALL[$k]=$(( ${WALL[$k]:-0} + w1 - w0 )); NREQ[$k]=$(( ${NREQ[$k]:-0} + n ))
  [ "$t" = direct ] || TICKS[$k]=$(( ${TICKS[$k]:-0} + c1 - c0 ))
  CONNS[$k]=$(( ${CONNS[$k]:-0} + a1 - a0 - 1 )) # less the status request's own connection
  BUSY[$k]=$(calc "${BUSY[$k]:-0} + 100 * (1 - (${l1#* } - ${l0#* }) / (${l1% *} - ${l0% *}))")
  PER_ROUND[$k]="${PER_ROUND[$k]:-}$(printf '%.0f' "$rps") "
  printf '%-4s round %d/%d  %-17s %8.0f req/s  p50 %7.3f ms  p99 %7.3f ms  proxy %6s CPU-us/req  errors %d\n' \
    "$mode" "$round" "$ROUNDS" "${LABEL[$t]}" "$rps" "$p50" "$p99" \
    "$([ "$t" = direct ] && echo - || printf '%.1f' "$(calc "($c1 - $c0) * 1000000 / $HZ / $n")")" "$e" >&2
}

if [ "$WARMUP" -gt 0 ]; then
  echo "warm-up: ${WARMUP} s per target" >&2
  for t in "${TARGETS[@]}"; do "${LOAD_PIN[@]}" wrk -t1 -c"$C" -d"${WARMUP}s" -H "$KEY" "http://127.0.0.1:${PORT[$t]}/api/hello" >/dev/null; done
fi
for round in $(seq 1 "$ROUNDS"); do for t in "${TARGETS[@]}"; do measure max "$t" "$SECONDS_PER_ROUND"; done; done
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086
  [ "$t" = direct ] || PEAK_RSS[$t]=$(rss_kb VmHWM ${PROCS[$t]})
done

if [ "$FIXED" != 0 ]; then
  NGINX_MAX=$(calc "${RPS[max:nginx]} / $ROUNDS")
  if [ -z "$RATE" ]; then RATE=$(printf '%.0f' "$(calc "$NGINX_MAX * $RATE_PCT / 100")"); RATE_WHY="$RATE_PCT% of nginx's maximum"
  else RATE_WHY="RATE=$RATE"; fi
  PER_CLIENT=$(calc "$RATE / $C")
  echo "fixed rate: $RATE req/s for every target ($RATE_WHY), $(printf '%.2f' "$PER_CLIENT") req/s per connection" >&2
  for round in $(seq 1 "$ROUNDS"); do for t in "${TARGETS[@]}"; do measure fixed "$t" "$SECONDS_PER_ROUND"; done; done
fi

# The report.
mean() { calc "$1 / $ROUNDS"; }
cpu_us() { calc "${TICKS[$1]} * 1000000 / $HZ / ${NREQ[$1]}"; }
is() { [ "$(calc "$1")" = "1.000000" ]; }
ratio() { if is "$2 > 0"; then printf ' (%.2fx)' "$(calc "$1 / $2")"; fi; } # value base -> " (0.89x)"
ms() { if is "$1 >= 10"; then printf '%.1f ms' "$1"; else printf '%.3f ms' "$1"; fi; }
group() { # 12345.6 -> 12,346
  awk -v v="$1" 'BEGIN { s = sprintf("%.0f", v); r = ""
    while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }; print s r }'
}
proxy_cpu() { # key -> "35.3 µs (1.25x)", or – for the direct row
  if [[ $1 == *:direct ]]; then echo –; else printf '%.1f µs%s' "$(cpu_us "$1")" "$(ratio "$(cpu_us "$1")" "$(cpu_us "${1%%:*}:nginx")")"; fi
}
busy() { # key -> "proxy % / loader %"
  if [[ $1 == *:direct ]]; then printf '– / %.0f%%' "$(mean "${BUSY[$1]}")"
  else printf '%.0f%% / %.0f%%' "$(calc "${TICKS[$1]} / $HZ * 1e9 * 100 / ${WALL[$1]}")" "$(mean "${BUSY[$1]}")"; fi
}
mb() { # target field-array-name -> "67 MB (5.98x)"
  local -n kb=$2
  if [ "$1" = direct ]; then echo –; else printf '%.0f MB%s' "$(calc "${kb[$1]} / 1024")" "$(ratio "${kb[$1]}" "${kb[nginx]}")"; fi
}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- Keystone 2>/dev/null || commit="$commit + uncommitted changes"
if [ "$ACCESS_LOG" = off ]; then LOGGING="access logs off everywhere (Keystone: access_log: off, metrics on)"
else LOGGING="every proxy writes one access log line per request to a file (Keystone as shipped: metrics on, access_log: stdout, to a file)"; fi
read -r LOAD_END _ < /proc/loadavg
report() {
  local t k base rps
  echo "## Load benchmark ($(date '+%Y-%m-%d %H:%M'))"
  echo
  echo "\`make bench-load ROUNDS=$ROUNDS SECONDS=$SECONDS_PER_ROUND\` (\`Keystone.Benchmarks/load/bench-load.sh\`) ·" \
    "$NCPU CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) ·" \
    "load average $LOAD_START before, $LOAD_END after ·" \
    "$(. /etc/os-release && echo "$PRETTY_NAME") · Keystone $commit, .NET $(dotnet --list-runtimes | awk '/NETCore.App/ { v = $2 } END { print v }') ·" \
    "$(nginx -v 2>&1 | sed 's/.*: //') · HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }') · Caddy $(caddy version | awk '{ print $1 }') ·" \
    "wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')$([ "$FIXED" = 0 ] || echo " · h2load $(h2load --version | awk '{ print $2 }')")"
  echo
  echo "One run, rounds interleaved (each target once per round; $ROUNDS rounds of $SECONDS_PER_ROUND s per mode after ${WARMUP} s of warm-up each)." \
    "GET /api/hello with an X-Api-Key header over $C keep-alive connections from one loader thread; backend: nginx \`return 200\`, 1 worker." \
    "$PLACEMENT Upstream keep-alive everywhere. Logging: $LOGGING." \
    "The Lua rows check X-Api-Key (401 when wrong), set X-Consumer upstream and add X-Gateway to the response; both were checked before measuring."
  echo
  echo "### Full speed (wrk -t1 -c$C --latency)"
  echo
  echo "| target | req/s | p50 | p99 | CPU per request | peak RSS | idle RSS | CPU busy: proxy / loader | upstream connections opened | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  base=max:nginx
  for t in "${TARGETS[@]}"; do
    k=max:$t
    printf '| %s | %s%s | %s%s | %s%s | %s | %s | %s | %s | %s | %d |\n' "${LABEL[$t]}" \
      "$(group "$(mean "${RPS[$k]}")")" "$(ratio "${RPS[$k]}" "${RPS[$base]}")" \
      "$(ms "$(mean "${P50[$k]}")")" "$(ratio "${P50[$k]}" "${P50[$base]}")" \
      "$(ms "$(mean "${P99[$k]}")")" "$(ratio "${P99[$k]}" "${P99[$base]}")" \
      "$(proxy_cpu "$k")" "$(mb "$t" PEAK_RSS)" "$(mb "$t" IDLE_RSS)" "$(busy "$k")" "$(group "${CONNS[$k]}")" "${ERR[$k]}"
  done
  echo
  echo "(x): ratio to nginx in this run. req/s, p50, p99: mean of the rounds. CPU per request: user + system time of the proxy" \
    "(nginx: master + worker) during the rounds / requests answered. Peak RSS: VmHWM after the full-speed rounds (nginx: master +" \
    "worker); idle RSS: VmRSS after start. CPU busy: the proxy's share of its core, and how busy the loader's CPU was with" \
    "anything (client, backend, other work on the machine); near 100% there, the row measures the client side, not the proxy." \
    "Upstream connections opened: new backend connections during the rounds (the direct row: the client's own). Up to $C per" \
    "round is normal (wrk stops with requests in flight, and a proxy closes those upstream connections); without upstream" \
    "keep-alive it would be about one per request."
  echo
  echo "req/s per round: $(for t in "${TARGETS[@]}"; do printf '%s: %s; ' "${LABEL[$t]}" "$(for v in ${PER_ROUND[max:$t]}; do group "$v"; done | paste -sd' ')"; done | sed 's/; $//')"
  if [ "$FIXED" != 0 ]; then
    echo
    echo "### Fixed rate: $(group "$RATE") req/s for every target ($RATE_WHY; h2load --h1 -c$C --rps $(printf '%.2f' "$PER_CLIENT") per connection)"
    echo
    echo "| target | achieved req/s | p50 | p99 | CPU per request | CPU busy: proxy / loader | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    base=fixed:nginx
    for t in "${TARGETS[@]}"; do
      k=fixed:$t
      rps=$(mean "${RPS[$k]}")
      printf '| %s | %s%s | %s%s | %s%s | %s | %s | %d |\n' "${LABEL[$t]}" "$(group "$rps")" \
        "$(is "$rps < 0.95 * $RATE" && echo " (short of the rate)")" \
        "$(ms "$(mean "${P50[$k]}")")" "$(ratio "${P50[$k]}" "${P50[$base]}")" \
        "$(ms "$(mean "${P99[$k]}")")" "$(ratio "${P99[$k]}" "${P99[$base]}")" \
        "$(proxy_cpu "$k")" "$(busy "$k")" "${ERR[$k]}"
    done
    echo
    echo "h2load sends on each connection at the rate / $C and times each request from when it is sent (latencies from its" \
      "per-request log). A row short of the rate was over its capacity: its latencies are mostly queueing."
  fi
  echo
  echo "Issue 8 targets, full speed: Keystone / nginx req/s $(printf '%.2f' "$(calc "${RPS[max:keystone]} / ${RPS[max:nginx]}")") (>= 1.0)," \
    "CPU per request $(printf '%.2f' "$(calc "$(cpu_us max:keystone) / $(cpu_us max:nginx)")") (<= 1.0)," \
    "p99 $(printf '%.2f' "$(calc "${P99[max:keystone]} / ${P99[max:nginx]}")") (<= 1.0);" \
    "Keystone + Lua / nginx + Lua req/s $(printf '%.2f' "$(calc "${RPS[max:keystone_lua]} / ${RPS[max:nginx_lua]}")") (>= 1.0);" \
    "Keystone + Lua / Keystone req/s $(printf '%.2f' "$(calc "${RPS[max:keystone_lua]} / ${RPS[max:keystone]}")") (>= 0.9);" \
    "Keystone RSS idle $(printf '%.0f' "$(calc "${IDLE_RSS[keystone]} / 1024")") MB (<= 50), under load $(printf '%.0f' "$(calc "${PEAK_RSS[keystone]} / 1024")") MB (<= 100)."
}
mkdir -p Keystone.Benchmarks/load/results
RESULT="Keystone.Benchmarks/load/results/bench-load-$(date +%Y-%m-%d-%H%M).md"
report | tee "$RESULT"
echo "written to $RESULT in $(( SECONDS / 60 )) min $(( SECONDS % 60 )) s" >&2
