#!/usr/bin/env python3
"""The Python `kubernetes` client as a second real client of the Kubernetes API (the test server, or
the gate in front of it). Prints one JSON object with what it saw.

  kube_python_client.py KUBECONFIG list-pods NAMESPACE      (a refusal prints {"status": CODE, "body": STATUS})
  kube_python_client.py KUBECONFIG exec PROTOCOL NAMESPACE POD STDIN COMMAND...
    (PROTOCOL: the one subprotocol offered, e.g. v4.channel.k8s.io; STDIN: text sent, then stdin closed)
"""
import base64
import json
import os
import socket
import ssl
import struct
import sys
import urllib.parse

from kubernetes import client, config
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL

config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
mode = sys.argv[2]
if mode == "list-pods":
    try:
        pods = api.list_namespaced_pod(sys.argv[3])
        print(json.dumps({"pods": [p.metadata.name for p in pods.items]}))
    except client.exceptions.ApiException as e:  # a refusal: its HTTP status and the Status object it carried
        print(json.dumps({"status": e.status, "body": json.loads(e.body or "null")}))
elif mode == "exec":
    protocol, ns, pod, stdin = sys.argv[3:7]
    ws = stream(api.connect_get_namespaced_pod_exec, pod, ns, command=sys.argv[7:], stdin=True, stdout=True,
                stderr=True, tty=False, _preload_content=False, _request_timeout=30,
                _headers={"sec-websocket-protocol": protocol})
    out = {"stdout": "", "stderr": ""}
    ws.write_stdin(stdin + "\n")
    ws.update(timeout=1)
    if protocol.startswith("v5."):
        ws.close_channel(0) if hasattr(ws, "close_channel") else None
    while ws.is_open():
        ws.update(timeout=1)
        out["stdout"] += ws.read_channel(STDOUT_CHANNEL)
        out["stderr"] += ws.read_channel(STDERR_CHANNEL)
    out["stdout"] += ws.read_channel(STDOUT_CHANNEL)
    out["stderr"] += ws.read_channel(STDERR_CHANNEL)
    out["status"] = json.loads(ws.read_channel(ERROR_CHANNEL) or "{}")
    print(json.dumps(out))
elif mode == "exec-tty":
    ns, pod, width, height = sys.argv[3:7]
    ws = stream(api.connect_get_namespaced_pod_exec, pod, ns, command=["sh", "-c", "read x; stty size"], stdin=True,
                stdout=True, stderr=False, tty=True, _preload_content=False, _request_timeout=30)
    ws.write_channel(4, json.dumps({"Width": int(width), "Height": int(height)}))
    ws.write_stdin("go\n")
    out = ""
    while ws.is_open():
        ws.update(timeout=1)
        out += ws.read_channel(STDOUT_CHANNEL)
    out += ws.read_channel(STDOUT_CHANNEL)
    print(json.dumps({"stdout": out, "status": json.loads(ws.read_channel(ERROR_CHANNEL) or "{}")}))
elif mode == "unmasked-frame":
    ns, pod = sys.argv[3:5]
    c = client.Configuration.get_default_copy()
    url = urllib.parse.urlsplit(c.host)
    context = ssl.create_default_context(cafile=c.ssl_ca_cert)
    sock = context.wrap_socket(socket.create_connection((url.hostname, url.port)), server_hostname=url.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/v1/namespaces/{ns}/pods/{pod}/exec?command=cat&stdin=true&stdout=true HTTP/1.1\r\n"
                  f"Host: {url.netloc}\r\nAuthorization: {list(c.api_key.values())[0]}\r\nConnection: Upgrade\r\n"
                  f"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n").encode())
    f = sock.makefile("rb")
    status_line = f.readline().decode().strip()
    while f.readline() not in (b"\r\n", b""):
        pass
    sock.sendall(bytes([0x82, 3, 0]) + b"hi")  # stdin "hi", but unmasked: a client must mask (RFC 6455 5.1)
    close_code = None
    while True:
        head = f.read(2)
        if len(head) < 2:
            break
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", f.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", f.read(8))[0]
        payload = f.read(n)
        if head[0] & 0x0F == 0x8:
            close_code = struct.unpack("!H", payload[:2])[0]
            break
    print(json.dumps({"upgrade": status_line, "close": close_code}))
