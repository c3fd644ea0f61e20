# shellcheck shell=bash
# Sourced by the load scripts (from the repository root): a scratch folder, every process started
# here stopped by PID on exit, Debian packages installed on demand, and CPU time read from /proc.
# Usage: source Keystone.Benchmarks/load/common.sh <name>
WORK=$(mktemp -d "/tmp/keystone-$1-XXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# need <command or file> <package>: installs the Debian package when the command (or file) is missing.
# apt-get update runs once per script. A package's system service is never used: any service the install
# added is stopped and disabled right after it (where the machine has a policy-rc.d, it never starts).
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
APT_UPDATED=""
need() {
  if command -v "$1" >/dev/null || [ -e "$1" ]; then return 0; fi
  local before svc
  before=$(services)
  [ -n "$APT_UPDATED" ] || { $SUDO apt-get update -qq; APT_UPDATED=1; }
  $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  for svc in $(comm -13 <(echo "$before") <(services)); do quiet_service "$svc"; done
}
# shellcheck disable=SC2012 # service names are plain
services() { { ls /etc/init.d; ls /lib/systemd/system | sed -n 's/\.service$//p'; } 2>/dev/null | sort -u; }
quiet_service() { # a service an install just added: not running, not started at boot
  local pid
  if [ -d /run/systemd/system ]; then $SUDO systemctl disable --now --quiet "$1" 2>/dev/null || true
  elif command -v systemctl >/dev/null; then $SUDO systemctl disable --quiet "$1" 2>/dev/null || true; fi
  if command -v update-rc.d >/dev/null && [ -e "/etc/init.d/$1" ]; then $SUDO update-rc.d "$1" disable >/dev/null 2>&1 || true; fi
  # Without systemd: nginx and haproxy write /run/<name>.pid when their init script starts them.
  if [ -f "/run/$1.pid" ] && pid=$(cat "/run/$1.pid") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "stopping the $1 service the install started (pid $pid)" >&2; $SUDO kill "$pid" || true
  fi
  if pgrep -x "$1" >/dev/null; then echo "warning: a '$1' process runs that this script did not start: $(pgrep -x "$1" | tr '\n' ' ')" >&2; fi
}

# CPU time (utime + stime, in clock ticks) of one or more processes; the command name may hold spaces.
cpu_ticks() { local p t=0; for p in "$@"; do t=$(( t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}') )); done; echo "$t"; }
# shellcheck disable=SC2034 # HZ and BACKEND_PID are for the scripts that source this file
HZ=$(getconf CLK_TCK)

# start_backend <port> [cpus]: the fixed backend of every load script, nginx answering "hello" with its own config
# (never the system service), pinned to <cpus> when given; its PID is added to PIDS and left in BACKEND_PID.
start_backend() {
  mkdir -p "$WORK/backend"
  cat > "$WORK/backend/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/backend/nginx.pid;
error_log $WORK/backend/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;  # nginx closes a connection after 1,000 requests by default
  server {
    listen 127.0.0.1:$1;
    location = /api/check { return 200 "consumer=\$http_x_consumer\n"; }  # what the Lua hooks set upstream
    location = /backend_status { stub_status; }  # "accepts": connections opened to the backend
    location / { return 200 "hello\n"; }
  }
}
NGINX
  ${2:+taskset -c "$2"} nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" & PIDS+=($!)
  # shellcheck disable=SC2034
  BACKEND_PID=$!
}

# wait_http <url> [curl args...]: until the URL answers 2xx, at most 20 s.
wait_http() {
  local url=$1; shift
  for _ in $(seq 1 200); do curl -sf -o /dev/null "$@" "$url" && return 0; sleep 0.1; done
  echo "no answer from $url after 20 s" >&2; return 1
}
