#!/usr/bin/env bash
# HTTP gate benchmark (issue 20): wrk against a local nginx serving a ~2 KiB JSON document that
# holds e-mails and SSNs, by three paths interleaved round by round in one run: "direct" (nginx
# itself), "nginx" (a second nginx as a reverse proxy, proxy_pass with a keep-alive upstream: the
# peer a user would otherwise deploy) and "gate" (capture-proxy with an HTTP target: the OIDC
# token checked on every request, a policy allowing GET on the path, masks email and us_ssn on
# the response, recording on). Every path gets the same `Authorization: Bearer` token. Prints
# requests/s, p50 and p99 latency per path and round, each proxy's CPU per request, then medians
# and the ratios gate/direct, nginx/direct and gate/nginx. Before the runs one curl through each
# gate checks that its answer is 200 and masked, so the run measures the real path. Asserts
# nothing else.
#
# Two CPU layouts, interleaved too, as benchmarks/pgbench.sh: "shared", every process on every
# core, and "pinned", wrk and the origin nginx on the first CPU and the proxy (nginx proxy or
# gate) alone on the second: a model of a gate on its own host or pod.
#
# Usage: benchmarks/http.sh
# Environment: SECONDS_PER_RUN (10), ROUNDS (3), THREADS (2), CONNECTIONS (32),
#   PATHS ("direct nginx gate"), LAYOUTS ("shared pinned"; pinned needs 2 cores),
#   GATE_BIN (a capture-proxy binary to use instead of building one)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
PATHS=${PATHS:-"direct nginx gate"}
LAYOUTS=${LAYOUTS:-"shared pinned"}
for path in $PATHS; do
  case $path in direct|nginx|gate) ;; *) echo "unknown path '$path' (direct, nginx, gate)" >&2; exit 2 ;; esac
done
source benchmarks/lib/layouts.sh

# Benchmarks install their own tools: wrk and nginx (nginx-light) from Debian.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} (apt-get)"
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

work=$(mktemp -d /tmp/tollgate-httpbench.XXXXXX)
chmod 755 "$work"  # nginx's workers (www-data when started as root) read the document
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"
}
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.2; done; return 1; }

echo "== wrk through the HTTP gate: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
echo "runs: wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_PER_RUN}s --latency, $ROUNDS rounds, paths: $PATHS"
if [ -n "${GATE_BIN:-}" ]; then
  gate_bin=$GATE_BIN
  echo "capture-proxy: $gate_bin (GATE_BIN)"
else
  echo "building capture-proxy (release, --scratch-path .build-release)"
  swift build -c release --scratch-path .build-release --product capture-proxy 2>&1 | tail -1
  gate_bin=.build-release/release/capture-proxy
fi

# The document: ~2 KiB of JSON, eighteen customers, each with an e-mail and an SSN.
mkdir -p "$work/www/api"
python3 - "$work/www/api/customers.json" <<'PY'
import json, sys
people = [{"id": i, "name": f"Customer {i}", "email": f"customer{i}@example.com",
           "ssn": f"{100 + i:03d}-{20 + i:02d}-{3000 + i:04d}", "plan": "standard", "active": i % 3 != 0}
          for i in range(1, 19)]
open(sys.argv[1], "w").write(json.dumps({"customers": people}, separators=(",", ":")))
PY
doc_bytes=$(stat -c %s "$work/www/api/customers.json")
url_path=/api/customers.json

# nginx configuration: `nginx_conf DIR PORT WORKERS SERVER_BODY`.
nginx_conf() {
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<CONF
daemon off;
worker_processes $3;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    types { application/json json; }
    default_type application/octet-stream;
    keepalive_requests 1000000;
    $4
}
CONF
}
# The origin: one nginx serving the document, as many workers as CPUs.
origin_port=58610
nginx_conf "$work/origin" $origin_port "${#cpu_list[@]}" "server { listen 127.0.0.1:$origin_port; root $work/www; }"
nginx -p "$work/origin" -c "$work/origin/nginx.conf" -e "$work/origin/error.log" &
pids+=($!); origin_pid=$!
wait_port $origin_port || { echo "the origin nginx did not start" >&2; cat "$work/origin/error.log" >&2; exit 2; }

# The OIDC provider and a token for the gate (the same token is sent on every path).
source benchmarks/lib/issuer.sh
start_issuer
token=$(scripts/oidc-token "http://127.0.0.1:$issuer_port" bench@example.com --groups bench)

# One set of proxies per layout, started on that layout's CPUs so that each sizes itself (nginx
# workers, the gate's event loops) for the CPUs it has. Ports: base nginx proxy, base+1 gate.
declare -A port proc
start_proxies() { # layout cpus base_port
  local layout=$1 cpus=$2 base=$3 dir=$work/$1 n
  n=$(taskset -c "$cpus" nproc)
  port[$layout,nginx]=$base; port[$layout,gate]=$((base + 1))
  if [[ " $PATHS " == *" nginx "* ]]; then
    nginx_conf "$dir/nginx" "${port[$layout,nginx]}" "$n" "
    upstream origin { server 127.0.0.1:$origin_port; keepalive 64; }
    server {
        listen 127.0.0.1:${port[$layout,nginx]};
        location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
    }"
    taskset -c "$cpus" nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" &
    pids+=($!); proc[$layout,nginx]=$!
    wait_port "${port[$layout,nginx]}" || { echo "the nginx proxy of layout $layout did not start" >&2; cat "$dir/nginx/error.log" >&2; exit 2; }
  fi
  if [[ " $PATHS " == *" gate "* ]]; then
    mkdir -p "$dir"
    cat > "$dir/gate.yaml" <<YAML
proxy: {id: bench-http-gate, captures: $work/captures-$layout, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  api:
    protocol: http
    listen: 127.0.0.1:${port[$layout,gate]}
    upstream: 127.0.0.1:$origin_port
    upstream_tls: disable
    credentials: {token_env: BENCH_UPSTREAM_TOKEN}
    masks: [email, us_ssn]
policies:
  - name: bench
    who: {groups: [bench]}
    target: api
    rules:
      - {name: reads, when: {method: [GET], http_path: ["$url_path"]}, then: allow}
YAML
    BENCH_UPSTREAM_TOKEN=bench-upstream-token taskset -c "$cpus" "$gate_bin" run --config "$dir/gate.yaml" --log-level warning > "$dir/gate.log" 2>&1 &
    pids+=($!); proc[$layout,gate]=$!
    wait_port "${port[$layout,gate]}" || { echo "the gate of layout $layout did not start" >&2; tail -5 "$dir/gate.log" >&2; exit 2; }
    # The gate's answer must be the masked document, or the run would measure something else.
    local body status
    body=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:${port[$layout,gate]}$url_path")
    status=${body##*$'\n'}; body=${body%$'\n'*}
    if [ "$status" != 200 ] || [[ $body == *customer1@example.com* ]] || [[ $body == *101-21-3001* ]] || [[ $body != *'"name":"Customer 1"'* ]]; then
      echo "the gate of layout $layout did not answer the masked document (HTTP $status):" >&2; echo "$body" | head -c 600 >&2; echo >&2
      tail -5 "$dir/gate.log" >&2; exit 2
    fi
    echo "gate ($layout): HTTP 200, $(printf %s "$body" | wc -c) bytes (document $doc_bytes), e-mails and SSNs masked"
  fi
}
for layout in $LAYOUTS; do
  case $layout in
    shared) start_proxies shared "$all_cpus" 58620 ;;
    pinned) start_proxies pinned "${cpu_list[1]}" 58630 ;;
  esac
done
echo "layouts: $LAYOUTS"

# The origin nginx and wrk on the layout's client CPUs.
client_cpus=$all_cpus
use_layout() {
  case $1 in
    shared) client_cpus=$all_cpus ;;
    pinned) client_cpus=${cpu_list[0]} ;;
  esac
  pin "$origin_pid" "$client_cpus"
}
# User and system CPU of a process, its threads and its children (nginx's workers), in clock ticks.
ticks() {
  [ -n "$1" ] || { echo 0; return; }
  local p total=0
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] && total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)
# wrk's latency with its unit (us, ms, s) in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; print n }'; }

run() { # layout path -> "requests_per_s p50_ms p99_ms proxy_cpu_us_per_request errors"
  local p
  case $2 in direct) p=$origin_port ;; *) p=${port[$1,$2]} ;; esac
  local pid=${proc[$1,$2]:-} before after out
  before=$(ticks "$pid")
  out=$(taskset -c "$client_cpus" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency \
        -H "Authorization: Bearer $token" "http://127.0.0.1:$p$url_path" 2>&1) || true  # a failed run is reported below
  after=$(ticks "$pid")
  local rps p50 p99 n errors cpu
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')"); p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  # Non-2xx answers and socket errors: a run with any is not a measure of the path.
  errors=$(echo "$out" | awk '/Non-2xx/ {e += $NF} /Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}')
  if [ -z "$rps" ]; then echo "wrk failed on $1 $2:" >&2; echo "$out" | tail -5 >&2; rps=0; fi
  cpu=$(awk -v d=$((after - before)) -v hz="$hz" -v n="${n:-0}" 'BEGIN{print (n > 0 ? d * 1e6 / hz / n : 0)}')
  echo "$rps $p50 $p99 $cpu $errors"
}

declare -A rps p50 p99 cpu
for round in $(seq 1 "$ROUNDS"); do
  for layout in $LAYOUTS; do
    use_layout "$layout"
    for path in $PATHS; do
      read -r r a b u e < <(run "$layout" "$path")
      rps[$layout,$path]+="$r "; p50[$layout,$path]+="$a "; p99[$layout,$path]+="$b "; cpu[$layout,$path]+="$u "
      printf 'round %d  %-6s %-6s  %9.1f req/s  p50 %7.3f ms  p99 %7.3f ms  proxy CPU %6.1f us/req%s\n' \
        "$round" "$layout" "$path" "$r" "$a" "$b" "$u" "$([ "$e" = 0 ] || echo "  ERRORS $e (non-2xx or socket)")"
    done
  done
done
use_layout shared

source benchmarks/lib/stats.sh
has() { [[ " $PATHS " == *" $1 "* ]]; }
echo
echo "median of $ROUNDS rounds (wrk -t$THREADS -c$CONNECTIONS, ${SECONDS_PER_RUN}s per run; document $doc_bytes bytes; spread = (max - min) / median of req/s)"
printf '%-7s %-7s %11s %9s %9s %8s %11s\n' layout path req/s p50_ms p99_ms spread_% cpu_us/req
for layout in $LAYOUTS; do
  for path in $PATHS; do
    printf '%-7s %-7s %11.1f %9.3f %9.3f %8.1f %11.1f\n' "$layout" "$path" "$(echo "${rps[$layout,$path]}" | median)" \
      "$(echo "${p50[$layout,$path]}" | median)" "$(echo "${p99[$layout,$path]}" | median)" \
      "$(echo "${rps[$layout,$path]}" | spread)" "$(echo "${cpu[$layout,$path]}" | median)"
  done
done
echo
echo "ratios of median req/s (the aim, issue 20: pinned gate/nginx >= 1; shared gate/nginx >= 0.6)"
for layout in $LAYOUTS; do
  line="$layout:"
  m() { echo "${rps[$layout,$1]}" | median; }
  if has gate && has direct; then line+=$(printf '  gate/direct %.2f' "$(ratio "$(m gate)" "$(m direct)")"); fi
  if has nginx && has direct; then line+=$(printf '  nginx/direct %.2f' "$(ratio "$(m nginx)" "$(m direct)")"); fi
  if has gate && has nginx; then line+=$(printf '  gate/nginx %.2f' "$(ratio "$(m gate)" "$(m nginx)")"); fi
  echo "$line"
done
for layout in $LAYOUTS; do
  [ -d "$work/captures-$layout" ] || continue
  echo "captures ($layout): $(find "$work/captures-$layout" -name '*.sesscap' | wc -l) sessions, $(du -sh "$work/captures-$layout" | cut -f1)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
