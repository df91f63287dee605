# Sourced by the benchmarks that start a gate: free_port, and start_issuer (the OIDC provider the
# gate trusts, on a free port; sets issuer_port). Needs `work` (a temp dir) and `pids` (killed at exit).

# Free ports, as the kernel hands them out (fixed ones collide with the tests running beside).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_issuer() {
  issuer_port=$(free_port)
  python3 -m oidc_provider_mock --port "$issuer_port" > "$work/oidc.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$issuer_port/.well-known/openid-configuration" >/dev/null 2>&1 && break; sleep 0.2; done
}
