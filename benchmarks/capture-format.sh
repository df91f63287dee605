#!/usr/bin/env bash
# Capture-format benchmark: write, read and verify throughput and file size of
# Tollgate captures for several block sizes, zlib levels and durability modes,
# against a baseline measured in the same run on the same events: JSON Lines
# compressed with `gzip -6` (and -1), read back with `zcat | wc -l`.
#
# Asserts nothing: prints figures and ratios for choosing WriterOptions defaults.
#
# Usage: benchmarks/capture-format.sh
# Environment: EVENTS (default 1000000), SESSIONS (100), SEED (1),
#   BLOCK_SIZES ("32K,128K,512K"), LEVELS ("1,6"), DURABILITIES ("none,per-block"),
#   WORK (a scratch directory; default a new one under /tmp, removed at the end), KEEP=1 to keep it.
# Builds with its own scratch path (.build-bench) so it does not disturb other builds.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
SESSIONS=${SESSIONS:-100}
SEED=${SEED:-1}
BLOCK_SIZES=${BLOCK_SIZES:-32K,128K,512K}
LEVELS=${LEVELS:-1,6}
DURABILITIES=${DURABILITIES:-none,per-block}
if [[ -n "${WORK:-}" ]]; then mkdir -p "$WORK"; else WORK=$(mktemp -d /tmp/tollgate-capbench.XXXXXX); fi
cleanup() { if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

echo "== capture-format benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "tools:   $(swift --version 2>/dev/null | head -1); $(gzip --version | head -1); zlib via CaptureFormat"
echo "work:    $WORK ($(df -h "$WORK" | awk 'NR == 2 { print $1 ", " $4 " free" }'))"
echo

echo "== build (release, --scratch-path .build-bench)"
t0=$(now)
swift build -c release --scratch-path .build-bench --product capgen 2>&1 | tail -1
echo "build: $(elapsed "$t0" "$(now)") s"
echo

echo "== captures: $EVENTS events in $SESSIONS sessions (seed $SEED), in-process"
.build-bench/release/capgen bench --events "$EVENTS" --sessions "$SESSIONS" --seed "$SEED" \
    --block-sizes "$BLOCK_SIZES" --levels "$LEVELS" --durabilities "$DURABILITIES" \
    --out "$WORK/captures" --jsonl "$WORK/events.jsonl" --tsv "$WORK/results.tsv" 2>&1
echo

echo "== baseline: the same events as JSON Lines"
sync
t0=$(now); gzip -6 -c "$WORK/events.jsonl" > "$WORK/events6.jsonl.gz"; t1=$(now)
GZIP6_S=$(elapsed "$t0" "$t1")
t0=$(now); gzip -1 -c "$WORK/events.jsonl" > "$WORK/events1.jsonl.gz"; t1=$(now)
GZIP1_S=$(elapsed "$t0" "$t1")
t0=$(now); LINES=$(zcat "$WORK/events6.jsonl.gz" | wc -l); t1=$(now)
ZCAT6_S=$(elapsed "$t0" "$t1")
t0=$(now); zcat "$WORK/events1.jsonl.gz" | wc -l > /dev/null; t1=$(now)
ZCAT1_S=$(elapsed "$t0" "$t1")
GZ6_BYTES=$(stat -c %s "$WORK/events6.jsonl.gz")
GZ1_BYTES=$(stat -c %s "$WORK/events1.jsonl.gz")
[[ "$LINES" == "$EVENTS" ]] || echo "note: zcat | wc -l counted $LINES lines for $EVENTS events"

awk -F'\t' -v gz6s="$GZIP6_S" -v gz1s="$GZIP1_S" -v zc6s="$ZCAT6_S" -v zc1s="$ZCAT1_S" \
    -v gz6b="$GZ6_BYTES" -v gz1b="$GZ1_BYTES" '
$1 == "summary" { ev = $2; raw = $4; jb = $6; js = $7 }
$1 == "config" { n++; name[n] = $2; ws[n] = $6; rs[n] = $7; vs[n] = $8; fb[n] = $9; bl[n] = $10; vp[n] = $11 }
END {
    MB = 1000000
    printf "JSON Lines: %.1f MB (%d B/event), encoded and written by capgen in %.2f s\n", jb / MB, jb / ev, js
    printf "%-22s %10s %10s %9s %10s %9s\n", "baseline", "time s", "ev/s", "MB/s raw", "size MB", "B/event"
    printf "%-22s %10.2f %10d %9.1f %10.2f %9.1f\n", "gzip -6 JSONL", gz6s, ev / gz6s, raw / MB / gz6s, gz6b / MB, gz6b / ev
    printf "%-22s %10.2f %10d %9.1f %10.2f %9.1f\n", "gzip -1 JSONL", gz1s, ev / gz1s, raw / MB / gz1s, gz1b / MB, gz1b / ev
    printf "%-22s %10.2f %10d %9.1f %10s %9s\n", "zcat|wc -l (-6 file)", zc6s, ev / zc6s, raw / MB / zc6s, "", ""
    printf "%-22s %10.2f %10d %9.1f %10s %9s\n", "zcat|wc -l (-1 file)", zc1s, ev / zc1s, raw / MB / zc1s, "", ""
    printf "%-22s %10.2f %10d %9.1f %10s %9s\n", "JSON encode + gzip -6", js + gz6s, ev / (js + gz6s), raw / MB / (js + gz6s), "", ""
    print ""
    print "== captures against the baseline (raw = encoded event bytes before compression: " sprintf("%.1f MB, %d B/event", raw / MB, raw / ev) ")"
    printf "%-20s %9s %9s %9s %9s %9s %8s %8s %9s %8s %8s %8s\n", "config", "write", "write", "read", "read", "verify", "file", "B/event", "size/", "write/", "write/", "read/"
    printf "%-20s %9s %9s %9s %9s %9s %8s %8s %9s %8s %8s %8s\n", "", "kev/s", "MB/s", "kev/s", "MB/s", "MB/s", "MB", "", "gz6 size", "gzip-6", "enc+gz6", "zcat-6"
    for (i = 1; i <= n; i++) {
        printf "%-20s %9.0f %9.1f %9.0f %9.1f %9.1f %8.2f %8.1f %9.2f %8.2f %8.2f %8.2f%s\n", name[i],
            ev / ws[i] / 1000, raw / MB / ws[i], ev / rs[i] / 1000, raw / MB / rs[i], (vs[i] > 0 ? raw / MB / vs[i] : 0),
            fb[i] / MB, fb[i] / ev, fb[i] / gz6b, gz6s / ws[i], (js + gz6s) / ws[i], zc6s / rs[i], (vp[i] > 0 ? "  VERIFY PROBLEMS: " vp[i] : "")
    }
    print ""
    print "size/gz6 size: capture bytes / gzip -6 JSONL bytes (below 1: captures are smaller)."
    print "write/gzip-6: capture write speed / gzip -6 speed over the ready JSONL (above 1: captures are faster);"
    print "  write/enc+gz6 also charges the baseline its JSON encoding. Capture writes include encoding,"
    print "  compression, term filters, SHA-256 chaining and an Ed25519 signature per block."
    print "read/zcat-6: capture read speed (open, decompress, decode every event into structs) / zcat | wc -l"
    print "  (which only decompresses and counts lines). Reads follow writes: files are in the page cache."
}' "$WORK/results.tsv"
