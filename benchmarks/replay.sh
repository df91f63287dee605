#!/usr/bin/env bash
# Replay benchmark (issue 21): one large session recorded through the gate (pgbench -f, one
# SELECT per transaction, N statements) is replayed with `sessreplay --fast` against the local
# PostgreSQL; in the same run Debian's pgreplay replays the same statements from a PostgreSQL CSV
# log. The CSV log comes from a throwaway PostgreSQL cluster of this script's own (csvlog and
# log_statement=all are server-wide settings the shared test cluster must not change), on which
# pgbench runs the same script with the same --random-seed: the same statements, in the same
# order. Both replays go to the same database of the shared cluster. Prints statements/s for
# both. Asserts nothing.
#
# Usage: benchmarks/replay.sh
# Environment: STATEMENTS (100000), BUILD_DIR (.build-release; the release build's scratch path), BIN_DIR
#   (a directory holding a built sessreplay, used instead of building), GATE_BIN (a capture-proxy to record
#   with; default: BIN_DIR's, else a release build),
#   ROUNDS (2: each replayer runs this many times, interleaved)
set -euo pipefail
cd "$(dirname "$0")/.."
STATEMENTS=${STATEMENTS:-100000}
BUILD_DIR=${BUILD_DIR:-.build-release}
ROUNDS=${ROUNDS:-2}
work=$(mktemp -d /tmp/tollgate-replay.XXXXXX)
chmod 755 "$work"
pids=()
logpg=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -z "$logpg" ] || runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$logpg" -m immediate stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v pgreplay >/dev/null || { echo "installing pgreplay (apt)"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgreplay >/dev/null; }
scripts/pg-test-cluster start >/dev/null
# shellcheck disable=SC1091
source "${TOLLGATE_STATE:-/tmp/tollgate-test}/pg.env"
pw=$TOLLGATE_PG_SCRAM_PASSWORD
db=replay21_bench

echo "== replay: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo); PostgreSQL $(psql --version | awk '{print $3}'), $(pgreplay -v 2>&1 | head -1)"
if [ -n "${BIN_DIR:-}" ]; then
  bin=$BIN_DIR
  echo "sessreplay from $bin (BIN_DIR)"
else
  echo "building sessreplay (release, --scratch-path $BUILD_DIR)"
  swift build -c release --scratch-path "$BUILD_DIR" --product sessreplay 2>&1 | tail -1
  bin=$BUILD_DIR/release
fi
# The gate only records the session here: its speed is not measured, any build will do.
if [ -n "${GATE_BIN:-}" ]; then
  gate_bin=$GATE_BIN
elif [ -x "$bin/capture-proxy" ]; then
  gate_bin=$bin/capture-proxy
else
  echo "building capture-proxy (release, --scratch-path $BUILD_DIR)"
  swift build -c release --scratch-path "$BUILD_DIR" --product capture-proxy 2>&1 | tail -1
  gate_bin=$BUILD_DIR/release/capture-proxy
fi
echo "capture-proxy: $gate_bin"

# The replay target: a database of this benchmark's own in the shared cluster (tollgate_bench is its superuser).
export PGPASSWORD=$pw
psql -X -q -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
  || psql -X -q -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench -d postgres -c "CREATE DATABASE $db"
pgbench -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench -i -s 1 -q "$db" >/dev/null 2>&1
cat > "$work/select.sql" <<'SQL'
\set aid random(1, 100000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SQL

# 1. The session recorded through the gate: pgbench's statements, one connection.
source benchmarks/lib/issuer.sh
start_issuer
gate_port=$(free_port)
cat > "$work/gate.yaml" <<YAML
proxy: {id: bench-replay, captures: $work/captures, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  bench:
    protocol: postgres
    listen: 127.0.0.1:$gate_port
    upstream: 127.0.0.1:$TOLLGATE_PG_PORT
    upstream_tls: disable
    credentials: {user: tollgate_bench, password_env: BENCH_PW}
policies:
  - name: bench
    who: {groups: [dba]}
    rules:
      - {name: pgbench-tables, when: {tables: ["public.pgbench_*"], statement: [select]}, then: allow}
YAML
BENCH_PW=$pw "$gate_bin" run --config "$work/gate.yaml" --log-level warning > "$work/gate.log" 2>&1 &
gate_pid=$!
pids+=($gate_pid)
for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$gate_port") 2>/dev/null && break; sleep 0.2; done
token=$(scripts/oidc-token "http://127.0.0.1:$issuer_port" bench@example.com --groups dba)
echo "recording $STATEMENTS statements through the gate (pgbench -f, --random-seed 21)"
PGPASSWORD=$token pgbench -h 127.0.0.1 -p "$gate_port" -U tollgate_bench -n -c 1 -t "$STATEMENTS" --random-seed 21 -f "$work/select.sql" "$db" > "$work/pgbench-gate.log" 2>&1 \
  || { cat "$work/pgbench-gate.log" "$work/gate.log"; exit 1; }
kill -TERM "$gate_pid"; wait "$gate_pid" 2>/dev/null || true
# pgbench's own first connection is a session too: the benchmark's session is the largest capture.
capture=$(find "$work/captures" -name '*.sesscap' -print0 | xargs -0 ls -S | head -1)
echo "capture: $(du -h "$capture" | cut -f1), $("$bin/sessreplay" --dry-run --json --target "postgres://tollgate_bench@127.0.0.1:$TOLLGATE_PG_PORT/$db" "$capture" | python3 -c 'import json,sys; print(json.load(sys.stdin)["replayed"])') statements to replay"

# 2. The same statements as a PostgreSQL CSV log, from a throwaway cluster of this script's own.
logpg=$work/logpg
install -d -o postgres "$logpg"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$logpg" -A trust -U postgres >/dev/null
log_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >> "$logpg/postgresql.conf" <<CONF
port = $log_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$logpg'
logging_collector = on
log_destination = 'csvlog'
log_directory = 'log'
log_filename = 'replay-%Y%m%d%H%M%S.log'
log_statement = 'all'
log_rotation_size = 0
log_rotation_age = 0
log_connections = on
log_disconnections = on
lc_messages = 'C'
fsync = off
CONF
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$logpg" -l "$logpg/start.log" -w start >/dev/null
psql -X -q -h 127.0.0.1 -p "$log_port" -U postgres -d postgres -c "CREATE ROLE tollgate_bench LOGIN SUPERUSER" -c "CREATE DATABASE $db OWNER tollgate_bench"
pgbench -h 127.0.0.1 -p "$log_port" -U tollgate_bench -i -s 1 -q "$db" >/dev/null 2>&1
# Only the benchmark's own session in the log that is replayed: a new log file from here (named by the second).
sleep 1.1
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$logpg" logrotate >/dev/null
sleep 0.5
echo "writing the same statements to a CSV log (pgbench -f directly on a throwaway cluster, --random-seed 21)"
pgbench -h 127.0.0.1 -p "$log_port" -U tollgate_bench -n -c 1 -t "$STATEMENTS" --random-seed 21 -f "$work/select.sql" "$db" > "$work/pgbench-log.log" 2>&1
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$logpg" -w stop >/dev/null
logpg_stopped=$logpg; logpg=
csv=$(ls "$logpg_stopped"/log/*.csv | sort | tail -1)
# Keep the pgbench session only (the log also holds the checkpointer's lines and the like).
logged=$(grep -c 'statement: SELECT abalance' "$csv" || true)
echo "CSV log: $(du -h "$csv" | cut -f1), $logged statements"
# The same statements: the capture's texts against the log's, in order.
"$bin/sessreplay" --dry-run --json --target "postgres://tollgate_bench@127.0.0.1:$TOLLGATE_PG_PORT/$db" "$capture" \
  | python3 -c 'import json,sys; [print(s["text"]) for s in json.load(sys.stdin)["sessions"][0]["steps"]]' > "$work/capture.sql"
python3 - "$csv" > "$work/log.sql" <<'PY'
import csv, sys
for row in csv.reader(open(sys.argv[1], newline='')):
    if len(row) > 13 and row[13].startswith('statement: SELECT abalance'):
        print(row[13][len('statement: '):])
PY
if cmp -s "$work/capture.sql" "$work/log.sql"; then echo "the capture and the CSV log hold the same $logged statements, in the same order"; else echo "WARNING: the capture's statements and the log's differ"; fi

# 3. Both replays against the shared cluster's $db, interleaved round by round.
openssl genpkey -algorithm ed25519 -out "$work/replay.key" 2>/dev/null
printf '%-12s %6s %12s %14s\n' replayer round seconds statements/s
for round in $(seq 1 "$ROUNDS"); do
  start=$(date +%s.%N)
  "$bin/sessreplay" --fast --json --target "postgres://tollgate_bench@127.0.0.1:$TOLLGATE_PG_PORT/$db?sslmode=disable" \
    --signing-key "$work/replay.key" --out "$work/replays-$round" "$capture" > "$work/sessreplay-$round.json"
  end=$(date +%s.%N)
  n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["replayed"])' "$work/sessreplay-$round.json")
  printf '%-12s %6s %12.2f %14.0f\n' sessreplay "$round" "$(echo "$end - $start" | bc)" "$(echo "$n / ($end - $start)" | bc -l)"
  # The same without pipelining: each request waits for the answer to the one before.
  start=$(date +%s.%N)
  "$bin/sessreplay" --fast --pipeline 1 --json --target "postgres://tollgate_bench@127.0.0.1:$TOLLGATE_PG_PORT/$db?sslmode=disable" \
    --signing-key "$work/replay.key" --out "$work/replays-serial-$round" "$capture" > "$work/sessreplay-serial-$round.json"
  end=$(date +%s.%N)
  n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["replayed"])' "$work/sessreplay-serial-$round.json")
  printf '%-12s %6s %12.2f %14.0f\n' "sessreplay-1" "$round" "$(echo "$end - $start" | bc)" "$(echo "$n / ($end - $start)" | bc -l)"
  start=$(date +%s.%N)
  pgreplay -c -j -s 1000 -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -W "$pw" "$csv" > "$work/pgreplay-$round.log" 2>&1 \
    || { cat "$work/pgreplay-$round.log"; exit 1; }
  end=$(date +%s.%N)
  printf '%-12s %6s %12.2f %14.0f\n' pgreplay "$round" "$(echo "$end - $start" | bc)" "$(echo "$logged / ($end - $start)" | bc -l)"
done
echo "(wall time of each process, start to exit, logins included; sessreplay also records its replay as a signed capture;"
echo " sessreplay: --fast, 64 requests in flight; sessreplay-1: --fast --pipeline 1, each request after the previous answer)"
echo "pgreplay's own statistics, last round:"
sed 's/^/  /' "$work/pgreplay-$ROUNDS.log"
