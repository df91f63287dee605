"""Runs statements through the gate with psycopg 3 (the extended protocol: Parse/Bind/Execute),
one per line of JSON on standard input, and prints one JSON object per statement:
{"sql": ..., "ok": bool, "sqlstate": ..., "message": ...}. Connection from PG* environment."""
import json
import sys

import psycopg

statements = json.load(sys.stdin)
out = []
with psycopg.connect("", autocommit=True, application_name="psycopg-corpus") as conn:
    for sql in statements:
        try:
            # prepare=False: one unnamed statement per execute, as most drivers do.
            conn.execute(sql, prepare=False).fetchall() if sql.lstrip().upper().startswith(("SELECT", "WITH", "EXPLAIN", "EXECUTE", "SHOW")) else conn.execute(sql, prepare=False)
            out.append({"sql": sql, "ok": True})
        except psycopg.Error as e:
            out.append({"sql": sql, "ok": False, "sqlstate": e.sqlstate, "message": str(e).splitlines()[0] if str(e) else ""})
print(json.dumps(out))
