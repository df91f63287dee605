#!/usr/bin/env bash
# PostgreSQL gate benchmark: pgbench select-only, tpcb-like and a masking-heavy query at
# -c 1 and -c 8, against PostgreSQL directly, through pgbouncer (session pooling), through a
# bare SwiftNIO relay that decodes nothing ("relay", benchmarks/relay: the floor of any proxy
# built like the gate), through capture-proxy with recording on ("gate", the default batched
# recording), the same with write-ahead recording ("strict": recording.durability: strict, every
# request written and synced before it is forwarded), and through capture-proxy with its full path:
# policies, masks and recording ("full"), interleaved round by round in one run. With both gate
# and strict, the throughput table also prints strict's tps as a ratio of gate's. Prints TPS,
# mean latency, each ratio to direct and how far the rounds are apart, each proxy's CPU time
# per transaction (user and system, all its threads, from /proc), in the pinned layout how busy
# PostgreSQL's CPU stayed behind each path, then inspections per second with and without the
# gate's statement cache. Asserts nothing.
#
# Two CPU layouts, interleaved too: "shared", every process on every core (pgbench, PostgreSQL
# and the proxy compete for the same CPUs, so a proxy's ratio is mostly its CPU per transaction),
# and "pinned", PostgreSQL and pgbench on CPU 0 and the proxy alone on CPU 1: a model of a gate
# on its own host or pod, where its ratio is the latency and wake-ups it adds.
#
# Usage: benchmarks/pgbench.sh
# Environment: SECONDS_PER_RUN (10), ROUNDS (3), SCALE (10), CLIENTS ("1 8"),
#   SCRIPTS ("select-only tpcb-like masking"), PATHS ("direct pgbouncer relay gate strict full"),
#   LAYOUTS ("shared pinned"; pinned needs 2 cores), GATE_BIN (a capture-proxy binary to use
#   instead of building one: to compare two builds, run the script once with each)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-10}
CLIENTS=${CLIENTS:-"1 8"}
SCRIPTS=${SCRIPTS:-"select-only tpcb-like masking"}
PATHS=${PATHS:-"direct pgbouncer relay gate strict full"}
LAYOUTS=${LAYOUTS:-"shared pinned"}
source benchmarks/lib/layouts.sh
work=$(mktemp -d /tmp/tollgate-pgbench.XXXXXX)
pids=()
pg_pid=
pg_cpus=
cleanup() {
  [ -z "$pg_cpus" ] || pin "$pg_pid" "$pg_cpus"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"
}
trap cleanup EXIT

scripts/bootstrap --no-build >/dev/null
scripts/pg-test-cluster start >/dev/null
# shellcheck disable=SC1091
source "${TOLLGATE_STATE:-/tmp/tollgate-test}/pg.env"
pw=$TOLLGATE_PG_SCRAM_PASSWORD

echo "== pgbench through the gate: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo); PostgreSQL $(psql --version | awk '{print $3}'), pgbouncer $(pgbouncer --version | head -1 | awk '{print $2}')"
echo "runs: ${SECONDS_PER_RUN}s each, $ROUNDS rounds, scale $SCALE, clients: $CLIENTS"
if [ -n "${GATE_BIN:-}" ]; then
  gate_bin=$GATE_BIN
  echo "capture-proxy: $gate_bin (GATE_BIN)"
else
  echo "building capture-proxy (release, --scratch-path .build-release)"
  swift build -c release --scratch-path .build-release --product capture-proxy 2>&1 | tail -1
  gate_bin=.build-release/release/capture-proxy
fi
relay_bin=benchmarks/relay/.build/release/bench-relay
if [[ " $PATHS " == *" relay "* ]]; then
  echo "building bench-relay (release, benchmarks/relay)"
  swift build -c release --package-path benchmarks/relay 2>&1 | tail -1
fi

pg_pid=$(ss -ltnpH "sport = :$TOLLGATE_PG_PORT" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
[ -z "$pg_pid" ] || pg_cpus=$(taskset -c -p "$pg_pid" 2>/dev/null | sed 's/.*: //')
if [[ " $LAYOUTS " == *" pinned "* ]]; then
  # Moving PostgreSQL's processes needs their owner or root: without it there is no pinned layout.
  if [ -z "$pg_pid" ]; then
    echo "cannot find PostgreSQL's process on port $TOLLGATE_PG_PORT: running the shared layout only" >&2
    LAYOUTS=shared
  elif ! taskset -a -c -p "$all_cpus" "$pg_pid" >/dev/null 2>&1; then
    echo "cannot set the CPUs of PostgreSQL (pid $pg_pid; run as root or as its owner): running the shared layout only" >&2
    LAYOUTS=shared
  fi
fi
echo "layouts: $LAYOUTS"
PGPASSWORD=$pw pgbench -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench -i -s "$SCALE" -q "$TOLLGATE_PG_BENCH_DATABASE" >/dev/null 2>&1
# The masking workload: 10,000 fake people; each query returns 50 rows of e-mail, SSN, card and phone.
PGPASSWORD=$pw psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$TOLLGATE_PG_PORT" -U tollgate_bench "$TOLLGATE_PG_BENCH_DATABASE" <<'SQL'
DROP TABLE IF EXISTS people;
CREATE TABLE people AS SELECT i AS id, 'person' || i || '@example.com' AS email,
  lpad((100 + i % 800)::text, 3, '0') || '-' || lpad((10 + i % 89)::text, 2, '0') || '-' || lpad((1000 + i % 8999)::text, 4, '0') AS ssn,
  (ARRAY['4111111111111111','5555555555554444','378282246310005','6011111111111117'])[1 + i % 4] AS card_number,
  '+1-555-' || lpad((i % 10000)::text, 4, '0') AS phone, 'note ' || i AS note
FROM generate_series(1, 10000) AS i;
ALTER TABLE people ADD PRIMARY KEY (id);
SQL
cat > "$work/masking.sql" <<'SQL'
\set a random(1, 9950)
SELECT id, email, ssn, card_number, phone, note FROM people WHERE id BETWEEN :a AND :a + 49;
SQL
chmod 755 "$work"
# The OIDC provider for the gates.
source benchmarks/lib/issuer.sh
start_issuer
cat > "$work/userlist.txt" <<U
"tollgate_bench" "$pw"
U

# One set of proxies per layout, started on that layout's CPUs, so that each sizes itself (event
# loops) for the CPUs it has, as it would on a host or pod of that size.
# Ports: base+2 pgbouncer, +3 gate, +4 full, +5 relay, +6 strict.
declare -A port proc
start_proxies() { # layout cpus base_port
  local layout=$1 cpus=$2 base=$3 dir=$work/$1
  mkdir -p "$dir"
  port[$layout,pgbouncer]=$((base + 2)); port[$layout,gate]=$((base + 3))
  port[$layout,full]=$((base + 4)); port[$layout,relay]=$((base + 5)); port[$layout,strict]=$((base + 6))
  # pgbouncer, session pooling, SCRAM to clients and upstream.
  cp "$work/userlist.txt" "$dir/userlist.txt"
  cat > "$dir/pgbouncer.ini" <<INI
[databases]
$TOLLGATE_PG_BENCH_DATABASE = host=127.0.0.1 port=$TOLLGATE_PG_PORT dbname=$TOLLGATE_PG_BENCH_DATABASE
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port[$layout,pgbouncer]}
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
unix_socket_dir =
INI
  # pgbouncer refuses to run as root. (runuser in a session of its own: stopped, it kills its
  # whole process group a moment later, which would be the caller's, and the next run in it.)
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres "$dir"; taskset -c "$cpus" setsid runuser -u postgres -- pgbouncer -q "$dir/pgbouncer.ini" &
  else
    taskset -c "$cpus" pgbouncer -q "$dir/pgbouncer.ini" &
  fi
  pids+=($!)
  # The bare relay, with one event loop per CPU it has, as the gate.
  if [[ " $PATHS " == *" relay "* ]]; then
    taskset -c "$cpus" "$relay_bin" "${port[$layout,relay]}" "$TOLLGATE_PG_PORT" "$(taskset -c "$cpus" nproc)" &
    pids+=($!); proc[$layout,relay]=$!
  fi
  # The gate, recording; and the full path: a least-privilege policy decided per statement,
  # masks by content and by column, recording.
  cat > "$dir/gate.yaml" <<YAML
proxy: {id: bench-gate, captures: $work/captures, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  bench:
    protocol: postgres
    listen: 127.0.0.1:${port[$layout,gate]}
    upstream: 127.0.0.1:$TOLLGATE_PG_PORT
    upstream_tls: disable
    credentials: {user: tollgate_bench, password_env: BENCH_PW}
YAML
  # The gate with write-ahead recording: the same, every request synced to its capture before it is forwarded.
  cat > "$dir/strict.yaml" <<YAML
proxy: {id: bench-strict, captures: $work/captures-strict, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  bench:
    protocol: postgres
    listen: 127.0.0.1:${port[$layout,strict]}
    upstream: 127.0.0.1:$TOLLGATE_PG_PORT
    upstream_tls: disable
    credentials: {user: tollgate_bench, password_env: BENCH_PW}
    recording: {durability: strict}
YAML
  cat > "$dir/full.yaml" <<YAML
proxy: {id: bench-full, captures: $work/captures-full, signing_key: $work/signing.key}
identity: {issuer: "http://127.0.0.1:$issuer_port", audiences: [tollgate]}
targets:
  bench:
    protocol: postgres
    listen: 127.0.0.1:${port[$layout,full]}
    upstream: 127.0.0.1:$TOLLGATE_PG_PORT
    upstream_tls: disable
    credentials: {user: tollgate_bench, password_env: BENCH_PW}
    masks: [credit_card, us_ssn, email, secrets, {column: "people.phone"}]
policies:
  - name: bench
    who: {groups: [dba]}
    rules:
      - {name: pgbench-tables, when: {tables: ["public.pgbench_*", "public.people"], statement: [select, insert, update]}, then: allow}
      - {name: transactions, when: {statement: [begin, commit, rollback]}, then: allow}
      - {name: no-ddl, when: {statement: [drop, truncate, alter_table, create_table]}, then: deny}
YAML
  # Only the gates PATHS runs: an older GATE_BIN may not read a newer gate's configuration (strict's).
  local path started=(pgbouncer)
  for path in gate strict full; do
    [[ " $PATHS " == *" $path "* ]] || continue
    BENCH_PW=$pw taskset -c "$cpus" "$gate_bin" run --config "$dir/$path.yaml" --log-level warning > "$dir/$path.log" 2>&1 &
    pids+=($!); proc[$layout,$path]=$!; started+=("$path")
  done
  [[ " $PATHS " != *" relay "* ]] || started+=(relay)
  for _ in $(seq 1 100); do
    sleep 0.2
    for path in "${started[@]}"; do pg_isready -q -h 127.0.0.1 -p "${port[$layout,$path]}" || continue 2; done
    # pgbouncer may run under runuser, which is not pgbouncer's process: its pid file is.
    proc[$layout,pgbouncer]=$(cat "$dir/pgbouncer.pid")
    return 0
  done
  echo "proxies of layout $layout did not start; not answering:" >&2
  for path in "${started[@]}"; do
    pg_isready -q -h 127.0.0.1 -p "${port[$layout,$path]}" && continue
    echo "  $path on port ${port[$layout,$path]}" >&2
    case $path in gate|strict|full) tail -5 "$dir/$path.log" | sed 's/^/    /' >&2 ;; pgbouncer) tail -5 "$dir/pgbouncer.log" 2>/dev/null | sed 's/^/    /' >&2 ;; esac
  done
  exit 2
}
for layout in $LAYOUTS; do
  case $layout in
    shared) start_proxies shared "$all_cpus" 56430 ;;
    pinned) start_proxies pinned "${cpu_list[1]}" 56530 ;;
  esac
done
token=$(scripts/oidc-token "http://127.0.0.1:$issuer_port" bench@example.com --groups dba)

# PostgreSQL (and its backends, forked later) and pgbench on the layout's CPUs.
client_cpus=$all_cpus
use_layout() {
  case $1 in
    shared) client_cpus=$all_cpus ;;
    pinned) client_cpus=${cpu_list[0]} ;;
  esac
  pin "$pg_pid" "$client_cpus"
}

# User and system CPU of a process and all its threads, in clock ticks; 0 without a process (direct).
# (Fields counted after the command name, which may hold spaces: utime and stime are the 12th and 13th.)
ticks() { if [ -n "$1" ] && [ -r "/proc/$1/stat" ]; then sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; else echo 0; fi; }
hz=$(getconf CLK_TCK)
# Busy and all ticks of one CPU from /proc/stat (busy: user, nice, system, irq, softirq; idle and
# iowait are idle; steal is neither). Pinned, PostgreSQL's and pgbench's CPU idles only when every
# client waits on the proxy: its busy share is a steadier measure of a proxy's delay than tps,
# which drifts between rounds with the machine.
cpu_ticks() { awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }

run() { # layout path script clients -> "tps latency_ms proxy_cpu_us_per_transaction client_cpu_busy_%"
  local p pass
  case $2 in
    direct) p=$TOLLGATE_PG_PORT; pass=$pw ;;
    pgbouncer|relay) p=${port[$1,$2]}; pass=$pw ;;
    gate|strict|full) p=${port[$1,$2]}; pass=$token ;;
  esac
  local script=$3 c=$4 out workload
  if [ "$script" = masking ]; then workload=(-f "$work/masking.sql"); else workload=(-b "$script"); fi
  local pid=${proc[$1,$2]:-} before after busy0 all0 busy1 all1
  before=$(ticks "$pid"); read -r busy0 all0 < <(cpu_ticks "${cpu_list[0]}")
  out=$(PGPASSWORD=$pass taskset -c "$client_cpus" pgbench -h 127.0.0.1 -p "$p" -U tollgate_bench -n "${workload[@]}" -c "$c" -j "$c" -T "$SECONDS_PER_RUN" \
        -M prepared "$TOLLGATE_PG_BENCH_DATABASE" 2>&1) || true  # a failed run is reported below, not fatal
  after=$(ticks "$pid"); read -r busy1 all1 < <(cpu_ticks "${cpu_list[0]}")
  local t l n cpu busy
  t=$(echo "$out" | awk '/^tps = / {print $3}'); l=$(echo "$out" | awk '/latency average/ {print $4}')
  n=$(echo "$out" | awk '/number of transactions actually processed/ {split($NF, a, "/"); print a[1]}')
  if [ -z "$t" ]; then echo "pgbench failed on $1 $2 $script -c $c:" >&2; echo "$out" | tail -5 >&2; t=0; l=0; fi
  cpu=$(awk -v d=$((after - before)) -v hz="$hz" -v n="${n:-0}" 'BEGIN{print (n > 0 ? d * 1e6 / hz / n : 0)}')
  busy=$(awk -v b=$((busy1 - busy0)) -v a=$((all1 - all0)) 'BEGIN{print (a > 0 ? 100 * b / a : 0)}')
  echo "$t $l $cpu $busy"
}

declare -A tps lat cpu busy
for round in $(seq 1 "$ROUNDS"); do
  for layout in $LAYOUTS; do
    use_layout "$layout"
    for script in $SCRIPTS; do
      for c in $CLIENTS; do
        for path in $PATHS; do
          read -r t l u b < <(run "$layout" $path $script "$c")
          tps[$layout,$path,$script,$c]+="$t "; lat[$layout,$path,$script,$c]+="$l "; cpu[$layout,$path,$script,$c]+="$u "
          busy[$layout,$path,$script,$c]+="$b "
          printf 'round %d  %-6s %-11s -c %-2s %-9s  tps %10.1f  latency %6.3f ms  proxy CPU %6.1f us/txn  CPU %s busy %5.1f %%\n' \
            "$round" "$layout" "$script" "$c" "$path" "$t" "$l" "$u" "${cpu_list[0]}" "$b"
        done
      done
    done
  done
done
use_layout shared

source benchmarks/lib/stats.sh
# A table with one row per script and client count: `table HEADER ROW_FUNCTION`, where the
# function prints a row's columns after its script and clients (it sees $layout, $script, $c).
table() {
  printf '%-12s %-3s%s\n' script c "$1"
  for script in $SCRIPTS; do
    for c in $CLIENTS; do printf '%-12s %-3s%s\n' "$script" "$c" "$($2)"; done
  done
}
proxies=(); for path in $PATHS; do [ "$path" = direct ] || proxies+=("$path"); done
has_pgbouncer=; [[ " $PATHS " == *" pgbouncer "* ]] && has_pgbouncer=1

has_strict=; [[ " $PATHS " == *" gate "* && " $PATHS " == *" strict "* ]] && has_strict=1
throughput_header() {
  for path in $PATHS; do printf ' %11s' "${path}_tps"; done
  for path in "${proxies[@]}"; do printf ' %9s' "${path:0:6}/d"; done
  [ -z "$has_strict" ] || printf ' %9s' "strict/g"
  for path in $PATHS; do printf ' %9s' "${path:0:6}_ms"; done
}
throughput_row() {
  local path d; d=$(echo "${tps[$layout,direct,$script,$c]:-0}" | median)
  for path in $PATHS; do printf ' %11.1f' "$(echo "${tps[$layout,$path,$script,$c]}" | median)"; done
  for path in "${proxies[@]}"; do printf ' %9.2f' "$(ratio "$(echo "${tps[$layout,$path,$script,$c]}" | median)" "$d")"; done
  [ -z "$has_strict" ] || printf ' %9.2f' "$(ratio "$(echo "${tps[$layout,strict,$script,$c]}" | median)" "$(echo "${tps[$layout,gate,$script,$c]}" | median)")"
  for path in $PATHS; do printf ' %9.3f' "$(echo "${lat[$layout,$path,$script,$c]}" | median)"; done
}
spread_row() { local path; for path in $PATHS; do printf ' %11.1f' "$(echo "${tps[$layout,$path,$script,$c]}" | spread)"; done; }
cpu_header() {
  for path in "${proxies[@]}"; do printf ' %11s' "${path}_us"; done
  if [ -n "$has_pgbouncer" ]; then for path in "${proxies[@]}"; do [ "$path" = pgbouncer ] || printf ' %9s' "${path:0:6}/pgb"; done; fi
}
cpu_row() {
  local path b
  for path in "${proxies[@]}"; do printf ' %11.1f' "$(echo "${cpu[$layout,$path,$script,$c]}" | median)"; done
  [ -n "$has_pgbouncer" ] || return 0
  b=$(echo "${cpu[$layout,pgbouncer,$script,$c]}" | median)
  for path in "${proxies[@]}"; do
    [ "$path" = pgbouncer ] || printf ' %9.2f' "$(ratio "$(echo "${cpu[$layout,$path,$script,$c]}" | median)" "$b")"
  done
}
busy_row() { local path; for path in $PATHS; do printf ' %9.1f' "$(echo "${busy[$layout,$path,$script,$c]}" | median)"; done; }
for layout in $LAYOUTS; do
  echo
  case $layout in
    shared) echo "layout shared: pgbench, PostgreSQL and the proxy on CPUs $all_cpus" ;;
    pinned) echo "layout pinned: pgbench and PostgreSQL on CPU ${cpu_list[0]}, the proxy alone on CPU ${cpu_list[1]}" ;;
  esac
  echo "median of $ROUNDS rounds (pgbench -M prepared, ${SECONDS_PER_RUN}s per run; ratio = tps / direct tps)"
  echo "gate: recording (batched); strict: write-ahead recording; full: policy + masks + recording; masking: 50 rows x (email, ssn, card, phone) per query"
  table "$(throughput_header)" throughput_row
  if [ "$ROUNDS" -gt 1 ]; then
    echo "tps spread between rounds, % of the median ((max - min) / median): compare ratios against it"
    table "$(for path in $PATHS; do printf ' %11s' "${path}_%"; done)" spread_row
  fi
  # What each proxy costs: its CPU per transaction, which on shared cores is taken from PostgreSQL.
  [ "${#proxies[@]}" -gt 0 ] || continue
  note=; [ -z "$has_pgbouncer" ] || note="; ratio = CPU / pgbouncer's"
  echo "proxy CPU per transaction, us (user + system, all threads; median of $ROUNDS rounds)$note"
  table "$(cpu_header)" cpu_row
  if [ "$layout" = pinned ]; then
    echo "CPU ${cpu_list[0]} (PostgreSQL and pgbench) busy, % (median of $ROUNDS rounds): below direct's when every client waits on the proxy"
    table "$(for path in $PATHS; do printf ' %9s' "${path:0:6}_%"; done)" busy_row
  fi
done
echo
for dir in captures captures-strict captures-full; do
  [ -d "$work/$dir" ] || continue
  echo "$dir: $(find "$work/$dir" -name '*.sesscap' | wc -l) sessions, $(du -sh "$work/$dir" | cut -f1)"
done

echo
echo "inspection per statement (capture-proxy explain --repeat, release build; the gate caches by exact text):"
for sql in "SELECT abalance FROM pgbench_accounts WHERE aid = \$1" \
  "SELECT o.id, o.created_at, c.name, c.email, sum(l.amount) AS total FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id JOIN sales.lines l ON l.order_id = o.id WHERE o.created_at > now() - interval '7 days' GROUP BY 1, 2, 3, 4"; do
  BENCH_PW=x "$gate_bin" explain --config "$work/${LAYOUTS%% *}/full.yaml" --subject bench@example.com --groups dba --target bench \
    --repeat 20000 "$sql" 2>&1 >/dev/null | sed 's/^/  /' || [ $? -eq 1 ]  # 1: the policy denies it; the timing is what is wanted
done
