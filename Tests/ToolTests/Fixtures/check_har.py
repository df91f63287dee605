#!/usr/bin/env python3
"""Validates HAR files against the HAR 1.2 JSON Schema in this directory, and checks what a
schema cannot: each entry's time is the sum of its timings (those not -1), entries are in
time order, page references exist. Prints one line per problem; exit 0 when every file holds."""
import json
import pathlib
import sys

import jsonschema

schema = json.loads((pathlib.Path(__file__).parent / "har-1.2.schema.json").read_text())
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
problems = 0
for name in sys.argv[1:]:
    har = json.loads(pathlib.Path(name).read_text())
    for error in validator.iter_errors(har):
        problems += 1
        print(f"{name}: schema: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    log = har.get("log", {})
    pages = {p["id"] for p in log.get("pages", [])}
    previous = ""
    for i, entry in enumerate(log.get("entries", [])):
        timings = entry.get("timings", {})
        total = sum(v for k, v in timings.items() if isinstance(v, (int, float)) and v != -1)
        if abs(total - entry.get("time", 0)) > 0.001:
            problems += 1
            print(f"{name}: entry {i}: time {entry.get('time')} is not the sum of its timings ({total})")
        if "pageref" in entry and entry["pageref"] not in pages:
            problems += 1
            print(f"{name}: entry {i}: pageref {entry['pageref']} names no page")
        if entry.get("startedDateTime", "") < previous:
            problems += 1
            print(f"{name}: entry {i}: starts before the entry before it")
        previous = entry.get("startedDateTime", "")
print(f"{problems} problems in {len(sys.argv) - 1} files")
sys.exit(1 if problems else 0)
