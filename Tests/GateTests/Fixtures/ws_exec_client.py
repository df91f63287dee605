"""A raw WebSocket exec client (RFC 6455 framing by hand), to reach the gate where kubectl does not:
the v4.channel.k8s.io subprotocol, and frames that break the protocol.

usage: ws_exec_client.py HOST PORT CA_FILE TOKEN PATH PROTOCOLS CASE
CASE: `talk` sends "line\\n" on stdin and reads to the end; `attach` sends a command and closes
stdin (v5); `flood` sends numbered lines ("n-1\\n", ...) on stdin until the connection breaks; any other names one bad frame sent
first (unmasked, reserved, big-control, fragmented-control, bad-channel, text, oversize,
unmasked-fragment). Prints a JSON object: the status line, the subprotocol, the messages read
([channel, text]) and the close frame ([code, reason]) the client got."""
import base64, json, os, socket, ssl, struct, sys

host, port, ca, token, path, protocols, case = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=30), server_hostname=host)
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
              f"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
              f"Sec-WebSocket-Protocol: {protocols}\r\n\r\n").encode())
buf = b""
while b"\r\n\r\n" not in buf:
    data = sock.recv(65536)
    if not data:
        break
    buf += data
head, _, buf = buf.partition(b"\r\n\r\n")
lines = head.decode("latin-1").split("\r\n")
result = {"status_line": lines[0], "protocol": None, "messages": [], "close": None}
for line in lines[1:]:
    name, _, value = line.partition(":")
    if name.lower() == "sec-websocket-protocol":
        result["protocol"] = value.strip()
if " 101 " not in lines[0]:
    result["body"] = buf.decode("utf-8", "replace")
    print(json.dumps(result))
    sys.exit(0)


def frame(opcode, payload, fin=True, masked=True, rsv=0, length=None):
    n = len(payload) if length is None else length
    out = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        out += bytes([bit | n])
    elif n < 65536:
        out += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        out += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return out + payload
    mask = os.urandom(4)
    return out + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


bad = {
    "unmasked": frame(2, b"\x00unmasked\n", masked=False),
    "reserved": frame(2, b"\x00reserved\n", rsv=0x40),
    "big-control": frame(9, b"p" * 126),
    "fragmented-control": frame(9, b"ping", fin=False),
    "bad-channel": frame(2, b"\x07seven\n"),
    "text": frame(1, b"\x00text\n"),
    "oversize": frame(2, b"", length=1 << 40)[:14],
    "unmasked-fragment": frame(2, b"\x00part", fin=False) + frame(0, b"-two\n", masked=False),
}
if case == "talk":
    sock.sendall(frame(2, b"\x00line\n"))
elif case == "attach":
    # A command on stdin, then (v5) stdin's close: the attached shell runs it and ends.
    sock.sendall(frame(2, b"\x00echo attached-$((2*3))\n") + frame(2, b"\xff\x00"))
elif case == "flood":
    # Until the gate goes away (the strict-recording SIGKILL test): what the server got is compared with the capture.
    try:
        for i in range(1, 10000000):
            sock.sendall(frame(2, b"\x00n-%d\n" % i))
    except OSError:
        pass
else:
    sock.sendall(bad[case])


def read(n):
    global buf
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            raise EOFError
        buf += data
    out, buf = buf[:n], buf[n:]
    return out


try:
    while True:
        b0, b1 = read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", read(8))[0]
        payload = read(n)
        opcode = b0 & 0x0F
        if opcode == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            result["close"] = [code, payload[2:].decode("utf-8", "replace")]
            try:
                sock.sendall(frame(8, payload[:2]))
            except OSError:
                pass
            break
        if opcode == 2 and payload:
            result["messages"].append([payload[0], payload[1:].decode("utf-8", "replace")])
except (EOFError, OSError, socket.timeout):
    pass
print(json.dumps(result))
