#!/usr/bin/env bash
# Approval latency: from the approver's POST to the held statement reaching PostgreSQL. N times
# (20): a psql client's UPDATE is held by a review rule; once the admin API lists it pending, the
# approver's POST /v1/approvals/ID/approve is sent (time t0, taken just before the request is
# written, on this host's clock); the UPDATE stores clock_timestamp() (PostgreSQL's clock, same
# host) when it runs, which is when it reached PostgreSQL. Prints the median and p95 of
# reached - t0.
#
# For comparison, the same UPDATE unheld (a policy allowing it, for another group), N times each
# through the gate and straight to PostgreSQL, from the moment psycopg sends it (t0) to its
# clock_timestamp(): the difference of the two is what the gate adds to an allowed statement.
# Asserts nothing; not part of the test run.
#
# Usage: benchmarks/approval-latency.sh
# Environment: N (20), GATE_BIN (a capture-proxy binary; default: build one, release,
#   --scratch-path .build-release)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
work_prefix=approval
# shellcheck disable=SC1091
source benchmarks/lib/approval-gate.sh
echo "== approval latency: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
machine_line
echo "capture-proxy: $gate_bin; N = $N"

PGPASSWORD=$pw psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench "$db" \
  -c "SET client_min_messages = warning" -c "CREATE TABLE IF NOT EXISTS approval_latency_bench (id int PRIMARY KEY, reached timestamptz)" \
  -c "INSERT INTO approval_latency_bench SELECT i FROM generate_series(1, 3 * $N) i ON CONFLICT DO NOTHING"

start_issuer
gate_port=$(free_port) admin_port=$(free_port)
cat > "$work/gate.yaml" <<YAML
proxy: {id: bench-approval, captures: $work/captures, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  bench:
    protocol: postgres
    listen: 127.0.0.1:$gate_port
    upstream: 127.0.0.1:$TOLLGATE_PG_PORT
    upstream_tls: disable
    credentials: {user: tollgate_bench, password_env: BENCH_PW}
admin: {listen: 127.0.0.1:$admin_port, groups: [tollgate-ops]}
policies:
  - name: held
    who: {groups: [requesters]}
    rules:
      - name: needs-approval
        when: {statement: [update], tables: [public.approval_latency_bench]}
        then: review
        approvers: [bench-approvers]
        timeout: 10m
  - name: unheld
    who: {groups: [trusted]}
    rules:
      - {name: allowed, when: {statement: [update], tables: [public.approval_latency_bench]}, then: allow}
YAML
BENCH_PW=$pw "$gate_bin" run --config "$work/gate.yaml" --log-level warning > "$work/gate.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p $gate_port && break; sleep 0.2; done
pg_isready -q -h 127.0.0.1 -p $gate_port || { echo "the gate did not start:"; tail -5 "$work/gate.log"; exit 2; }
issuer=http://127.0.0.1:$issuer_port
REQUESTER=$(scripts/oidc-token "$issuer" requester@example.com --groups requesters) \
TRUSTED=$(scripts/oidc-token "$issuer" trusted@example.com --groups trusted) \
APPROVER=$(scripts/oidc-token "$issuer" approver@example.com --groups bench-approvers) \
PW=$pw N=$N DB=$db PG_PORT=$TOLLGATE_PG_PORT GATE_PORT=$gate_port ADMIN_PORT=$admin_port python3 - <<'PY'
import http.client, json, os, statistics, subprocess, time
import psycopg

env = os.environ
n, db = int(env["N"]), env["DB"]
gate = f"host=127.0.0.1 port={env['GATE_PORT']} dbname={db} user=bench sslmode=disable"
direct = f"host=127.0.0.1 port={env['PG_PORT']} dbname={db} user=tollgate_bench password={env['PW']}"

def admin(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", int(env["ADMIN_PORT"]), timeout=30)
    headers = {"Authorization": "Bearer " + env["APPROVER"]}
    if body is not None:
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data or b"{}")

def reached(row):
    with psycopg.connect(direct, autocommit=True) as c:
        return c.execute("SELECT extract(epoch FROM reached) FROM approval_latency_bench WHERE id = %s", (row,)).fetchone()[0]

def summary(name, xs):
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * len(xs))) - 1)]
    print(f"{name:<48} median {statistics.median(xs) * 1000:8.2f} ms   p95 {p95 * 1000:8.2f} ms   (n={len(xs)})")

held = []
for i in range(1, n + 1):
    client = subprocess.Popen(["psql", "-X", "-q", gate, "-c",
                               f"UPDATE approval_latency_bench SET reached = clock_timestamp() WHERE id = {i}"],
                              env={**env, "PGPASSWORD": env["REQUESTER"]}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pending = []
    for _ in range(600):
        pending = admin("GET", "/v1/approvals?state=pending")[1].get("approvals", [])
        if pending:
            break
        time.sleep(0.05)
    assert len(pending) == 1, f"expected one pending approval, got {pending}"
    t0 = time.time()
    status, _ = admin("POST", f"/v1/approvals/{pending[0]['id']}/approve", json.dumps({"reason": "benchmark"}))
    assert status == 200, status
    assert client.wait(timeout=60) == 0, "the held UPDATE failed"
    held.append(float(reached(i)) - t0)

def unheld(conninfo, rows, password):
    out = []
    with psycopg.connect(conninfo, password=password, autocommit=True) as c:
        for row in rows:
            t0 = time.time()
            c.execute("UPDATE approval_latency_bench SET reached = clock_timestamp() WHERE id = %s", (row,))
            out.append(float(reached(row)) - t0)
    return out

through_gate = unheld(gate, range(n + 1, 2 * n + 1), env["TRUSTED"])
straight = unheld(direct, range(2 * n + 1, 3 * n + 1), env["PW"])
summary("held: approver's POST -> reached PostgreSQL", held)
summary("unheld through the gate: sent -> reached", through_gate)
summary("unheld straight to PostgreSQL: sent -> reached", straight)
print(f"gate-added latency, unheld (median difference): {(statistics.median(through_gate) - statistics.median(straight)) * 1000:.2f} ms")
PY
