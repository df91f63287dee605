"""A client that speaks the PostgreSQL protocol by hand, for the sequences that ordinary drivers
do not send but a hostile client can: Describe without Execute, re-Parse without Describe, a
duplicate Parse, Bind of a statement PREPAREd in SQL, portals resumed with a row limit, pipelined
refusals, Flush and Close, and malformed messages after login (a Query without its NUL, one over the size limit, one
cut off). usage: raw_protocol.py SCENARIO (connection from PGHOST/PGPORT/PGPASSWORD/PGDATABASE; the
malformed ones write into PROBE_TABLE, should they ever reach the database).
Prints one JSON object: {"rows": [[text values]], "types": "message type letters in order", "errors": [...],
"closed": whether the gate closed the connection}"""
import json
import os
import socket
import struct
import sys


class PG:
    def __init__(self):
        self.s = socket.create_connection((os.environ["PGHOST"], int(os.environ["PGPORT"])))
        params = {"user": "agent", "database": os.environ["PGDATABASE"]}
        body = struct.pack("!i", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
        self.s.sendall(struct.pack("!i", len(body) + 4) + body)
        self.buf = b""
        t, _ = self.read()
        assert t == b"R"
        self.send(b"p", os.environ["PGPASSWORD"].encode() + b"\0")
        while True:
            t, b = self.read()
            if t == b"E":
                raise SystemExit("login failed: %r" % b)
            if t == b"Z":
                break
        self.rows, self.types, self.errors = [], "", []
        self.closed = False

    hold = None  # bytes collected to go in one write (a pipeline the gate reads at once)

    def send(self, t, body):
        if self.hold is not None:
            self.hold += t + struct.pack("!i", len(body) + 4) + body
            return
        self.s.sendall(t + struct.pack("!i", len(body) + 4) + body)

    def send_held(self):
        data, self.hold = self.hold, None
        self.s.sendall(data)

    def read(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!i", self.buf[1:5])[0]:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        n = struct.unpack("!i", self.buf[1:5])[0]
        t, b = self.buf[0:1], self.buf[5:1 + n]
        self.buf = self.buf[1 + n:]
        return t, b

    def parse(self, name, q): self.send(b"P", name.encode() + b"\0" + q.encode() + b"\0" + struct.pack("!h", 0))
    def bind(self, portal, stmt): self.send(b"B", portal.encode() + b"\0" + stmt.encode() + b"\0" + struct.pack("!hhh", 0, 0, 0))
    def describe(self, kind, name): self.send(b"D", kind + name.encode() + b"\0")
    def execute(self, portal, n=0): self.send(b"E", portal.encode() + b"\0" + struct.pack("!i", n))
    def sync(self): self.send(b"S", b"")
    def flush(self): self.send(b"H", b"")
    def close(self, kind, name): self.send(b"C", kind + name.encode() + b"\0")
    def query(self, q): self.send(b"Q", q.encode() + b"\0")

    def until_closed(self):
        """Reads (as until_ready does) until the gate closes the connection; 5 s at most."""
        self.s.settimeout(5)
        try:
            while True:
                self.until_ready()
        except (EOFError, ConnectionResetError):
            self.closed = True
        except socket.timeout:
            pass

    def until_ready(self):
        while True:
            t, b = self.read()
            self.types += t.decode()
            if t == b"D":
                n = struct.unpack("!h", b[:2])[0]
                off, vals = 2, []
                for _ in range(n):
                    ln = struct.unpack("!i", b[off:off + 4])[0]
                    off += 4
                    if ln < 0:
                        vals.append(None)
                    else:
                        vals.append(b[off:off + ln].decode("utf-8", "replace"))
                        off += ln
                self.rows.append(vals)
            elif t == b"E":
                fields = dict((f[:1].decode(), f[1:].decode("utf-8", "replace")) for f in b.split(b"\0") if f)
                self.errors.append({"code": fields.get("C"), "message": fields.get("M")})
            elif t == b"Z":
                return


SSN = "SELECT replace(ssn, '-', '') AS v FROM customers ORDER BY id LIMIT 3"


def scenario(pg, name):
    if name == "describe-then-execute-another":
        pg.parse("", "SELECT full_name AS v FROM customers ORDER BY id LIMIT 3"); pg.bind("", ""); pg.describe(b"P", ""); pg.sync(); pg.until_ready()
        pg.parse("", SSN); pg.bind("", ""); pg.execute(""); pg.sync(); pg.until_ready()
    elif name == "reparse-without-describe":
        pg.parse("", "SELECT full_name AS v FROM customers ORDER BY id LIMIT 3"); pg.describe(b"S", ""); pg.sync(); pg.until_ready()
        pg.parse("", SSN); pg.bind("", ""); pg.execute(""); pg.sync(); pg.until_ready()
    elif name == "pipelined-rebind":
        # Two batches on the unnamed portal in one write, the second without a Describe: the answer
        # to the first batch's Describe arrives after the second Bind replaced the portal, and must
        # not stand for the second result's columns.
        pg.hold = b""
        pg.parse("", "SELECT full_name AS v FROM customers ORDER BY id LIMIT 3"); pg.bind("", ""); pg.describe(b"P", ""); pg.execute(""); pg.sync()
        pg.parse("", SSN); pg.bind("", ""); pg.execute(""); pg.sync()
        pg.send_held(); pg.until_ready(); pg.until_ready()
    elif name == "temp-table-shadow":
        pg.parse("s1", "SELECT full_name FROM customers ORDER BY id LIMIT 3"); pg.describe(b"S", "s1"); pg.sync(); pg.until_ready()
        pg.query("CREATE TEMP TABLE customers AS SELECT id, replace(ssn, '-', '') AS full_name FROM public.customers"); pg.until_ready()
        pg.bind("p", "s1"); pg.execute("p"); pg.sync(); pg.until_ready()
    elif name == "duplicate-parse":
        pg.parse("s1", SSN); pg.sync(); pg.until_ready()
        pg.parse("s1", "SELECT 'x'::text AS v"); pg.sync(); pg.until_ready()
        pg.bind("p", "s1"); pg.describe(b"P", "p"); pg.execute("p"); pg.sync(); pg.until_ready()
    elif name == "bind-sql-prepared":
        pg.query("PREPARE q AS " + SSN); pg.until_ready()
        pg.bind("p", "q"); pg.describe(b"P", "p"); pg.execute("p"); pg.sync(); pg.until_ready()
    elif name == "portal-resumed":
        pg.parse("", "SELECT id, email FROM customers ORDER BY id LIMIT 3"); pg.bind("", ""); pg.describe(b"P", "")
        pg.execute("", 1); pg.execute("", 1); pg.execute("", 1); pg.sync(); pg.until_ready()
    elif name == "pipelined-refusal":
        pg.parse("", "SELECT count(*) FROM analytics.events"); pg.bind("", ""); pg.describe(b"P", ""); pg.execute("")
        pg.parse("", "SELECT count(*) FROM public.customers"); pg.bind("", ""); pg.execute(""); pg.sync(); pg.until_ready()
        pg.query("SELECT count(*) FROM analytics.events"); pg.query("SELECT count(*) FROM public.customers"); pg.until_ready(); pg.until_ready()
    elif name == "flush-and-close":
        # Flush: the answers so far come without a Sync. Then Close the statement and its portal:
        # CloseComplete twice, and a Bind of the closed statement fails (26000) as the server says.
        pg.parse("s1", "SELECT 41 + 1 AS v"); pg.bind("p1", "s1"); pg.flush()
        for _ in range(2):
            t, _ = pg.read(); pg.types += t.decode()
        pg.execute("p1"); pg.close(b"P", "p1"); pg.close(b"S", "s1"); pg.sync(); pg.until_ready()
        pg.bind("p2", "s1"); pg.execute("p2"); pg.sync(); pg.until_ready()
    elif name == "confirm-refused-parse-reparsed":
        # Issue 18: a named Parse the gate refuses never reaches the server, so the name stays free
        # there; the same name parsed again with an allowed statement is what an Execute runs.
        pg.parse("confirm_s1", "SELECT email FROM public.customers"); pg.sync(); pg.until_ready()
        pg.parse("confirm_s1", "SELECT count(*) FROM analytics.events"); pg.bind("", "confirm_s1"); pg.execute(""); pg.sync(); pg.until_ready()
    elif name == "confirm-divergence":
        # Two Queries in one write: the gate forwards the second before the first's answer (and the
        # ParameterStatus it carries) arrives. The function turns standard_conforming_strings off, so
        # the server reads the second as a SELECT and a DELETE where the gate read one SELECT.
        q = lambda text: b"Q" + struct.pack("!i", len(text.encode()) + 5) + text.encode() + b"\0"
        pg.s.sendall(q("SELECT confirm_scs_off()") + q("SELECT 'a\\' , ' ; DELETE FROM confirm_table; -- '"))
        pg.until_closed()
    elif name == "confirm-portal-decoy":
        # A named Bind the server refuses (a parameter missing), pipelined with a second Bind of the
        # same name to another statement: the server takes the second (the name was free), so the
        # gate must not decide the Execute on the first.
        pg.parse("confirm_decoy", "SELECT count(*)::text FROM analytics.events WHERE $1::int = 1"); pg.sync(); pg.until_ready()
        pg.query("PREPARE confirm_real AS SELECT email FROM public.customers ORDER BY id LIMIT 1"); pg.until_ready()
        pg.hold = b""
        pg.bind("confirm_p", "confirm_decoy"); pg.sync(); pg.bind("confirm_p", "confirm_real"); pg.execute("confirm_p"); pg.sync()
        pg.send_held(); pg.until_ready(); pg.until_ready()
        # A named portal in a transaction; COMMIT and BEGIN in one Query end it, so the name is free again.
        pg.query("BEGIN"); pg.until_ready()
        pg.parse("confirm_ok", "SELECT count(*)::text FROM analytics.events"); pg.bind("confirm_p2", "confirm_ok"); pg.execute("confirm_p2"); pg.sync(); pg.until_ready()
        pg.query("COMMIT; BEGIN"); pg.until_ready()
        pg.bind("confirm_p2", "confirm_ok"); pg.execute("confirm_p2"); pg.sync(); pg.until_ready()
        pg.query("COMMIT"); pg.until_ready()
    elif name == "confirm-prepare-and-parse":
        # SQL PREPARE and protocol Parse share one namespace on the server; each request below is
        # pipelined (one write) behind an unanswered change of the same name.
        pg.hold = b""
        pg.parse("confirm_n", "SELECT count(*)::text FROM analytics.events"); pg.sync()
        pg.query("PREPARE confirm_n AS SELECT email FROM public.customers ORDER BY id LIMIT 1")
        pg.send_held(); pg.until_ready(); pg.until_ready()
        pg.query("EXECUTE confirm_n"); pg.until_ready()
        pg.hold = b""
        pg.query("PREPARE confirm_m AS SELECT count(*)::text FROM analytics.events")
        pg.parse("confirm_m", "SELECT 1::text"); pg.bind("", "confirm_m"); pg.execute(""); pg.sync()
        pg.send_held(); pg.until_ready(); pg.until_ready()
        pg.query("EXECUTE confirm_m"); pg.until_ready()
        pg.parse("confirm_k", "SELECT count(*)::text FROM analytics.events"); pg.sync(); pg.until_ready()
        pg.hold = b""
        pg.query("DEALLOCATE ALL")
        pg.parse("confirm_k", "SELECT 'other'::text"); pg.bind("", "confirm_k"); pg.execute(""); pg.sync()
        pg.send_held(); pg.until_ready(); pg.until_ready()
    elif name == "confirm-divergence-sjis":
        # The same with client_encoding: in SJIS, 81 5C is one character, to the gate (UTF-8) the
        # end of one and a backslash that escapes the quote after it.
        q = lambda raw: b"Q" + struct.pack("!i", len(raw) + 5) + raw + b"\0"
        pg.s.sendall(q(b"SELECT confirm_enc_sjis()") + q(b"SELECT E'\xc3\x81\x5c' ; DELETE FROM confirm_table; -- '"))
        pg.until_closed()
    elif name == "confirm-divergence-unsynced":
        # The hidden write, then an extended batch without its Sync: the gate must have the server
        # answer it (a Sync of its own) to end the session without waiting for the client.
        q = lambda text: b"Q" + struct.pack("!i", len(text.encode()) + 5) + text.encode() + b"\0"
        body = b"\0SELECT 1\0" + struct.pack("!h", 0)
        parse = b"P" + struct.pack("!i", len(body) + 4) + body
        bind = b"B" + struct.pack("!i", 4 + 8) + b"\0\0" + struct.pack("!hhh", 0, 0, 0)
        execute = b"E" + struct.pack("!i", 4 + 5) + b"\0" + struct.pack("!i", 0)
        pg.s.sendall(q("SELECT confirm_scs_off()") + q("SELECT 'a\\' , ' ; DELETE FROM confirm_table; -- '") + parse + bind + execute)
        pg.until_closed()
    elif name in ("unterminated-query", "oversized-query", "truncated-query"):
        pg.query("SELECT 1"); pg.until_ready()
        insert = ("INSERT INTO %s VALUES (7)" % os.environ["PROBE_TABLE"]).encode()
        if name == "unterminated-query":
            pg.send(b"Q", insert)
        elif name == "oversized-query":
            pg.s.sendall(b"Q" + struct.pack("!i", 64 << 20) + insert)
        else:
            # The length promises 100 bytes more than come; then the client stops sending.
            pg.s.sendall(b"Q" + struct.pack("!i", len(insert) + 5 + 100) + insert + b"\0")
            pg.s.shutdown(socket.SHUT_WR)
        pg.until_closed()
    else:
        raise SystemExit("unknown scenario " + name)


if __name__ == "__main__":
    pg = PG()
    scenario(pg, sys.argv[1])
    print(json.dumps({"rows": pg.rows, "types": pg.types, "errors": pg.errors, "closed": pg.closed}))
