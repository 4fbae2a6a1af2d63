#!/usr/bin/env python3
"""How Lifeboat's cost grows with the work, beside restic on the same data.

Three curves, each a table of time and peak memory (RSS, from /usr/bin/time) per size:

1. trees of N small files: first backup, a backup with nothing changed, a full restore;
2. a repository with S snapshots already in it: the time to open it and list them, and
   one more backup of a small tree (memory must not grow with S);
3. SQLite databases of G GiB (generated, random rows): first backup and restore;
4. with --garage-env (the env file `.ci/garage.sh DIR` prints), the tree curve again into
   Garage over S3, with the requests each operation made (Garage's own counters, from its
   admin API's /metrics): a user of a paid store pays per request.

Memory must stay bounded by the work of one operation, not the repository's size: the
snapshot curve is the one that shows it. Results go to bench/results/growth-<date>.md
(and .json). Sizes are flags; the defaults fit a two-core machine in about ten minutes:

    bench/growth.py --lifeboat target/release/lifeboat
    bench/growth.py --lifeboat ... --files 1000,10000,100000,1000000 --snapshots 100,1000,10000 --sqlite-gib 1,4,16
    bench/growth.py --lifeboat ... --garage-env "$(.ci/garage.sh /tmp/garage)"
"""

import argparse
import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import timed  # noqa: E402

PASSWORD = "growth-bench"


def tools(args, work):
    env = dict(os.environ, LIFEBOAT_PASSWORD=PASSWORD, RESTIC_PASSWORD=PASSWORD)
    env.pop("LIFEBOAT_CONFIG", None)
    found = {"lifeboat": args.lifeboat}
    if shutil.which("restic") and not args.no_restic:
        found["restic"] = shutil.which("restic")
    return found, env


def run(tool, binary, repo, env, verb, *rest, log):
    if tool == "lifeboat":
        cmd = [binary, "--repo", repo, "--quiet"]
        cmd += {
            "init": ["init"],
            "backup": ["backup"],
            "restore": ["restore", "latest", "--target"],
            "snapshots": ["snapshots", "--json"],
        }[verb]
    else:
        cmd = [binary, "-r", repo, "--quiet"]
        cmd += {
            "init": ["init"],
            "backup": ["backup"],
            "restore": ["restore", "latest", "--target"],
            "snapshots": ["snapshots", "--json"],
        }[verb]
    result = timed(cmd + list(rest), env, None, log)
    if result["rc"] != 0:
        sys.exit(f"{tool} {verb} failed: see {log}")
    return result


def read_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            if line.startswith("export "):
                key, _, value = line[len("export "):].strip().partition("=")
                env[key] = value.strip("'")
    return env


def s3_requests(admin_port):
    """Garage's count of S3 requests so far, by endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10).read()
    counts = {}
    for line in text.decode().splitlines():
        if line.startswith("api_s3_request_counter{"):
            endpoint = line.split('api_endpoint="')[1].split('"')[0]
            counts[endpoint] = counts.get(endpoint, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def s3_curve(args, work, found, env, log):
    garage = read_env_file(args.garage_env)
    with open(os.path.join(garage["GARAGE_DIR"], "state")) as f:
        state = dict(line.strip().split("=", 1) for line in f if "=" in line)
    admin = state["ADMIN_PORT"]
    bucket = garage["LIFEBOAT_TEST_S3_BUCKET"]
    endpoint = garage["AWS_ENDPOINT_URL"]
    s3_env = dict(env, **{k: v for k, v in garage.items() if k.startswith("AWS_")})
    rows = []
    for n in args.files[: args.s3_sizes]:
        src = os.path.join(work, f"s3-tree-{n}")
        make_tree(src, n)
        stamp = int(time.time())
        for tool, binary in found.items():
            repo = (
                f"s3://{bucket}/growth-{stamp}-{n}"
                if tool == "lifeboat"
                else f"s3:{endpoint}/{bucket}/restic-{stamp}-{n}"
            )
            run(tool, binary, repo, s3_env, "init", log=log)
            row = {"files": n, "tool": tool}
            for op, rest in [("first", [src]), ("unchanged", [src])]:
                before = s3_requests(admin)
                row[op] = run(tool, binary, repo, s3_env, "backup", *rest, log=log)
                row[op]["requests"] = diff_counts(s3_requests(admin), before)
            out = os.path.join(work, f"s3-out-{tool}-{n}")
            before = s3_requests(admin)
            row["restore"] = run(tool, binary, repo, s3_env, "restore", out, log=log)
            row["restore"]["requests"] = diff_counts(s3_requests(admin), before)
            shutil.rmtree(out)
            rows.append(row)
        shutil.rmtree(src)
    return rows


def diff_counts(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


def requests_table(rows):
    lines = [
        "### Into Garage over S3: time, peak memory and requests per operation",
        "",
        "| files | tool | operation | s | peak MiB | requests | by kind |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for op in ["first", "unchanged", "restore"]:
            req = r[op]["requests"]
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(req.items(), key=lambda kv: -kv[1]))
            lines.append(
                f"| {r['files']} | {r['tool']} | {op} | {r[op]['seconds']:.2f} | "
                f"{r[op]['peak_mib']:.0f} | {sum(req.values())} | {kinds} |"
            )
    return "\n".join(lines) + "\n"


def make_tree(root, files):
    per_dir = 1000
    for i in range(files):
        d = os.path.join(root, f"d{i // per_dir:05d}")
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:07d}"), "wb") as f:
            f.write(os.urandom(512) + f"file {i}\n".encode() * 32)


def make_sqlite(path, gib):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=wal")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    rows = int(gib * (1 << 30) / 1100)
    batch = 10000
    for start in range(0, rows, batch):
        db.executemany(
            "INSERT INTO t (body) VALUES (?)",
            ((os.urandom(1000),) for _ in range(min(batch, rows - start))),
        )
        db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def files_curve(args, work, found, env, log):
    rows = []
    for n in args.files:
        src = os.path.join(work, f"tree-{n}")
        make_tree(src, n)
        for tool, binary in found.items():
            repo = os.path.join(work, f"{tool}-tree-{n}")
            run(tool, binary, repo, env, "init", log=log)
            first = run(tool, binary, repo, env, "backup", src, log=log)
            again = run(tool, binary, repo, env, "backup", src, log=log)
            out = os.path.join(work, f"out-{tool}-{n}")
            restore = run(tool, binary, repo, env, "restore", out, log=log)
            rows.append(
                {"files": n, "tool": tool, "first": first, "unchanged": again, "restore": restore}
            )
            shutil.rmtree(out)
            shutil.rmtree(repo)
        shutil.rmtree(src)
    return rows


def snapshots_curve(args, work, found, env, log):
    rows = []
    src = os.path.join(work, "small")
    make_tree(src, 20)
    for tool, binary in found.items():
        repo = os.path.join(work, f"{tool}-snapshots")
        run(tool, binary, repo, env, "init", log=log)
        have = 0
        for target in args.snapshots:
            while have < target:
                # A changed file each time, so every backup is a new snapshot.
                with open(os.path.join(src, "d00000", "f0000000"), "ab") as f:
                    f.write(os.urandom(16))
                run(tool, binary, repo, env, "backup", src, log=log)
                have += 1
            listing = run(tool, binary, repo, env, "snapshots", log=log)
            backup = run(tool, binary, repo, env, "backup", src, log=log)
            have += 1
            rows.append({"snapshots": have, "tool": tool, "list": listing, "backup": backup})
        shutil.rmtree(repo)
    shutil.rmtree(src)
    return rows


def sqlite_curve(args, work, found, env, log):
    rows = []
    for gib in args.sqlite_gib:
        path = os.path.join(work, f"db-{gib}.sqlite")
        make_sqlite(path, gib)
        for tool, binary in found.items():
            repo = os.path.join(work, f"{tool}-db-{gib}")
            run(tool, binary, repo, env, "init", log=log)
            first = run(tool, binary, repo, env, "backup", path, log=log)
            out = os.path.join(work, f"out-db-{tool}")
            restore = run(tool, binary, repo, env, "restore", out, log=log)
            rows.append({"gib": gib, "tool": tool, "first": first, "restore": restore})
            shutil.rmtree(out)
            shutil.rmtree(repo)
        os.remove(path)
    return rows


def table(title, key, rows, ops):
    lines = [f"### {title}", ""]
    head = f"| {key} | tool | " + " | ".join(f"{op} s | {op} peak MiB" for op in ops) + " |"
    lines += [head, "|" + "---|" * (2 + 2 * len(ops))]
    for r in rows:
        cells = [str(r[key]), r["tool"]]
        for op in ops:
            cells += [f"{r[op]['seconds']:.2f}", f"{r[op]['peak_mib']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lifeboat", required=True)
    p.add_argument("--files", default="1000,10000,100000")
    p.add_argument("--snapshots", default="10,100,1000")
    p.add_argument("--sqlite-gib", default="0.25,1")
    p.add_argument("--no-restic", action="store_true")
    p.add_argument("--garage-env", default=None, help="the env file .ci/garage.sh prints")
    p.add_argument("--s3-sizes", type=int, default=2, help="how many of --files to run on S3")
    p.add_argument("--work", default=None, help="scratch directory (default: under /tmp)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    args.files = [int(x) for x in args.files.split(",") if x]
    args.snapshots = [int(x) for x in args.snapshots.split(",") if x]
    args.sqlite_gib = [float(x) for x in args.sqlite_gib.split(",") if x]
    args.lifeboat = os.path.abspath(args.lifeboat)
    work = tempfile.mkdtemp(prefix="lifeboat-growth-", dir=args.work)
    log = os.path.join(work, "log.txt")
    found, env = tools(args, work)
    started = time.monotonic()
    try:
        results = {
            "date": datetime.date.today().isoformat(),
            "cores": os.cpu_count(),
            "load1_start": os.getloadavg()[0],
            "tools": {t: subprocess.run([b, "version"] if t == "restic" else [b, "--version"],
                                        capture_output=True, text=True).stdout.strip()
                      for t, b in found.items()},
            "files": files_curve(args, work, found, env, log),
            "snapshots": snapshots_curve(args, work, found, env, log),
            "sqlite": sqlite_curve(args, work, found, env, log),
            "s3": s3_curve(args, work, found, env, log) if args.garage_env else [],
            "seconds": round(time.monotonic() - started, 1),
        }
    except SystemExit:
        print(f"logs kept in {log}", file=sys.stderr)
        raise
    md = [
        f"# Growth curves, {results['date']}",
        "",
        f"{results['cores']} cores, load {results['load1_start']:.2f} at the start, "
        f"{results['seconds']} s in all. Tools: "
        + "; ".join(f"{t}: {v}" for t, v in results["tools"].items()),
        "",
        table("Trees of N small files (~1 KiB each)", "files", results["files"],
              ["first", "unchanged", "restore"]),
        table("A repository with S snapshots: list them, then one more backup of 20 files",
              "snapshots", results["snapshots"], ["list", "backup"]),
        table("SQLite databases (random rows)", "gib", results["sqlite"], ["first", "restore"]),
    ]
    if results["s3"]:
        md.append(requests_table(results["s3"]))
    text = "\n".join(md)
    print(text)
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results", f"growth-{results['date']}.md"
    )
    with open(out, "w") as f:
        f.write(text)
    with open(out[:-3] + ".json", "w") as f:
        json.dump(results, f, indent=1)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
