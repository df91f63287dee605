"""psycopg 3 through the gate: the driver an AI agent's tools most often use.
usage: psycopg_client.py params|binary|pipeline|cancel|masking   (connection from PG* environment)
Prints one JSON object with what it observed; exits non-zero on failure."""
import json
import sys
import threading
import time

import psycopg


def connect():
    return psycopg.connect("", autocommit=True, application_name="psycopg-test")


def params():
    with connect() as conn:
        rows = conn.execute("SELECT id, email FROM public.customers WHERE id = ANY(%s) AND country = %s ORDER BY id",
                            ([1, 2, 3, 4, 5, 6], "DE")).fetchall()
        # Server-side prepared statement, executed several times.
        for i in range(3):
            conn.execute("SELECT %s::int + 1", (i,), prepare=True).fetchone()
        return {"rows": [list(r) for r in rows]}


def binary():
    with connect() as conn:
        cur = conn.cursor(binary=True)
        row = cur.execute("SELECT 42::int, 3.5::float8, 'hello'::text, now() IS NOT NULL").fetchone()
        return {"row": [row[0], row[1], row[2], row[3]]}


def pipeline():
    with connect() as conn:
        with conn.pipeline():
            curs = [conn.execute("SELECT %s::int * 2", (i,)) for i in range(10)]
            results = [c.fetchone()[0] for c in curs]
        return {"results": results}


def cancel():
    with connect() as conn:
        def later():
            time.sleep(1.0)
            conn.cancel_safe() if hasattr(conn, "cancel_safe") else conn.cancel()
        threading.Thread(target=later).start()
        started = time.monotonic()
        try:
            conn.execute("SELECT pg_sleep(30)")
            return {"cancelled": False}
        except psycopg.errors.QueryCanceled as e:
            return {"cancelled": True, "seconds": round(time.monotonic() - started, 2), "sqlstate": e.sqlstate}


def masking():
    """Sensitive columns through the extended protocol, as text and as binary results, with
    server-side parameters. Every value comes back as the driver decoded it (repr for non-JSON types)."""
    query = ("SELECT id, email, ssn, card_number, card_number::bigint AS card_int, card_number::numeric AS card_num, "
             "phone, upper(email) AS up, to_jsonb(c) AS doc, array_agg(email) OVER () AS emails "
             "FROM customers c WHERE id <= %s ORDER BY id")
    out = {}
    with connect() as conn:
        for name, binary in (("text", False), ("binary", True)):
            cur = conn.cursor(binary=binary)
            rows = cur.execute(query, (5,)).fetchall()
            out[name] = [[None if v is None else (v if isinstance(v, (str, int)) else repr(v)) for v in row] for row in rows]
        # A prepared statement executed again: its result columns come from the earlier Describe.
        for _ in range(3):
            row = conn.execute("SELECT email, phone FROM customers WHERE id = %s", (7,), prepare=True).fetchone()
        out["prepared"] = list(row)
        # Two statements with the same result shape, one after the other on the unnamed statement:
        # the second's column (from a covered one) must not inherit the first's plan.
        names = conn.execute("SELECT upper(full_name) AS x FROM customers WHERE id = %s", (7,)).fetchone()[0]
        phones = conn.execute("SELECT upper(phone) AS x FROM customers WHERE id = %s", (7,)).fetchone()[0]
        out["same_shape"] = [names, phones]
        # A prepared statement run again after another statement's result: its cached plan brings
        # its own columns' names, so its masks are counted under them.
        for _ in range(3):
            again = conn.execute("SELECT id, email, phone FROM customers WHERE id = %s", (8,), prepare=True).fetchone()
            conn.execute("SELECT upper(full_name) AS b1, country AS b2, 'z' AS b3 FROM customers WHERE id = %s", (8,)).fetchone()
        out["prepared_again"] = list(again)
    return out


if __name__ == "__main__":
    print(json.dumps({"params": params, "binary": binary, "pipeline": pipeline, "cancel": cancel, "masking": masking}[sys.argv[1]](),
                     default=str))
