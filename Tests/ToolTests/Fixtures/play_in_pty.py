"""Runs `sessinfo --play` on a real pseudo-terminal and types keys at it, as an investigator would.

usage: play_in_pty.py SESSINFO CAPTURE KEYS [ARGS...]
KEYS is typed one key at a time, 0.3 s apart, once the player has said it is ready. Prints a JSON
object: the exit status, everything the terminal showed, and whether the terminal's echo and
line mode were restored when the player left.
"""
import json, os, pty, select, subprocess, sys, termios, time

sessinfo, capture, keys, *args = sys.argv[1:]
master, slave = pty.openpty()
proc = subprocess.Popen([sessinfo, "--play", capture, *args], stdin=slave, stdout=slave, stderr=slave,
                        env={**os.environ, "TERM": "xterm"}, close_fds=True)
shown = b""

def drain(seconds):
    global shown
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                shown += os.read(master, 65536)
            except OSError:
                return

# The player prints its title line (on standard error, a terminal here) before it waits.
deadline = time.time() + 60
while b"q quit" not in shown and time.time() < deadline and proc.poll() is None:
    drain(0.1)
for key in keys:
    os.write(master, key.encode())
    drain(0.3)
try:
    status = proc.wait(timeout=60)
except subprocess.TimeoutExpired:
    proc.kill()
    status = "timeout"
drain(0.2)
attrs = termios.tcgetattr(slave)
restored = bool(attrs[3] & termios.ECHO) and bool(attrs[3] & termios.ICANON) and bool(attrs[3] & termios.ISIG)
print(json.dumps({"status": status, "shown": shown.decode("utf-8", "replace"), "restored": restored}))
