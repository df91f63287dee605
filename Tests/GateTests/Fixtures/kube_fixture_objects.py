"""The in-memory objects of the Kubernetes API test server (kube_test_server.py): fixed fixtures in
namespaces `dev` and `prod`, the discovery documents that describe them, and the Status and Table
shapes the API server answers with. Test fixture, not product code."""

import base64
import datetime
import threading

CREATED = "2026-12-01T09:00:00Z"

# resource -> (group, version, kind, namespaced, short names, verbs)
RESOURCES = {
    "namespaces": ("", "v1", "Namespace", False, ["ns"], ["get", "list", "watch"]),
    "pods": ("", "v1", "Pod", True, ["po"], ["get", "list", "watch"]),
    "secrets": ("", "v1", "Secret", True, [], ["get", "list", "watch"]),
    "deployments": ("apps", "v1", "Deployment", True, ["deploy"], ["get", "list", "watch"]),
}
# Subresources the fixture serves (port-forward, attach, proxy and the rest are not: 404).
SUBRESOURCES = {"pods/log": ("Pod", ["get"]), "pods/exec": ("PodExecOptions", ["create", "get"])}

# The secret values the tests look for (and a gate must mask): a password and an AWS-looking key pair.
SECRET_PASSWORD = "hunter2-Sup3rSecret!"
AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# What `logs` streams for every pod: one line with an email and one with an SSN (masking tests).
LOG_LINES = [
    "starting web server on :8080",
    "user alice@example.com signed in",
    "verified customer ssn 123-45-6789",
    "GET /healthz 200",
]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def status(code, reason, message, details=None):
    """A metav1.Status, as the API server answers errors (and exec's channel 3)."""
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    if details is not None:
        s["details"] = details
    return s


def not_found(resource, name):
    return status(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})


def api_versions(address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def api_group_list():
    gv = {"groupVersion": "apps/v1", "version": "v1"}
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{"name": "apps", "versions": [gv], "preferredVersion": gv}]}


def api_resource_list(group_version):
    group, version = (group_version.split("/") + [""])[:2] if "/" in group_version else ("", group_version)
    resources = []
    for name, (g, v, kind, namespaced, short, verbs) in RESOURCES.items():
        if (g, v) != (group, version):
            continue
        r = {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind, "verbs": verbs}
        if short:
            r["shortNames"] = short
        resources.append(r)
        for sub, (subkind, subverbs) in SUBRESOURCES.items():
            if sub.startswith(name + "/"):
                resources.append({"name": sub, "singularName": "", "namespaced": namespaced, "kind": subkind,
                                  "verbs": subverbs})
    if not resources:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def _meta(name, namespace, uid, labels=None):
    m = {"name": name, "uid": uid, "resourceVersion": "1", "creationTimestamp": CREATED}
    if namespace:
        m["namespace"] = namespace
    if labels:
        m["labels"] = labels
    return m


def pod(namespace, name, app, phase="Running"):
    ready = phase == "Running"
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": _meta(name, namespace, f"pod-{namespace}-{name}", {"app": app}),
            "spec": {"containers": [{"name": "app", "image": f"registry.example/{app}:1.4.2"}], "nodeName": "node-1"},
            "status": {"phase": phase, "podIP": "10.1.0.7",
                       "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0,
                                              "image": f"registry.example/{app}:1.4.2", "imageID": f"registry.example/{app}@sha256:{'ab' * 32}",
                                              "containerID": f"containerd://{namespace}-{name}",
                                              "state": {"running": {"startedAt": CREATED}} if ready else
                                              {"waiting": {"reason": "ContainerCreating"}}}]}}


def deployment(namespace, name, replicas):
    return {"kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": _meta(name, namespace, f"deploy-{namespace}-{name}", {"app": name}),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": f"registry.example/{name}:1.4.2"}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
                       "availableReplicas": replicas}}


def secret(namespace, name):
    return {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
            "metadata": _meta(name, namespace, f"secret-{namespace}-{name}"),
            "data": {"password": b64(SECRET_PASSWORD), "aws_access_key_id": b64(AWS_ACCESS_KEY_ID),
                     "aws_secret_access_key": b64(AWS_SECRET_ACCESS_KEY)}}


def namespace(name):
    return {"kind": "Namespace", "apiVersion": "v1", "metadata": _meta(name, None, f"ns-{name}"),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


class Store:
    """The objects, a resourceVersion counter and the event history that watches replay and wait on."""

    def __init__(self):
        self.lock = threading.Condition()
        self.version = 1
        self.objects = {}  # (resource, namespace, name) -> object
        self.events = []   # (resourceVersion, type, resource, object)
        for ns in ("dev", "prod"):
            self._put("namespaces", namespace(ns))
        self._put("pods", pod("dev", "web-7d4b9c-x2x9q", "web"))
        self._put("pods", pod("dev", "worker-0", "worker"))
        self._put("pods", pod("prod", "api-5f6d8-q7k2m", "api"))
        self._put("deployments", deployment("dev", "web", 1))
        self._put("deployments", deployment("prod", "api", 3))
        self._put("secrets", secret("dev", "db-credentials"))
        self._put("secrets", secret("prod", "db-credentials"))

    def _put(self, resource, obj):
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        m = obj["metadata"]
        self.objects[(resource, m.get("namespace", ""), m["name"])] = obj
        return obj

    def list(self, resource, ns):
        with self.lock:
            items = [o for (r, n, _), o in sorted(self.objects.items()) if r == resource and (ns is None or n == ns)]
            return items, str(self.version)

    def get(self, resource, ns, name):
        with self.lock:
            return self.objects.get((resource, ns or "", name))

    def apply(self, op):
        """A change pushed by the test (over the server's stdin): add, modify or delete an object."""
        resource, ns, name = op["resource"], op.get("namespace", ""), op["name"]
        with self.lock:
            if op["op"] == "delete":
                obj = self.objects.pop((resource, ns, name))
                self.version += 1
                obj["metadata"]["resourceVersion"] = str(self.version)
                kind = "DELETED"
            else:
                make = {"pods": lambda: pod(ns, name, op.get("app", name), op.get("phase", "Running")),
                        "deployments": lambda: deployment(ns, name, op.get("replicas", 1)),
                        "secrets": lambda: secret(ns, name), "namespaces": lambda: namespace(name)}[resource]
                kind = "MODIFIED" if (resource, ns, name) in self.objects else "ADDED"
                obj = self._put(resource, make())
            self.events.append((self.version, kind, resource, obj))
            self.lock.notify_all()


def age(timestamp):
    created = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _column(name, kind="string", description="", fmt=""):
    return {"name": name, "type": kind, "format": fmt, "description": description, "priority": 0}


COLUMNS = {
    "pods": [_column("Name", fmt="name"), _column("Ready"), _column("Status"), _column("Restarts", "string"),
             _column("Age")],
    "deployments": [_column("Name", fmt="name"), _column("Ready"), _column("Up-to-date", "integer"),
                    _column("Available", "integer"), _column("Age")],
    "secrets": [_column("Name", fmt="name"), _column("Type"), _column("Data", "integer"), _column("Age")],
    "namespaces": [_column("Name", fmt="name"), _column("Status"), _column("Age")],
}


def cells(resource, o):
    m = o["metadata"]
    if resource == "pods":
        cs = o["status"].get("containerStatuses", [])
        ready = sum(1 for c in cs if c.get("ready"))
        st = o["status"]["phase"] if ready == len(cs) else cs[0]["state"].get("waiting", {}).get("reason", "Pending")
        return [m["name"], f"{ready}/{len(cs)}", st, sum(c["restartCount"] for c in cs), age(m["creationTimestamp"])]
    if resource == "deployments":
        s = o["status"]
        return [m["name"], f'{s["readyReplicas"]}/{o["spec"]["replicas"]}', s["updatedReplicas"],
                s["availableReplicas"], age(m["creationTimestamp"])]
    if resource == "secrets":
        return [m["name"], o["type"], len(o.get("data", {})), age(m["creationTimestamp"])]
    return [m["name"], o["status"]["phase"], age(m["creationTimestamp"])]


def table(resource, items, resource_version, include_object="Metadata", headers=True):
    """A meta.k8s.io/v1 Table, what kubectl asks for (`Accept: ...;as=Table;g=meta.k8s.io;v=v1`)."""
    rows = []
    for o in items:
        row = {"cells": cells(resource, o)}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
        rows.append(row)
    t = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}, "rows": rows}
    if headers:
        t["columnDefinitions"] = COLUMNS[resource]
    return t
