"""Exec for the Kubernetes API test server (kube_test_server.py): RFC 6455 WebSocket framing written
by hand and the remote-command channel protocols `v5.channel.k8s.io` and `v4.channel.k8s.io`, running
the requested command for real. Test fixture, not product code.

Channels (first byte of each binary message): 0 stdin, 1 stdout, 2 stderr, 3 error (a Status JSON,
the last thing the server sends), 4 resize ({"Width":W,"Height":H}); v5 adds 255 close ([255, channel]:
the client closes that stream, e.g. stdin's end)."""

import base64
import fcntl
import hashlib
import json
import os
import pty
import struct
import subprocess
import termios
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]  # the server's preference, newest first
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


class ProtocolError(Exception):
    """The peer broke RFC 6455 (the connection is closed with code 1002)."""


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def choose_protocol(header):
    """The first protocol the client offers that the server speaks (the API server's negotiation)."""
    offered = [p.strip() for p in (header or "").split(",") if p.strip()]
    for p in offered:
        if p in PROTOCOLS:
            return p
    return None


class WebSocket:
    """Server side of one WebSocket connection: unmasked frames out, masked frames in (RFC 6455 5.1)."""

    def __init__(self, rfile, sock):
        self.rfile, self.sock = rfile, sock
        self.write_lock = threading.Lock()
        self.closed = False

    def _read(self, n):
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise EOFError("connection closed mid-frame")
        return data

    def send(self, opcode, payload=b""):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([n])
        elif n < 65536:
            header += bytes([126]) + struct.pack("!H", n)
        else:
            header += bytes([127]) + struct.pack("!Q", n)
        with self.write_lock:
            if self.closed:
                return
            self.sock.sendall(header + payload)
            if opcode == 0x8:
                self.closed = True

    def send_channel(self, channel, data):
        self.send(0x2, bytes([channel]) + data)

    def close(self, code=1000, reason=b""):
        try:
            self.send(0x8, struct.pack("!H", code) + reason)
        except OSError:
            pass

    def receive(self):
        """The next data message (opcode, payload); answers pings; None when the client closes."""
        message, message_opcode = b"", None
        while True:
            b0, b1 = self._read(2)
            fin, opcode = b0 & 0x80, b0 & 0x0F
            if b0 & 0x70:
                raise ProtocolError("reserved bits set without a negotiated extension")
            if not b1 & 0x80:
                raise ProtocolError("client frame not masked")
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            if opcode >= 0x8 and (n > 125 or not fin):
                raise ProtocolError("control frame too long or fragmented")
            if n > 16 << 20:
                raise ProtocolError("frame over 16 MiB")
            mask = self._read(4)
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(self._read(n)))
            if opcode == 0x8:
                self.close(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000)
                return None
            if opcode == 0x9:
                self.send(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x0:
                if message_opcode is None:
                    raise ProtocolError("continuation frame without a message")
            elif opcode in (0x1, 0x2):
                if message_opcode is not None:
                    raise ProtocolError("new message inside a fragmented one")
                message_opcode = opcode
            else:
                raise ProtocolError(f"unknown opcode {opcode}")
            message += payload
            if fin:
                return message_opcode, message


def exit_status(code, command):
    """What the API server puts on channel 3 at the end: Success, or the exit code in details.causes."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def run_exec(ws, protocol, command, options, workdir, on_event):
    """Runs `command` in `workdir` (a pty when tty=true) and bridges it to the WebSocket until it ends."""
    tty = options.get("tty", False)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "LANG": "C.UTF-8"}
    master = None
    if tty:
        env["TERM"] = "xterm"
        master, slave = pty.openpty()
        proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=workdir, env=env,
                                start_new_session=True, close_fds=True,
                                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        outputs = [(master, STDOUT)]
        stdin_fd = master if options.get("stdin") else None
    else:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE if options.get("stdin") else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir, env=env,
                                start_new_session=True, close_fds=True)
        outputs = [(proc.stdout.fileno(), STDOUT), (proc.stderr.fileno(), STDERR)]
        stdin_fd = proc.stdin.fileno() if proc.stdin else None
    on_event({"exec": "started", "protocol": protocol, "command": command, "tty": tty})
    stdin_open = [stdin_fd is not None]

    def close_stdin():
        if not stdin_open[0]:
            return
        stdin_open[0] = False
        if tty:
            os.write(master, b"\x04")  # the terminal's end of input
        else:
            proc.stdin.close()

    def pump(fd, channel):
        while True:
            try:
                data = os.read(fd, 32768)
            except OSError:  # a pty's master reads EIO once the child side is gone
                data = b""
            if not data:
                return
            try:
                ws.send_channel(channel, data)
            except OSError:
                return

    pumps = [threading.Thread(target=pump, args=o, daemon=True) for o in outputs]
    for t in pumps:
        t.start()

    def read_client():
        try:
            while True:
                message = ws.receive()
                if message is None:
                    break
                _, data = message
                if not data:
                    continue
                channel, body = data[0], data[1:]
                if channel == STDIN and stdin_open[0] and body:
                    on_event({"exec": "stdin", "data": body.decode("utf-8", "replace")})
                    os.write(stdin_fd, body)
                elif channel == RESIZE:
                    size = json.loads(body)
                    on_event({"exec": "resize", "width": size.get("Width"), "height": size.get("Height")})
                    if master is not None:
                        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size["Height"], size["Width"], 0, 0))
                elif channel == CLOSE and protocol.startswith("v5.") and body[:1] == bytes([STDIN]):
                    on_event({"exec": "stdin-closed"})
                    close_stdin()
        except ProtocolError as e:
            on_event({"exec": "protocol-error", "error": str(e)})
            ws.close(1002, str(e).encode()[:100])
        except (EOFError, OSError):
            pass
        # The client went away (or closed): the command is not left running behind it.
        if proc.poll() is None:
            proc.terminate()

    reader = threading.Thread(target=read_client, daemon=True)
    reader.start()
    code = proc.wait()
    for t in pumps:
        t.join(5)
    if master is not None:
        os.close(master)
    on_event({"exec": "exited", "code": code})
    try:
        ws.send_channel(ERROR, json.dumps(exit_status(code, command)).encode())
        ws.close(1000)
    except OSError:
        pass
    reader.join(5)
