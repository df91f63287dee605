"""Runs kubectl (exec -it) on a real pseudo-terminal and types at the shell it opens, as a person would.

usage: kubectl_exec_pty.py LINES_JSON KUBECTL_ARGS...
The environment (KUBECONFIG, HOME) is passed on. The terminal is 100x30. Once the remote shell's
prompt shows ("$ " or "# ", which may take as long as an approval takes), each line of LINES_JSON
is typed, a key at a time, then Enter, and the output is awaited; then `exit`. Prints a JSON object:
kubectl's exit status and everything the terminal showed."""
import fcntl, json, os, pty, select, struct, subprocess, sys, termios, time

lines, args = json.loads(sys.argv[1]), sys.argv[2:]
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
proc = subprocess.Popen(["kubectl", *args], stdin=slave, stdout=slave, stderr=slave,
                        env={**os.environ, "TERM": "xterm"}, close_fds=True, start_new_session=True,
                        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
os.close(slave)
shown = b""


def drain(seconds, until=None):
    global shown
    end = time.time() + seconds
    while time.time() < end:
        if until is not None and until(shown):
            return True
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                return False
            if not data:
                return False
            shown += data
    return until is not None and until(shown)


def prompted(after):
    return lambda s: s[after:].rstrip(b" ").endswith((b"$", b"#"))


if drain(150, prompted(0)):
    for line in lines + ["exit"]:
        mark = len(shown)
        for ch in line:
            os.write(master, ch.encode())
            time.sleep(0.02)
        os.write(master, b"\r")
        drain(10, prompted(mark + len(line)) if line != "exit" else None)
try:
    status = proc.wait(timeout=60)
except subprocess.TimeoutExpired:
    proc.kill()
    status = "timeout"
drain(0.3)
print(json.dumps({"status": status, "shown": shown.decode("utf-8", "replace")}))
