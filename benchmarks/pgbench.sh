#!/usr/bin/env bash
# PostgreSQL gate benchmark: pgbench select-only and tpcb-like at -c 1 and -c 8, against
# PostgreSQL directly, through pgbouncer (session pooling) and through capture-proxy with
# recording on, interleaved round by round in one run. Prints TPS, mean latency and
# each ratio to direct. Asserts nothing.
#
# Usage: benchmarks/pgbench.sh       Environment: SECONDS_PER_RUN (10), ROUNDS (3), SCALE (10), CLIENTS ("1 8")
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-10}
CLIENTS=${CLIENTS:-"1 8"}
work=$(mktemp -d /tmp/tollgate-pgbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

scripts/bootstrap --no-build >/dev/null
scripts/pg-test-cluster start >/dev/null
# shellcheck disable=SC1091
source "${TOLLGATE_STATE:-/tmp/tollgate-test}/pg.env"
pw=$TOLLGATE_PG_SCRAM_PASSWORD

echo "== pgbench through the gate: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo); PostgreSQL $(psql --version | awk '{print $3}'), pgbouncer $(pgbouncer --version | head -1 | awk '{print $2}')"
echo "runs: ${SECONDS_PER_RUN}s each, $ROUNDS rounds, scale $SCALE, clients: $CLIENTS"
echo "building capture-proxy (release, --scratch-path .build-release)"
swift build -c release --scratch-path .build-release --product capture-proxy 2>&1 | tail -1
gate_bin=.build-release/release/capture-proxy

PGPASSWORD=$pw pgbench -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench -i -s "$SCALE" -q "$TOLLGATE_PG_BENCH_DATABASE" >/dev/null 2>&1

# pgbouncer, session pooling, SCRAM to clients and upstream.
bouncer_port=56432
bdir=$work/bouncer
mkdir -p "$bdir"
cat > "$bdir/userlist.txt" <<U
"tollgate_bench" "$pw"
U
cat > "$bdir/pgbouncer.ini" <<INI
[databases]
$TOLLGATE_PG_BENCH_DATABASE = host=127.0.0.1 port=$TOLLGATE_PG_PORT dbname=$TOLLGATE_PG_BENCH_DATABASE
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
auth_type = scram-sha-256
auth_file = $bdir/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $bdir/pgbouncer.log
pidfile = $bdir/pgbouncer.pid
unix_socket_dir =
INI
chmod 755 "$work"
# pgbouncer refuses to run as root.
if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$bdir"; runuser -u postgres -- pgbouncer -q "$bdir/pgbouncer.ini" & else pgbouncer -q "$bdir/pgbouncer.ini" & fi
pids+=($!)

# The OIDC provider and the gate (recording to $work/captures).
issuer_port=59400
python3 -m oidc_provider_mock --port $issuer_port > "$work/oidc.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$issuer_port/.well-known/openid-configuration" >/dev/null 2>&1 && break; sleep 0.2; done
gate_port=56433
cat > "$work/gate.yaml" <<YAML
proxy: {id: bench-gate, captures: $work/captures, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  bench:
    protocol: postgres
    listen: 127.0.0.1:$gate_port
    upstream: 127.0.0.1:$TOLLGATE_PG_PORT
    upstream_tls: disable
    credentials: {user: tollgate_bench, password_env: BENCH_PW}
YAML
BENCH_PW=$pw "$gate_bin" run --config "$work/gate.yaml" --log-level warning > "$work/gate.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  pg_isready -q -h 127.0.0.1 -p $gate_port && pg_isready -q -h 127.0.0.1 -p $bouncer_port \
    && curl -fsS "http://127.0.0.1:$issuer_port/.well-known/openid-configuration" >/dev/null 2>&1 && break
  sleep 0.2
done
token=$(scripts/oidc-token "http://127.0.0.1:$issuer_port" bench@example.com --groups dba)

run() { # path script clients -> "tps latency_ms"
  local port user pass
  case $1 in
    direct) port=$TOLLGATE_PG_PORT; pass=$pw ;;
    pgbouncer) port=$bouncer_port; pass=$pw ;;
    gate) port=$gate_port; pass=$token ;;
  esac
  local builtin=$2 c=$3 out
  out=$(PGPASSWORD=$pass pgbench -h 127.0.0.1 -p "$port" -U tollgate_bench -n -b "$builtin" -c "$c" -j "$c" -T "$SECONDS_PER_RUN" \
        -M prepared "$TOLLGATE_PG_BENCH_DATABASE" 2>&1)
  echo "$(echo "$out" | awk '/^tps = / {print $3}') $(echo "$out" | awk '/latency average/ {print $4}')"
}

declare -A tps lat
for round in $(seq 1 "$ROUNDS"); do
  for script in select-only tpcb-like; do
    for c in $CLIENTS; do
      for path in direct pgbouncer gate; do
        read -r t l < <(run $path $script "$c")
        tps[$path,$script,$c]+="$t "; lat[$path,$script,$c]+="$l "
        printf 'round %d  %-11s -c %-2s %-9s  tps %10.1f  latency %6.3f ms\n' "$round" "$script" "$c" "$path" "$t" "$l"
      done
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "median of $ROUNDS rounds (pgbench -M prepared, ${SECONDS_PER_RUN}s per run; ratio = tps / direct tps)"
printf '%-12s %-3s %12s %12s %12s %9s %9s %9s %9s %9s\n' script c direct_tps bouncer_tps gate_tps direct_ms bouncer_ms gate_ms bouncer/d gate/d
for script in select-only tpcb-like; do
  for c in $CLIENTS; do
    d=$(echo "${tps[direct,$script,$c]}" | median); b=$(echo "${tps[pgbouncer,$script,$c]}" | median); g=$(echo "${tps[gate,$script,$c]}" | median)
    dl=$(echo "${lat[direct,$script,$c]}" | median); bl=$(echo "${lat[pgbouncer,$script,$c]}" | median); gl=$(echo "${lat[gate,$script,$c]}" | median)
    printf '%-12s %-3s %12.1f %12.1f %12.1f %9.3f %9.3f %9.3f %9.2f %9.2f\n' "$script" "$c" "$d" "$b" "$g" "$dl" "$bl" "$gl" \
      "$(awk -v a="$b" -v d="$d" 'BEGIN{print a/d}')" "$(awk -v a="$g" -v d="$d" 'BEGIN{print a/d}')"
  done
done
echo
captures=$(find "$work/captures" -name '*.sesscap' | wc -l)
echo "gate recorded $captures sessions, $(du -sh "$work/captures" | cut -f1) of captures"
