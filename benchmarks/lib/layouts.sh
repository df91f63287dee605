# Sourced by pgbench.sh and http.sh: checks LAYOUTS (shared, pinned) and lists the CPUs this script
# may use in cpu_list (a cpuset need not start at 0; pinned takes the first two). With fewer than
# two CPUs only the shared layout runs. pin PID CPUS moves a process to CPUS.
for layout in $LAYOUTS; do
  case $layout in shared|pinned) ;; *) echo "unknown layout '$layout' (shared, pinned)" >&2; exit 2 ;; esac
done
all_cpus=$(taskset -c -p $$ | sed 's/.*: //')
cpu_list=()
for part in ${all_cpus//,/ }; do
  if [[ $part == *-* ]]; then for ((i = ${part%-*}; i <= ${part#*-}; i++)); do cpu_list+=("$i"); done; else cpu_list+=("$part"); fi
done
if [ "${#cpu_list[@]}" -lt 2 ]; then LAYOUTS=shared; fi

# Every thread of a process and of its children (PostgreSQL's backends fork from the postmaster,
# nginx's workers from its master, and inherit its CPUs; pgbouncer runs under runuser).
pin() {
  [ -n "$1" ] || return 0
  taskset -a -c -p "$2" "$1" >/dev/null 2>&1 || true
  local c; for c in $(pgrep -P "$1" || true); do taskset -a -c -p "$2" "$c" >/dev/null 2>&1 || true; done
}
