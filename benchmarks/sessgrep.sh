#!/usr/bin/env bash
# sessgrep benchmark: searching a directory of about 1,000 captures holding about 1 GB of events
# (as JSON Lines; about half that as the captures' uncompressed payload) against the same events
# as JSON Lines under gzip, one .jsonl.gz per session, searched with zgrep and with `rg -z`
# (Debian's ripgrep), in the same run, for three questions:
#
#   field     who of one subject touched one table:  --subject S --table T
#   statement a regular expression over statements:   'DELETE FROM [a-z_.]+ WHERE'
#   response  a regular expression over (masked) responses: --in responses '[a-z][*]{4}@example[.]org'
#
# Asserts nothing: prints seconds (median of RUNS warm runs: every file in the page cache), ratios
# and the result counts of each tool. The counts differ in kind: sessgrep counts exchanges, grep
# counts JSON lines (events); for these questions one line per exchange matches, so they should agree.
#
# Usage: benchmarks/sessgrep.sh
# Environment: SESSIONS (1000), EVENTS_PER_SESSION (1800), SEED (7), RUNS (3), JOBS (nproc),
#   WORK (scratch directory; default a new one under /tmp, removed at the end), KEEP=1 to keep it,
#   REUSE=1 to search a corpus left in WORK by an earlier run (KEEP=1) instead of generating it.
# Builds with its own scratch path (.build-bench) so it does not disturb other builds.
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${SESSIONS:-1000}
EVENTS_PER_SESSION=${EVENTS_PER_SESSION:-1800}
SEED=${SEED:-7}
RUNS=${RUNS:-3}
JOBS=${JOBS:-$(nproc)}
if [[ -n "${WORK:-}" ]]; then mkdir -p "$WORK"; else WORK=$(mktemp -d /tmp/tollgate-grepbench.XXXXXX); fi
cleanup() { if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
command -v rg > /dev/null || { echo "ripgrep (rg) is missing: run scripts/bootstrap" >&2; exit 2; }

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
sum_counts() { awk -F: '{ s += $NF } END { print s + 0 }'; }

echo "== sessgrep benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "tools:   $(swift --version 2>/dev/null | head -1); $(zgrep --version | head -1); $(grep --version | head -1); $(rg --version | sed -n 1p)"
echo "load:    $(uptime | sed 's/.*load average/load average/') (other work on the machine skews every figure alike)"
echo "work:    $WORK ($(df -h "$WORK" | awk 'NR == 2 { print $1 ", " $4 " free" }'))"
echo

echo "== build (release, --scratch-path .build-bench)"
t0=$(now)
swift build -c release --scratch-path .build-bench --product capgen 2>&1 | tail -1
swift build -c release --scratch-path .build-bench --product sessgrep 2>&1 | tail -1
swift build -c release --scratch-path .build-bench --product sessinfo 2>&1 | tail -1
echo "build: $(elapsed "$t0" "$(now)") s"
BIN=.build-bench/release
echo

echo "== corpus: $SESSIONS sessions x $EVENTS_PER_SESSION events (seed $SEED), captures and JSON Lines"
if [[ "${REUSE:-0}" == 1 && -f "$WORK/jsonl.bytes" ]]; then
    echo "reusing the corpus in $WORK"
    JSONL_BYTES=$(cat "$WORK/jsonl.bytes")
else
    t0=$(now)
    "$BIN/capgen" corpus --out "$WORK/captures" --jsonl-dir "$WORK/jsonl" --sessions "$SESSIONS" \
        --events-per-session "$EVENTS_PER_SESSION" --seed "$SEED" --key "$WORK/signing.pem" --durability none 2>/dev/null
    echo "generated in $(elapsed "$t0" "$(now)") s"
    JSONL_BYTES=$(find "$WORK/jsonl" -name '*.jsonl' -print0 | du -cb --files0-from=- | tail -1 | cut -f1)
    echo "$JSONL_BYTES" > "$WORK/jsonl.bytes"
    t0=$(now)
    find "$WORK/jsonl" -name '*.jsonl' -print0 | xargs -0 -P "$JOBS" -n 25 gzip -6
    echo "gzip -6 of the JSON Lines ($JOBS in parallel): $(elapsed "$t0" "$(now)") s"
fi
CAPTURE_BYTES=$(find "$WORK/captures" -name '*.sesscap' -print0 | du -cb --files0-from=- | tail -1 | cut -f1)
GZ_BYTES=$(find "$WORK/jsonl" -name '*.jsonl.gz' -print0 | du -cb --files0-from=- | tail -1 | cut -f1)
FILES=$(find "$WORK/captures" -name '*.sesscap' | wc -l)
# The captures' events before compression, from their footers.
RAW_BYTES=$(find "$WORK/captures" -name '*.sesscap' -print0 | xargs -0 "$BIN/sessinfo" --json | grep -o '"raw_event_bytes":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s }')
EVENTS=$((SESSIONS * EVENTS_PER_SESSION))
awk -v j="$JSONL_BYTES" -v c="$CAPTURE_BYTES" -v g="$GZ_BYTES" -v f="$FILES" -v r="$RAW_BYTES" -v e="$EVENTS" 'BEGIN {
    printf "events:     %d; JSON Lines %.1f MB uncompressed (%d B/event), capture payloads %.1f MB uncompressed (%d B/event)\n", e, j / 1e6, j / e, r / 1e6, r / e
    printf "on disk:    %d captures %.1f MB; %d .jsonl.gz %.1f MB (captures / gz = %.2f)\n", f, c / 1e6, f, g / 1e6, c / g }'
echo
# Warm the page cache for every tool alike.
cat "$WORK"/captures/*/*/*/*.sesscap "$WORK"/jsonl/*.jsonl.gz > /dev/null

SUBJECT=alice@example.com
TABLE=public.payments
STATEMENT_RE='DELETE FROM [a-z_.]+ WHERE'
RESPONSE_RE='[a-z][*]{4}@example[.]org'
FIELD_JSON_RE='"subject":"alice@example[.]com".*"schema":"public","name":"payments"'

GZFILES=("$WORK"/jsonl/*.jsonl.gz)
declare -A SECONDS_OF COUNT_OF
# measure NAME COMMAND...: median wall time of RUNS runs; the count printed by the last run.
measure() {
    local name=$1; shift
    local times=() out=""
    for ((i = 0; i < RUNS; i++)); do
        local t0 t1
        t0=$(now); out=$("$@"); t1=$(now)
        times+=("$(elapsed "$t0" "$t1")")
    done
    SECONDS_OF[$name]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    COUNT_OF[$name]=$out
    printf '  %-22s %8s s  (runs: %s)  count %s\n' "$name" "${SECONDS_OF[$name]}" "${times[*]}" "$out"
}
sg() { "$BIN/sessgrep" -c -j "$JOBS" "$@" "$WORK/captures" | sum_counts; }
zg() { printf '%s\0' "${GZFILES[@]}" | xargs -0 zgrep -c -E -- "$1" | sum_counts; }
rgz() { rg -z -c -j "$JOBS" -- "$1" "$WORK/jsonl" | sum_counts; }

echo "== field query: --subject $SUBJECT --table $TABLE"
measure sessgrep-field sg --subject "$SUBJECT" --table "$TABLE" -e ''
measure zgrep-field zg "$FIELD_JSON_RE"
measure rg-field rgz "$FIELD_JSON_RE"
"$BIN/sessgrep" --stats -c --subject "$SUBJECT" --table "$TABLE" -e '' "$WORK/captures" 2>&1 >/dev/null | sed 's/^/  /'
echo
echo "== regex over statements: '$STATEMENT_RE'"
measure sessgrep-statement sg "$STATEMENT_RE"
measure zgrep-statement zg "$STATEMENT_RE"
measure rg-statement rgz "$STATEMENT_RE"
"$BIN/sessgrep" --stats -c "$STATEMENT_RE" "$WORK/captures" 2>&1 >/dev/null | sed 's/^/  /'
echo
echo "== regex over responses: --in responses '$RESPONSE_RE'"
measure sessgrep-response sg --in responses "$RESPONSE_RE"
measure zgrep-response zg "$RESPONSE_RE"
measure rg-response rgz "$RESPONSE_RE"
"$BIN/sessgrep" --stats -c --in responses "$RESPONSE_RE" "$WORK/captures" 2>&1 >/dev/null | sed 's/^/  /'
echo

echo "== summary (seconds: median of $RUNS; ratio = baseline time / sessgrep time, above 1: sessgrep is faster)"
printf '%-10s %10s %10s %10s %9s %9s %10s %10s %10s\n' query sessgrep zgrep "rg -z" "zgrep/sg" "rg/sg" "sg count" "zgrep cnt" "rg count"
for q in field statement response; do
    s=${SECONDS_OF[sessgrep-$q]} z=${SECONDS_OF[zgrep-$q]} r=${SECONDS_OF[rg-$q]}
    awk -v q="$q" -v s="$s" -v z="$z" -v r="$r" -v cs="${COUNT_OF[sessgrep-$q]}" -v cz="${COUNT_OF[zgrep-$q]}" -v cr="${COUNT_OF[rg-$q]}" \
        'BEGIN { printf "%-10s %10.3f %10.3f %10.3f %9.1f %9.1f %10d %10d %10d\n", q, s, z, r, z / s, r / s, cs, cz, cr }'
done
echo
echo "Goals (issue 5): zgrep/sg >= 20 for the field query, >= 2 for the regular expressions."
echo "Counts: sessgrep counts exchanges, zgrep and rg count matching JSON lines (events); each of these"
echo "questions matches one event per exchange (the request, or the response), so the counts should be equal;"
echo "a difference means the JSON-level pattern also hit another field of some lines, or missed an escaped one."
