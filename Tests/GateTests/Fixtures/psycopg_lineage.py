"""Runs statements through the gate with psycopg 3 (extended protocol), in text or binary result
format (argv[1]), one JSON list of statements on standard input. Prints one JSON object per
statement: {"sql", "ok", "rows": [[repr of each value]]} or {"sql", "ok": false, "sqlstate",
"fields": every text field of the error}. Connection from PG* environment."""
import json
import sys

import psycopg

binary = sys.argv[1] == "binary"
statements = json.load(sys.stdin)
out = []
with psycopg.connect("", autocommit=True, application_name="psycopg-lineage") as conn:
    for sql in statements:
        try:
            cur = conn.cursor(binary=binary)
            cur.execute(sql, prepare=False)
            rows = cur.fetchall() if cur.description is not None else []
            out.append({"sql": sql, "ok": True, "rows": [[repr(v) for v in row] for row in rows]})
        except psycopg.Error as e:
            d = e.diag
            fields = [str(e), d.message_primary, d.message_detail, d.message_hint, d.context, d.internal_query]
            out.append({"sql": sql, "ok": False, "sqlstate": e.sqlstate, "fields": [f for f in fields if f]})
print(json.dumps(out))
