#!/usr/bin/env bash
# The gate's own CPU per pgbench transaction over a fixed number of transactions, for several
# capture-proxy builds interleaved round by round: wall-clock tps on this 2-core shared machine
# drifts by more than the differences worth finding, the CPU time the gate process spends on a
# fixed amount of work drifts less. (Instruction counts would be steadier still, but this VM
# exposes no hardware counters to perf, and valgrind cannot run the gate: it fails on the Swift
# toolchain's DWARF 5, and without debug info crashes in libdispatch's signal thread. Checked
# again with valgrind 3.19.0 on `capture-proxy --help`: callgrind and even `--tool=none` stop
# with valgrind's own SIGSEGV at libdispatch's sigsuspend, so there is no INSNS mode.)
# For each binary: starts the gate of benchmarks/pgbench.sh ("gate": recording, no policy), logs
# 8 pgbench clients in once to warm it (the catalog read, the statement cache), then reads the
# gate's user + system CPU (all threads, /proc) around `pgbench -t TXNS -c CLIENTS -M prepared`.
# With PERF=1 also samples the gate with `perf record -g` (cpu-clock) over the same count, for
# `perf report --no-children`. With STAT=1 also counts the gate's system calls (all, and read,
# write, writev, epoll_wait, futex) per transaction with `perf stat` tracepoints: those counts do
# not depend on the machine's load, and each system call costs the gate a few microseconds.
# Asserts nothing.
#
# Usage: benchmarks/gate-cpu.sh BINARY [BINARY...]
# Environment: TXNS (2000 per client), CLIENTS (8), ROUNDS (3), SCRIPT (select-only), OUT
#   (directory for the profiles; default a temporary one), PERF (0), STAT (0)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
TXNS=${TXNS:-2000}
CLIENTS=${CLIENTS:-8}
ROUNDS=${ROUNDS:-3}
SCRIPT=${SCRIPT:-select-only}
PERF=${PERF:-0}
STAT=${STAT:-0}
stat_events=raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex
work=$(mktemp -d /tmp/tollgate-gate-cpu.XXXXXX)
OUT=${OUT:-$work/out}
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work/captures"; }
trap cleanup EXIT

scripts/pg-test-cluster start >/dev/null
# shellcheck disable=SC1091
source "${TOLLGATE_STATE:-/tmp/tollgate-test}/pg.env"
pw=$TOLLGATE_PG_SCRAM_PASSWORD
PGPASSWORD=$pw psql -X -q -tA -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench -c 'SELECT 1 FROM pgbench_accounts LIMIT 1' \
  "$TOLLGATE_PG_BENCH_DATABASE" >/dev/null 2>&1 ||
  PGPASSWORD=$pw pgbench -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench -i -s 10 -q "$TOLLGATE_PG_BENCH_DATABASE" >/dev/null 2>&1
issuer_port=59480
python3 -m oidc_provider_mock --port $issuer_port > "$work/oidc.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$issuer_port/.well-known/openid-configuration" >/dev/null 2>&1 && break; sleep 0.2; done
token=$(scripts/oidc-token "http://127.0.0.1:$issuer_port" bench@example.com --groups dba)
port=56483
cat > "$work/gate.yaml" <<YAML
proxy: {id: bench-gate, captures: $work/captures, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  bench:
    protocol: postgres
    listen: 127.0.0.1:$port
    upstream: 127.0.0.1:$TOLLGATE_PG_PORT
    upstream_tls: disable
    credentials: {user: tollgate_bench, password_env: BENCH_PW}
YAML

bench() { # transactions per client
  PGPASSWORD=$token pgbench -h 127.0.0.1 -p $port -U tollgate_bench -n -b "$SCRIPT" -c "$CLIENTS" -j "$CLIENTS" -t "$1" \
    -M prepared "$TOLLGATE_PG_BENCH_DATABASE" > "$work/pgbench.log" 2>&1 || { tail -5 "$work/pgbench.log" >&2; exit 2; }
}
wait_ready() {
  for _ in $(seq 1 600); do pg_isready -q -h 127.0.0.1 -p $port && return 0; sleep 0.5; done
  echo "the gate did not start" >&2; tail -5 "$work/gate.log" >&2; exit 2
}
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}'; }
hz=$(getconf CLK_TCK)
declare -A results user
echo "== gate CPU per transaction: $SCRIPT, $CLIENTS clients x $TXNS transactions, $ROUNDS rounds, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
for round in $(seq 1 "$ROUNDS"); do
  n=0
  for bin in "$@"; do
    n=$((n + 1))
    rm -rf "$work/captures"
    BENCH_PW=$pw "$bin" run --config "$work/gate.yaml" --log-level warning > "$work/gate.log" 2>&1 &
    g=$!; pids+=($g)
    wait_ready
    bench 1
    read -r u0 s0 < <(ticks $g)
    if [ "$PERF" = 1 ]; then
      perf record -q -g -e cpu-clock -o "$OUT/perf.$n.$round.data" -p $g > /dev/null 2>&1 &
      pr=$!; sleep 0.5
    fi
    if [ "$STAT" = 1 ]; then
      perf stat -x, -e "$stat_events" -o "$OUT/stat.$n.$round.csv" -p $g > /dev/null 2>&1 &
      ps=$!; sleep 0.5
    fi
    bench "$TXNS"
    read -r u1 s1 < <(ticks $g)
    [ "$PERF" != 1 ] || { kill -INT $pr; wait $pr 2>/dev/null || true; }
    [ "$STAT" != 1 ] || { kill -INT $ps; wait $ps 2>/dev/null || true; }
    kill $g; wait $g 2>/dev/null || true
    tps=$(awk '/^tps = / {print $3}' "$work/pgbench.log")
    read -r us usr sys < <(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v n=$((CLIENTS * TXNS)) \
      'BEGIN{f = 1e6 / hz / n; printf "%.1f %.1f %.1f\n", (u + s) * f, u * f, s * f}')
    results[$n]+="$us "; user[$n]+="$usr "
    printf 'round %d  %-50s  %6s us CPU/txn (user %5s, system %5s)  tps %.0f\n' "$round" "$bin" "$us" "$usr" "$sys" "$tps"
    [ "$STAT" != 1 ] || awk -F, -v n=$((CLIENTS * TXNS)) '$3 ~ /:/ {sub(/.*:(sys_enter_)?/, "", $3); printf "  %s %.2f", $3, $1 / n} END {print "  (per txn)"}' \
      "$OUT/stat.$n.$round.csv"
  done
done
n=0
for bin in "$@"; do
  n=$((n + 1))
  printf '%-50s  us CPU/txn by round: %s  user: %s\n' "$bin" "${results[$n]}" "${user[$n]}"
done
[ "$PERF" != 1 ] || echo "profiles: $OUT/perf.N.ROUND.data (perf report --no-children -i ...)"
