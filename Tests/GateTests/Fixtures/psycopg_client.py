"""psycopg 3 through the gate: the driver an AI agent's tools most often use.
usage: psycopg_client.py params|binary|pipeline|cancel   (connection from PG* environment)
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


if __name__ == "__main__":
    print(json.dumps({"params": params, "binary": binary, "pipeline": pipeline, "cancel": cancel}[sys.argv[1]]()))
