#!/usr/bin/env python3
"""The Python `kubernetes` client as a second real client of the Kubernetes API (the test server, or
the gate in front of it). Prints one JSON object with what it saw.

  kube_python_client.py KUBECONFIG list-pods NAMESPACE
  kube_python_client.py KUBECONFIG exec PROTOCOL NAMESPACE POD STDIN COMMAND...
    (PROTOCOL: the one subprotocol offered, e.g. v4.channel.k8s.io; STDIN: text sent, then stdin closed)
"""
import json
import sys

from kubernetes import client, config
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL

config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
mode = sys.argv[2]
if mode == "list-pods":
    pods = api.list_namespaced_pod(sys.argv[3])
    print(json.dumps({"pods": [p.metadata.name for p in pods.items]}))
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
