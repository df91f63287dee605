# Sourced by benchmarks/held-sessions.sh and approval-latency.sh: the shared set-up of a gate with
# approvals in front of the test cluster. Defines pw, db, work (a temp dir removed at exit), pids
# (killed at exit), gate_bin (GATE_BIN, or a release build), free_port, machine_line and
# start_issuer (sets issuer_port). Caller: `work_prefix=NAME; source benchmarks/lib/approval-gate.sh`.
scripts/pg-test-cluster start >/dev/null
# shellcheck disable=SC1091
source "${TOLLGATE_STATE:-/tmp/tollgate-test}/pg.env"
pw=$TOLLGATE_PG_SCRAM_PASSWORD
db=$TOLLGATE_PG_BENCH_DATABASE
work=$(mktemp -d "/tmp/tollgate-${work_prefix:-bench}.XXXXXX")
pids=()
held_pids=()
cleanup() {
  for p in "${held_pids[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${GATE_BIN:-}" ]; then
  gate_bin=$GATE_BIN
else
  echo "building capture-proxy (release, --scratch-path .build-release)"
  swift build -c release --scratch-path .build-release --product capture-proxy 2>&1 | tail -1
  gate_bin=.build-release/release/capture-proxy
fi

machine_line() {
  echo "machine: $(nproc) cores, $(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# shellcheck disable=SC1091
source benchmarks/lib/issuer.sh
