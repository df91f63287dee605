"""Message sequences an attacker sends by hand (review 2026-12-05, third section): the extended
protocol's edges and cursors across savepoints, each meant to make the gate decide, mask or record
one statement while the server runs another. usage: attack_sequences.py SCENARIO (connection from
PGHOST/PGPORT/PGPASSWORD/PGDATABASE). Prints one JSON object: {"rows": [[text values]], "errors":
[{"code", "message"}], "tags": [command tags]}."""
import json
import os
import socket
import struct
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raw_protocol import PG as RawPG  # noqa: E402  (the hand-speaking client, logged in)


class PG(RawPG):
    """raw_protocol's client, with a read timeout (a ReadyForQuery the server never sends) and
    the command tags."""

    def __init__(self):
        super().__init__()
        self.s.settimeout(10)
        self.tags = []

    def ready(self, count=1):
        """Reads up to `count` ReadyForQuery; a server that owes fewer (it skipped a Query) times out."""
        try:
            for _ in range(count):
                while True:
                    t, b = self.read()
                    if t == b"D":
                        n, off, vals = struct.unpack("!h", b[:2])[0], 2, []
                        for _ in range(n):
                            ln = struct.unpack("!i", b[off:off + 4])[0]
                            off += 4
                            vals.append(None if ln < 0 else b[off:off + ln].decode("utf-8", "replace"))
                            off += max(ln, 0)
                        self.rows.append(vals)
                    elif t == b"E":
                        f = dict((x[:1].decode(), x[1:].decode("utf-8", "replace")) for x in b.split(b"\0") if x)
                        self.errors.append({"code": f.get("C"), "message": f.get("M")})
                    elif t == b"C":
                        self.tags.append(b.rstrip(b"\0").decode())
                    elif t == b"Z":
                        break
        except socket.timeout:
            self.errors.append({"code": "timeout", "message": "no ReadyForQuery"})

    def q(self, *texts):
        for t in texts:
            self.query(t)
            self.ready()


DECOY = "SELECT 'decoy'::text AS v"
REAL = "SELECT reverse(phone) AS v FROM customers ORDER BY id"


def scenario(pg, name):
    if name == "query-in-failed-batch":
        # An Execute that fails, then a Query before the batch's Sync: the server skips the Query
        # unanswered. The Queries after it must be masked and recorded as themselves.
        pg.hold = b""; pg.parse("", "SELECT 1/0 AS v"); pg.bind("", ""); pg.execute(""); pg.query(DECOY); pg.sync(); pg.send_held()
        pg.ready()
        pg.q("SELECT 'after'::text AS v", REAL + " LIMIT 3")
    elif name == "savepoint-cursor":
        # A cursor declared inside a savepoint is closed by ROLLBACK TO; the name is free again.
        pg.q("BEGIN", "SAVEPOINT s", "DECLARE c CURSOR FOR " + DECOY, "ROLLBACK TO s",
             "DECLARE c CURSOR FOR " + REAL, "FETCH 3 FROM c", "ROLLBACK")
    elif name == "savepoint-cursor-pipelined":
        # The same, with the ROLLBACK TO, the new DECLARE and the FETCH sent before any answer.
        pg.q("BEGIN", "SAVEPOINT s", "DECLARE c CURSOR FOR " + DECOY)
        pg.hold = b""; pg.query("ROLLBACK TO s"); pg.query("DECLARE c CURSOR FOR " + REAL); pg.query("FETCH 3 FROM c"); pg.send_held()
        pg.ready(3)
        pg.q("ROLLBACK")
    elif name == "error-then-rollback-to":
        # An error aborts the transaction; ROLLBACK TO the savepoint closes the cursor declared after it.
        pg.q("BEGIN", "SAVEPOINT s", "DECLARE c CURSOR FOR " + DECOY, "SELECT 1/0", "ROLLBACK TO s",
             "DECLARE c CURSOR FOR " + REAL, "FETCH 3 FROM c", "ROLLBACK")
    elif name == "sql-close-of-portal":
        # SQL CLOSE ends a protocol portal; DECLARE takes its name; Execute of the name runs the cursor.
        pg.q("BEGIN")
        pg.parse("s", DECOY); pg.bind("c", "s"); pg.sync(); pg.ready()
        pg.q("CLOSE c", "DECLARE c CURSOR FOR " + REAL)
        pg.execute("c", 3); pg.sync(); pg.ready()
        pg.q("ROLLBACK")
    elif name == "close-all-of-portal":
        pg.q("BEGIN")
        pg.parse("s", DECOY); pg.bind("c", "s"); pg.sync(); pg.ready()
        pg.q("CLOSE ALL", "DECLARE c CURSOR FOR " + REAL)
        pg.execute("c", 3); pg.sync(); pg.ready()
        pg.q("ROLLBACK")
    elif name == "protocol-close-of-cursor":
        # A protocol Close ends a SQL cursor; DECLARE of the name again; FETCH reads the new one.
        pg.q("BEGIN", "DECLARE c CURSOR FOR " + DECOY)
        pg.close(b"P", "c"); pg.sync(); pg.ready()
        pg.q("DECLARE c CURSOR FOR " + REAL, "FETCH 3 FROM c", "ROLLBACK")
    elif name == "bind-over-cursor":
        # A Bind of a cursor's name (the server refuses it: the name is taken).
        pg.q("BEGIN", "DECLARE c CURSOR FOR " + REAL)
        pg.parse("s", DECOY); pg.bind("c", "s"); pg.execute("c"); pg.sync(); pg.ready()
        pg.q("FETCH 3 FROM c", "ROLLBACK")
    else:
        raise SystemExit("unknown scenario " + name)


pg = PG()
scenario(pg, sys.argv[1])
print(json.dumps({"rows": pg.rows, "errors": pg.errors, "tags": pg.tags}))
