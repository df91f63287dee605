#!/usr/bin/env python3
"""A faithful Kubernetes API test server for exactly the subset Tollgate's tests use (no Kubernetes API
server can run here). Test fixture, not product code. Python 3 stdlib only.

Serves, over HTTP/1.1 with keep-alive (TLS with --tls-cert/--tls-key):
- discovery: /version, /api, /apis, /api/v1, /apis/apps/v1 (plain JSON: kubectl 1.32 asks for aggregated
  discovery first and falls back to these when the answer is not an APIGroupDiscoveryList);
- get, list (Table when asked, as kubectl does) and watch (chunked JSON lines) of namespaces, pods,
  secrets and deployments in namespaces `dev` and `prod`;
- pods/log, with follow=true: lines with delays, then open until the client closes;
- pods/exec over WebSocket, subprotocols v5.channel.k8s.io and v4.channel.k8s.io (kube_exec.py), running
  the command for real in --workdir;
- anything else: the Status a real server answers (404 NotFound, 405 MethodNotAllowed, 401 Unauthorized);
- a path the test names with {"op":"answer","path":P,"status":JSON} over stdin: that Status, with its code,
  for any method (to see how real clients print a Status the test built).

Every request must carry `Authorization: Bearer TOKEN` (--token). Each request (method, path, query,
headers) and each exec event is appended as one JSON line to --log, for the tests to see what reached
upstream. The test drives changes over stdin, one JSON object a line, e.g.
{"op":"add","resource":"pods","namespace":"dev","name":"new-pod"}; the server exits when stdin closes
or its parent process is gone.

  kube_test_server.py --token T --log requests.jsonl --workdir DIR --port-file port.json [--port N]
"""

import argparse
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube_exec  # noqa: E402
import kube_fixture_objects as fx  # noqa: E402

WATCH_IDLE_CHECK = 0.2  # seconds between checks that a watching client is still there


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, args):
        super().__init__(address, Handler)
        self.args = args
        self.store = fx.Store()
        self.log_lock = threading.Lock()
        self.answers = {}  # path -> Status pushed by the test ("answer")

    def record(self, entry):
        entry["time"] = time.time()
        with self.log_lock, open(self.args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer has a Content-Length or is chunked

    def log_message(self, *args):  # the JSON-lines log is the record; stderr stays quiet
        pass

    # -- answers --

    def send_json(self, code, obj, content_type="application/json"):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_status(self, s):
        self.send_json(s["code"], s)

    def start_chunked(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def client_gone(self):
        """True once the client closed its end (a streaming answer then stops)."""
        if isinstance(self.connection, ssl.SSLSocket):  # no MSG_PEEK under TLS: readable while streaming means closing
            return bool(select.select([self.connection], [], [], 0)[0])
        try:
            self.connection.setblocking(False)
            try:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
            finally:
                self.connection.setblocking(True)
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            return True

    # -- dispatch --

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_OPTIONS(self):
        self.dispatch()

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        auth = self.headers.get("Authorization", "")
        authorized = auth == f"Bearer {self.server.args.token}"
        self.server.record({"method": self.command, "path": url.path, "query": self.query,
                            "headers": [[k, v] for k, v in self.headers.items()], "authorized": authorized})
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # bodies are not used by the subset; read to keep the connection in step
        if not authorized:
            return self.send_status(fx.status(401, "Unauthorized", "Unauthorized"))
        if url.path in self.server.answers:
            return self.send_status(self.server.answers[url.path])
        try:
            self.route([p for p in url.path.split("/") if p])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def route(self, parts):
        address = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        method = self.command
        if parts == ["version"]:
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-tollgate-fixture",
                                        "platform": "linux/amd64"})
        if parts == ["api"]:
            return self.send_json(200, fx.api_versions(address))
        if parts == ["apis"]:
            return self.send_json(200, fx.api_group_list())
        if parts == ["api", "v1"] or parts == ["apis", "apps", "v1"]:
            return self.send_json(200, fx.api_resource_list("/".join(parts[1:])))
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif parts[:3] == ["apis", "apps", "v1"]:
            group, rest = "apps", parts[3:]
        else:
            return self.unknown()
        ns = None
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] not in fx.RESOURCES or fx.RESOURCES[rest[0]][0] != group:
            if ns is not None and not rest:  # /api/v1/namespaces/NAME
                return self.resource(method, "namespaces", None, [ns])
            return self.unknown()
        resource = rest[0]
        if fx.RESOURCES[resource][3] is False and ns is not None:
            return self.unknown()
        return self.resource(method, resource, ns, rest[1:])

    def unknown(self):
        self.send_status(fx.status(404, "NotFound", "the server could not find the requested resource", {}))

    def method_not_allowed(self):
        self.send_status(fx.status(405, "MethodNotAllowed",
                                   f"the server does not allow this method on the requested resource", {}))

    def resource(self, method, resource, ns, rest):
        if len(rest) > 2:
            return self.unknown()
        if len(rest) == 2:
            return self.subresource(method, resource, ns, rest[0], rest[1])
        if method not in ("GET", "HEAD"):
            return self.method_not_allowed()
        if rest:
            obj = self.server.store.get(resource, ns, rest[0])
            if obj is None:
                return self.send_status(fx.not_found(resource, rest[0]))
            if self.wants_table():
                return self.send_json(200, fx.table(resource, [obj], obj["metadata"]["resourceVersion"], self.include_object()))
            return self.send_json(200, obj)
        if self.flag("watch"):
            return self.watch(resource, ns)
        items, version = self.server.store.list(resource, ns)
        items = [o for o in items if self.selected(o)]
        if self.wants_table():
            return self.send_json(200, fx.table(resource, items, version, self.include_object()))
        g, v, kind = fx.RESOURCES[resource][:3]
        self.send_json(200, {"kind": kind + "List", "apiVersion": f"{g}/{v}" if g else v,
                             "metadata": {"resourceVersion": version}, "items": items})

    # -- query helpers --

    def param(self, name, default=None):
        return self.query.get(name, [default])[0]

    def flag(self, name):
        return self.param(name, "false") in ("1", "true", "True")

    def wants_table(self):
        return "as=Table" in self.headers.get("Accept", "")

    def include_object(self):
        return self.param("includeObject", "Metadata")

    def selected(self, o):
        """fieldSelector metadata.name/metadata.namespace and labelSelector k=v, as kubectl uses them."""
        m = o["metadata"]
        for term in filter(None, (self.param("fieldSelector") or "").split(",")):
            key, _, value = term.partition("=")
            value = value.lstrip("=")
            if {"metadata.name": m["name"], "metadata.namespace": m.get("namespace")}.get(key) != value:
                return False
        for term in filter(None, (self.param("labelSelector") or "").split(",")):
            key, _, value = term.partition("=")
            if m.get("labels", {}).get(key) != value.lstrip("="):
                return False
        return True

    # -- watch --

    def watch(self, resource, ns):
        store = self.server.store
        timeout = float(self.param("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        since = self.param("resourceVersion") or "0"
        self.start_chunked("application/json")
        with store.lock:
            cursor = len(store.events)
            if since == "0":  # no starting point: the current state first, as synthetic ADDED events
                pending = [("ADDED", resource, o) for o in store.list(resource, ns)[0]]
            else:
                pending = [(t, r, o) for (v, t, r, o) in store.events if v > int(since)]
        while True:
            for kind, r, o in pending:
                if r == resource and (ns is None or o["metadata"].get("namespace") == ns) and self.selected(o):
                    obj = o
                    if self.wants_table():
                        obj = fx.table(resource, [o], o["metadata"]["resourceVersion"], self.include_object())
                    self.chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            with store.lock:
                while len(store.events) == cursor:
                    if time.monotonic() >= deadline or self.client_gone():
                        self.end_chunked()
                        return
                    store.lock.wait(WATCH_IDLE_CHECK)
                pending = [(t, r, o) for (_, t, r, o) in store.events[cursor:]]
                cursor = len(store.events)

    # -- subresources --

    def subresource(self, method, resource, ns, name, sub):
        if resource != "pods" or sub not in ("log", "exec", "attach"):
            return self.unknown()
        pod = self.server.store.get("pods", ns, name)
        if pod is None:
            return self.send_status(fx.not_found("pods", name))
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = self.param("container") or containers[0]
        if container not in containers:
            return self.send_status(fx.status(400, "BadRequest", f"container {container} is not valid for pod {name}"))
        if sub == "log":
            if method != "GET":
                return self.method_not_allowed()
            return self.logs()
        if method not in ("GET", "POST"):
            return self.method_not_allowed()
        if pod["status"]["phase"] != "Running":
            return self.send_status(fx.status(400, "BadRequest",
                                              f"pod {name} does not have a host assigned" if pod["status"]["phase"] == "Pending"
                                              else f"cannot exec into a container in a completed pod; current phase is {pod['status']['phase']}"))
        return self.exec(name, attach=sub == "attach")

    def logs(self):
        lines = fx.LOG_LINES
        if self.param("tailLines") is not None:
            lines = lines[-int(self.param("tailLines")):] if int(self.param("tailLines")) else []
        stamps = self.flag("timestamps")
        follow = self.flag("follow")
        self.start_chunked("text/plain")
        for i, line in enumerate(lines):
            prefix = f"2026-12-01T09:00:{i:02d}.000000000Z " if stamps else ""
            self.chunk(f"{prefix}{line}\n".encode())
            if follow:
                time.sleep(0.3)  # streamed, not one body: a proxy must pass lines as they come
        while follow and not self.client_gone():
            time.sleep(WATCH_IDLE_CHECK)
        if not follow:
            self.end_chunked()
        self.close_connection = follow

    def exec(self, pod, attach=False):
        # attach: to the container's main process, which this server stands in for with a shell it starts then.
        command = ["sh"] if attach else self.query.get("command", [])
        if self.headers.get("Upgrade", "").lower() != "websocket":
            if self.headers.get("Upgrade"):
                return self.send_status(fx.status(400, "BadRequest",
                                                  f"unable to upgrade: {self.headers['Upgrade']} is not served by this test server "
                                                  "(WebSocket only: v5.channel.k8s.io, v4.channel.k8s.io)"))
            return self.send_status(fx.status(400, "BadRequest", "Upgrade request required"))
        if not command:
            return self.send_status(fx.status(400, "BadRequest", "you must specify at least 1 command"))
        protocol = kube_exec.choose_protocol(self.headers.get("Sec-WebSocket-Protocol"))
        key = self.headers.get("Sec-WebSocket-Key")
        if protocol is None or not key or self.headers.get("Sec-WebSocket-Version") != "13":
            return self.send_status(fx.status(400, "BadRequest",
                                              "unable to upgrade: no supported subprotocol offered "
                                              f"(supported: {', '.join(kube_exec.PROTOCOLS)})"))
        options = {k: self.flag(k) for k in ("stdin", "stdout", "stderr", "tty")}
        if not (options["stdin"] or options["stdout"] or options["stderr"]):
            return self.send_status(fx.status(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr"))
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", kube_exec.accept_key(key))
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        ws = kube_exec.WebSocket(self.rfile, self.connection)
        kube_exec.run_exec(ws, protocol, command, options, self.server.args.workdir,
                           lambda e: self.server.record(dict(e, pod=pod)))


def follow_stdin(server):
    """Changes from the test, one JSON line each; EOF (the test released its end) stops the server."""
    for line in sys.stdin:
        if line.strip():
            try:
                op = json.loads(line)
                if op.get("op") == "answer":
                    server.answers[op["path"]] = json.loads(op["status"])
                    server.record({"control": op})
                    continue
                server.store.apply(op)
                server.record({"control": json.loads(line)})
            except (KeyError, ValueError) as e:
                server.record({"control-error": str(e), "line": line})
    server.shutdown()


def follow_parent(server, parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    server.shutdown()


def main():
    signal.pthread_sigmask(signal.SIG_SETMASK, [])  # a test thread's blocked signals are inherited
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a.add_argument("--port", type=int, default=0)
    a.add_argument("--port-file", required=True, help="written ({\"port\": N}) once the server listens")
    a.add_argument("--token", required=True, help="the bearer token every request must carry")
    a.add_argument("--log", required=True, help="JSON lines: every request and exec event")
    a.add_argument("--workdir", required=True, help="where exec runs commands")
    a.add_argument("--tls-cert")
    a.add_argument("--tls-key")
    args = a.parse_args()
    args.workdir = os.path.abspath(args.workdir)
    server = Server(("127.0.0.1", args.port), args)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": server.server_address[1]}, f)
    os.rename(tmp, args.port_file)
    threading.Thread(target=follow_stdin, args=(server,), daemon=True).start()
    threading.Thread(target=follow_parent, args=(server, os.getppid()), daemon=True).start()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
