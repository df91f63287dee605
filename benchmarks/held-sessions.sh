#!/usr/bin/env bash
# Do held sessions slow the others? pgbench select-only through one gate while HELD sessions
# (50) each wait with an UPDATE held for approval (a review rule with a one-hour timeout), against
# the same gate with none held. The two conditions alternate round by round (none first in odd
# rounds, held first in even ones), so drift on a shared machine hits both; the script prints
# each round's tps, the medians and the ratio tps(held) / tps(none). Asserts nothing; not part of
# the test run.
#
# The held clients are real psql processes; the script checks through the admin API (an
# approver's token) that all HELD requests are pending before pgbench starts, and after each
# held round disconnects them (the gate withdraws their requests) and waits until none is pending.
#
# Usage: benchmarks/held-sessions.sh
# Environment: ROUNDS (3), SECONDS_PER_RUN (10), CLIENTS (pgbench -c, 4), HELD (50), SCALE (10),
#   GATE_BIN (a capture-proxy binary; default: build one, release, --scratch-path .build-release)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-4}
HELD=${HELD:-50}
SCALE=${SCALE:-10}
work_prefix=held
# shellcheck disable=SC1091
source benchmarks/lib/approval-gate.sh
echo "== held sessions and pgbench select-only: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
machine_line
echo "capture-proxy: $gate_bin; rounds: $ROUNDS x ${SECONDS_PER_RUN}s each condition, pgbench -S -c $CLIENTS, $HELD held, scale $SCALE"

direct() { PGPASSWORD=$pw psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench "$db" "$@"; }
# pgbench's tables are made once (benchmarks/pgbench.sh remakes them too); the held rows are ours.
if ! direct -Atc "SELECT 1 FROM pgbench_accounts LIMIT 1" >/dev/null 2>&1; then
  PGPASSWORD=$pw pgbench -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench -i -s "$SCALE" -q "$db" >/dev/null 2>&1
fi
direct -c "SET client_min_messages = warning" -c "CREATE TABLE IF NOT EXISTS held_sessions_bench (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)" \
       -c "INSERT INTO held_sessions_bench SELECT i FROM generate_series(1, $HELD) i ON CONFLICT DO NOTHING"

start_issuer
gate_port=$(free_port) admin_port=$(free_port)
cat > "$work/gate.yaml" <<YAML
proxy: {id: bench-held, captures: $work/captures, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  bench:
    protocol: postgres
    listen: 127.0.0.1:$gate_port
    upstream: 127.0.0.1:$TOLLGATE_PG_PORT
    upstream_tls: disable
    credentials: {user: tollgate_bench, password_env: BENCH_PW}
    limits: {idle_timeout: 2h}
admin: {listen: 127.0.0.1:$admin_port, groups: [tollgate-ops]}
policies:
  - name: bench
    who: {groups: [dba]}
    rules:
      - {name: reads, when: {statement: [select], writes: false}, then: allow}
      - {name: transactions, when: {statement: [begin, commit, rollback]}, then: allow}
      - name: held
        when: {statement: [update], tables: [public.held_sessions_bench]}
        then: review
        approvers: [bench-approvers]
        timeout: 1h
YAML
BENCH_PW=$pw "$gate_bin" run --config "$work/gate.yaml" --log-level warning > "$work/gate.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p $gate_port && break; sleep 0.2; done
pg_isready -q -h 127.0.0.1 -p $gate_port || { echo "the gate did not start:"; tail -5 "$work/gate.log"; exit 2; }
token=$(scripts/oidc-token "http://127.0.0.1:$issuer_port" bench@example.com --groups dba)
approver=$(scripts/oidc-token "http://127.0.0.1:$issuer_port" approver@example.com --groups bench-approvers)

pending() {
  curl -fsS -H "Authorization: Bearer $approver" "http://127.0.0.1:$admin_port/v1/approvals?state=pending" \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["approvals"]))'
}
wait_pending() {
  for _ in $(seq 1 300); do [ "$(pending)" = "$1" ] && return 0; sleep 0.2; done
  echo "expected $1 pending approvals, the gate has $(pending)" >&2; exit 2
}
hold() {
  held_pids=()
  for i in $(seq 1 "$HELD"); do
    PGPASSWORD=$token psql -X -q "host=127.0.0.1 port=$gate_port dbname=$db user=bench sslmode=disable" \
      -c "UPDATE held_sessions_bench SET n = n + 1 WHERE id = $i" > /dev/null 2>&1 &
    held_pids+=($!)
  done
  wait_pending "$HELD"
}
release() {
  for p in "${held_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${held_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  held_pids=()
  wait_pending 0
}
tps() {
  PGPASSWORD=$token pgbench -h 127.0.0.1 -p $gate_port -U bench -S -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" "$db" 2>/dev/null \
    | awk '/^tps/ { print $3; exit }'
}
declare -a none_tps held_tps
for r in $(seq 1 "$ROUNDS"); do
  if (( r % 2 )); then order="none held"; else order="held none"; fi
  for c in $order; do
    if [ "$c" = held ]; then hold; t=$(tps); release; held_tps+=("$t"); else t=$(tps); none_tps+=("$t"); fi
    printf "round %d  %-4s  %10.1f tps\n" "$r" "$c" "$t"
  done
done
python3 - "${none_tps[*]}" "${held_tps[*]}" <<'PY'
import statistics, sys
none = [float(x) for x in sys.argv[1].split()]
held = [float(x) for x in sys.argv[2].split()]
mn, mh = statistics.median(none), statistics.median(held)
print(f"median tps over {len(none)} rounds each: with none held {mn:.1f}, with sessions held {mh:.1f}")
print(f"ratio held/none: {mh / mn:.3f} (per round: {', '.join(f'{h / n:.3f}' for n, h in zip(none, held))})")
PY
