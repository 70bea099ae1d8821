#!/usr/bin/env python3
"""Helpers of api.sh: seeding a catalog by cloning one image, and the summary tables.

clone --sqlite PATH | --pg URL  --template ID --count N
    Copies the image TEMPLATE (made through the server's own API, so every column holds
    what the server writes) N times in one transaction: new UUIDs, names `<name>-<n>`,
    created_at/updated_at one second apart in the template's own text format; its
    image_properties and image_tags rows come along. Column lists are read from the
    catalog, so the same code seeds Glance's schema and cloudimg's (an autoincrement
    `id` of a child table is left to the database). Then ANALYZE.

summary RESULTS.tsv
    Prints the markdown tables of api.sh from its raw rows (median and min-max).
"""

import datetime
import statistics
import subprocess
import sqlite3
import sys
import uuid

CHILDREN = ("image_properties", "image_tags")


def shifted(ts, seconds):
    """The timestamp text `ts` moved back by `seconds`, in the same format."""
    sep = ts[10]
    base = datetime.datetime.strptime(ts[:19], f"%Y-%m-%d{sep}%H:%M:%S")
    return (base - datetime.timedelta(seconds=seconds)).strftime(
        f"%Y-%m-%d{sep}%H:%M:%S"
    ) + ts[19:]


def q(s):
    return "'" + s.replace("'", "''") + "'"


def clone_sql(columns, template, template_ts, count):
    """The SQL script that makes `count` copies of image `template`."""
    out = ["BEGIN;", "CREATE TEMP TABLE seed (n INTEGER, id TEXT, ts TEXT);"]
    rows = [
        f"({n}, {q(str(uuid.uuid4()))}, {q(shifted(template_ts, n))})"
        for n in range(1, count + 1)
    ]
    for i in range(0, len(rows), 500):
        out.append("INSERT INTO seed VALUES " + ",".join(rows[i : i + 500]) + ";")
    exprs = []
    for c in columns["images"]:
        if c == "id":
            exprs.append("s.id")
        elif c == "name":
            exprs.append("t.name || '-' || s.n")
        elif c in ("created_at", "updated_at"):
            exprs.append("s.ts")
        else:
            exprs.append(f"t.{c}")
    out.append(
        f"INSERT INTO images ({', '.join(columns['images'])}) SELECT {', '.join(exprs)} "
        f"FROM images t, seed s WHERE t.id = {q(template)};"
    )
    for table in CHILDREN:
        cols = [c for c in columns[table] if c != "id"]
        exprs = ["s.id" if c == "image_id" else f"t.{c}" for c in cols]
        out.append(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
            f"FROM {table} t, seed s WHERE t.image_id = {q(template)};"
        )
    out += ["DROP TABLE seed;", "COMMIT;", "ANALYZE;"]
    return "\n".join(out)


def clone(args):
    opts = dict(zip(args[::2], args[1::2]))
    template, count = opts["--template"], int(opts["--count"])
    if "--sqlite" in opts:
        db = sqlite3.connect(opts["--sqlite"], isolation_level=None, timeout=30)
        columns = {
            t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")]
            for t in ("images",) + CHILDREN
        }
        ts = db.execute("SELECT created_at FROM images WHERE id = ?", (template,)).fetchone()[0]
        db.executescript(clone_sql(columns, template, ts, count))
        n = db.execute("SELECT count(*) FROM images").fetchone()[0]
    else:
        url = opts["--pg"]

        def psql(sql, stdin=None):
            return subprocess.run(
                ["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
                + (["-c", sql] if sql else ["-f", "-"]),
                input=stdin, capture_output=True, text=True, check=True,
            ).stdout

        columns = {
            t: psql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = "
                f"{q(t)} AND table_schema = current_schema() ORDER BY ordinal_position"
            ).split()
            for t in ("images",) + CHILDREN
        }
        ts = psql(f"SELECT created_at FROM images WHERE id = {q(template)}").strip()
        psql(None, clone_sql(columns, template, ts, count))
        n = int(psql("SELECT count(*) FROM images").strip())
    print(n)


def fmt(vals, unit=""):
    if not vals:
        return "-"
    m = statistics.median(vals)
    if len(vals) == 1:
        return f"{m:g}{unit}"
    return f"{m:g}{unit} ({min(vals):g}-{max(vals):g})"


def summary(args):
    rows = [line.rstrip("\n").split("\t") for line in open(args[0]) if line.strip()]
    load = [r for r in rows if r[0] == "load"]
    xfer = [r for r in rows if r[0] == "xfer"]
    if load:
        print("| endpoint | server | requests/s | p50 ms | p99 ms | errors | wrk CPU (cores) | server CPU (cores) | others' CPU (cores) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        keys = []
        for r in load:
            if (r[1], r[2]) not in keys:
                keys.append((r[1], r[2]))
        med = {}
        for ep, srv in keys:
            rs = [r for r in load if r[1] == ep and r[2] == srv]
            col = lambda i: [round(float(r[i]), 2) for r in rs]
            med[(ep, srv)] = (statistics.median(col(3)), statistics.median(col(5)))
            errs = sum(int(r[6]) for r in rs)
            print(
                f"| {ep} | {srv} | {fmt([round(x) for x in col(3)])} | {fmt(col(4))} | {fmt(col(5))} | "
                f"{errs} | {fmt(col(7))} | {fmt(col(8))} | {fmt(col(9))} |"
            )
        print()
        print("| endpoint | server | throughput / Glance's (goal >= 10) | p99 (goal < 10 ms) |")
        print("|---|---|---:|---|")
        for ep, srv in keys:
            glance = next((k for k in med if k[0] == ep and k[1].startswith("Glance")), None)
            if srv.startswith("Glance") or glance is None:
                continue
            ratio = med[(ep, srv)][0] / med[glance][0]
            p99 = med[(ep, srv)][1]
            print(
                f"| {ep} | {srv} | {ratio:.1f}x {'met' if ratio >= 10 else 'MISSED'} | "
                f"{p99:g} ms {'met' if p99 < 10 else 'MISSED'} |"
            )
        print()
    if xfer:
        print("| operation | tool | seconds | MiB/s | client CPU s | server CPU s | total CPU s | peak RSS MiB (client) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        keys = []
        for r in xfer:
            if (r[1], r[2]) not in keys:
                keys.append((r[1], r[2]))
        med = {}
        for op, tool in keys:
            rs = [r for r in xfer if r[1] == op and r[2] == tool]
            col = lambda i: [round(float(r[i]), 2) for r in rs]
            mib = [round(float(r[3]) / float(r[4]) / 1048576) for r in rs]
            tot = [round(float(r[5]) + float(r[6]), 2) for r in rs]
            med[(op, tool)] = statistics.median(col(4))
            print(
                f"| {op} | {tool} | {fmt(col(4))} | {fmt(mib)} | {fmt(col(5))} | {fmt(col(6))} | "
                f"{fmt(tot)} | {fmt([round(float(r[7]) / 1024) for r in rs])} |"
            )
        print()
        for op in dict.fromkeys(k[0] for k in keys):
            if (op, "API (curl)") in med and (op, "cloudimg CLI") in med:
                r = med[(op, "cloudimg CLI")] / med[(op, "API (curl)")]
                print(
                    f"- {op}: API speed / CLI speed = {r:.2f} (goal >= 0.9: "
                    f"{'met' if r >= 0.9 else 'MISSED'})"
                )
        print()


if __name__ == "__main__":
    {"clone": clone, "summary": summary}[sys.argv[1]](sys.argv[2:])
