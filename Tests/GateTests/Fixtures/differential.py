"""The differential test's client: runs each case of a corpus through the gate and asks the
database itself what it did. usage: differential.py CORPUS.json
Through the gate: PGHOST/PGPORT/PGPASSWORD (a token)/PGDATABASE. Straight to the database, to read
its own log of writes and DDL (audit.writes, audit.ddl): DIRECT_DSN.
A case: {"name", "startup": {key: value} (extra startup parameters, e.g. options or client_encoding),
"steps": [hex of each Query's bytes], "pipelined": send every Query at once instead of one at a time}.
Prints one JSON object per case and line: {"name", "login_error", "errors": [SQLSTATE and message],
"tags": [command tags], "writes": [what the database logged as written or changed during the case]}."""
import json
import os
import socket
import struct
import sys

import psycopg


class Closed(Exception):
    pass


class Session:
    def __init__(self, startup, name):
        self.s = socket.create_connection((os.environ["PGHOST"], int(os.environ["PGPORT"])), timeout=15)
        params = {"user": "agent", "database": os.environ["PGDATABASE"], "application_name": name}
        params.update(startup)
        body = struct.pack("!i", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
        self.s.sendall(struct.pack("!i", len(body) + 4) + body)
        self.buf = b""
        self.errors, self.tags = [], []
        t, b = self.read()
        if t == b"E":
            raise Closed(self.error_text(b))
        self.send(b"p", os.environ["PGPASSWORD"].encode() + b"\0")
        while True:
            t, b = self.read()
            if t == b"E":
                raise Closed(self.error_text(b))
            if t == b"Z":
                break

    def send(self, t, body):
        self.s.sendall(t + struct.pack("!i", len(body) + 4) + body)

    def read(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!i", self.buf[1:5])[0]:
            try:
                d = self.s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                d = b""
            if not d:
                raise Closed("connection closed")
            self.buf += d
        n = struct.unpack("!i", self.buf[1:5])[0]
        t, b = self.buf[0:1], self.buf[5:1 + n]
        self.buf = self.buf[1 + n:]
        return t, b

    @staticmethod
    def error_text(body):
        fields = {}
        for part in body.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return "%s %s" % (fields.get("C", "?"), fields.get("M", ""))

    def until_ready(self):
        while True:
            t, b = self.read()
            if t == b"E":
                self.errors.append(self.error_text(b))
            elif t == b"C":
                self.tags.append(b.rstrip(b"\0").decode("utf-8", "replace"))
            elif t == b"Z":
                return

    def run(self, steps, pipelined):
        if pipelined:
            self.s.sendall(b"".join(b"Q" + struct.pack("!i", len(q) + 5) + q + b"\0" for q in steps))
            for _ in steps:
                self.until_ready()
        else:
            for q in steps:
                self.send(b"Q", q + b"\0")
                self.until_ready()
        self.send(b"X", b"")


def logged(db):
    w = db.execute("SELECT coalesce(max(id), 0) FROM audit.writes").fetchone()[0]
    d = db.execute("SELECT coalesce(max(id), 0) FROM audit.ddl").fetchone()[0]
    return w, d


def main():
    cases = json.load(open(sys.argv[1]))
    db = psycopg.connect(os.environ["DIRECT_DSN"], autocommit=True)
    for case in cases:
        before = logged(db)
        result = {"name": case["name"], "login_error": None, "errors": [], "tags": []}
        try:
            s = Session(case.get("startup", {}), case["name"])
            try:
                s.run([bytes.fromhex(h) for h in case["steps"]], case.get("pipelined", False))
            except Closed as e:
                s.errors.append("closed: %s" % e)
            result["errors"], result["tags"] = s.errors, s.tags
            s.s.close()
        except Closed as e:
            result["login_error"] = str(e)
        # The session's writes are logged when its statements commit or end; a closed connection's
        # backend may still be finishing, so wait for it to go before reading the log.
        for _ in range(100):
            busy = db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (case["name"],)).fetchone()[0]
            if busy == 0:
                break
            db.execute("SELECT pg_sleep(0.05)")
        # Not the cluster's own setup (psql) or a direct control write (no name), which may run meanwhile.
        others = "AND coalesce(app, '') NOT IN ('', 'psql')"
        writes = db.execute("SELECT tbl || ' ' || op || ': ' || coalesce(query, '') FROM audit.writes WHERE id > %s " + others + " ORDER BY id", (before[0],)).fetchall()
        ddl = db.execute("SELECT tag || ' ' || coalesce(object, '') || ': ' || coalesce(query, '') FROM audit.ddl WHERE id > %s " + others + " ORDER BY id", (before[1],)).fetchall()
        result["writes"] = [r[0] for r in writes + ddl]
        print(json.dumps(result), flush=True)


main()
