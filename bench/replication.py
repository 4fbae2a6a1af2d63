#!/usr/bin/env python3
"""Replication lag and point-in-time restore time of `lifeboat replicate` (see bench/README.md).

    replication.py --lifeboat BIN [--rates 500,2000] [--seconds 20] [--interval 1s]
                   [--db-mb 256] [--work DIR] [--out FILE.md]

For each commit rate: a WAL database pre-filled to --db-mb MiB, `lifeboat replicate` on it,
and a writer committing one row per transaction at that rate for --seconds. Afterwards every
segment is restored (restore --source --at <its time>) and the highest row id in it found:
a transaction's lag is the time from its commit returning to the capture time of the first
segment that holds it. Then the latest point (base + all segments) is restored and timed
against a plain restore of the base snapshot. Standard library only.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

PASSWORD = "bench-password"


def log(msg):
    print(f"[replication] {msg}", file=sys.stderr, flush=True)


def percentile(values, p):
    s = sorted(values)
    if not s:
        return None
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


class Lifeboat:
    def __init__(self, binary, repo, cache):
        self.binary = binary
        self.env = dict(os.environ, LIFEBOAT_REPO=repo, LIFEBOAT_PASSWORD=PASSWORD,
                        LIFEBOAT_CACHE_DIR=cache)

    def run(self, *args):
        out = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"lifeboat {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def timed(self, *args):
        t0 = time.monotonic()
        out = self.run(*args)
        return time.monotonic() - t0, out


def prefill(path, mib):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE filler(id INTEGER PRIMARY KEY, body BLOB)")
    con.execute("CREATE TABLE events(id INTEGER PRIMARY KEY, body TEXT)")
    rows = mib * 1024 // 4
    con.execute("BEGIN")
    for i in range(rows):
        con.execute("INSERT INTO filler(body) VALUES (?)", (os.urandom(1024) + b"x" * 3072,))
    con.execute("COMMIT")
    con.close()


def segment_times(repo):
    """{seq: capture time in ms} of every segment of the (single) stream, from object names."""
    times = {}
    for d, _, files in os.walk(os.path.join(repo, "streams")):
        for f in files:
            if f.startswith("."):
                continue
            seq, ms, _ = f.split("-", 2)
            times[int(seq)] = int(ms)
    return dict(sorted(times.items()))


def iso_ms(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def run_rate(a, rate, work):
    db = os.path.join(work, "app.db")
    repo = os.path.join(work, "repo")
    lb = Lifeboat(a.lifeboat, repo, os.path.join(work, "cache"))
    lb.run("init", "--kdf-memory-mib", "8", "--kdf-iterations", "1")
    log(f"{rate} commits/s: pre-filling {a.db_mb} MiB")
    prefill(db, a.db_mb)
    replicator = subprocess.Popen([a.lifeboat, "replicate", db, "--interval", a.interval],
                                  env=lb.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(3)  # the base snapshot
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA busy_timeout=10000")
    commits = {}  # id -> ms when the commit returned
    start = time.monotonic()
    period = 1.0 / rate
    n = 0
    while time.monotonic() - start < a.seconds:
        due = start + n * period
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        cur = con.execute("INSERT INTO events(body) VALUES (?)", ("event %d %s" % (n, "y" * 100),))
        commits[cur.lastrowid] = time.time() * 1000
        n += 1
    achieved = n / (time.monotonic() - start)
    con.close()
    time.sleep(2 * float(a.interval.rstrip("ms")) / (1000 if a.interval.endswith("ms") else 1) + 1)
    replicator.send_signal(signal.SIGTERM)
    _, err = replicator.communicate(timeout=60)
    if replicator.returncode != 0:
        raise SystemExit(f"replicate failed: {err.decode().strip()}")

    times = segment_times(repo)
    log(f"{rate} commits/s: {n} commits ({achieved:.0f}/s achieved), {len(times)} segments; restoring each")
    first_holding = {}
    shipped_upto = 0
    for seq, ms in times.items():
        out = os.path.join(work, f"seg{seq}.db")
        lb.run("restore", "--source", db, "--at", iso_ms(ms), "--target", out)
        (top,) = sqlite3.connect(out).execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        for i in range(shipped_upto + 1, top + 1):
            first_holding[i] = ms
        shipped_upto = max(shipped_upto, top)
        os.remove(out)
    lags = [first_holding[i] - t for i, t in commits.items() if i in first_holding]
    missing = len(commits) - len(lags)

    base_s, _ = lb.timed("restore", "--source", db, "--at", iso_ms(min(times.values()) - 1),
                         "--target", os.path.join(work, "base.db"))
    pitr_s, _ = lb.timed("restore", "--source", db, "--at", "latest",
                         "--target", os.path.join(work, "latest.db"))
    (top,) = sqlite3.connect(os.path.join(work, "latest.db")).execute(
        "SELECT coalesce(max(id), 0) FROM events").fetchone()
    return {
        "rate": rate, "achieved": achieved, "commits": n, "segments": len(times),
        "p50": percentile(lags, 50), "p99": percentile(lags, 99), "max": max(lags) if lags else None,
        "not_shipped": missing, "latest_has_all": top == max(commits),
        "base_restore_s": base_s, "pitr_restore_s": pitr_s,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifeboat", required=True)
    ap.add_argument("--rates", default="500,2000")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--interval", default="500ms")
    ap.add_argument("--db-mb", type=int, default=256)
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="lifeboat-replication-")
    results = []
    try:
        for rate in [int(r) for r in a.rates.split(",")]:
            d = os.path.join(work, f"rate{rate}")
            os.makedirs(d)
            results.append(run_rate(a, rate, d))
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run([a.lifeboat, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"# Replication lag and point-in-time restore — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n",
        f"- Command: `bench/replication.py --lifeboat BIN --rates {a.rates} --seconds {a.seconds} "
        f"--interval {a.interval} --db-mb {a.db_mb}`",
        f"- Lifeboat: {version}; {os.cpu_count()} cores; local repository",
        "- Lag: from a commit returning to the capture time of the first segment holding it "
        "(every segment restored and read)",
        "",
        "| commits/s (achieved) | commits | segments | lag p50 ms | lag p99 ms | lag max ms | goal p99 < 1 s | latest point holds every commit | base restore s | point-in-time restore s | PITR ÷ base |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in results:
        ok = r["p99"] is not None and r["p99"] < 1000
        lines.append(
            f"| {r['rate']} ({r['achieved']:.0f}) | {r['commits']} | {r['segments']} | {r['p50']:.0f} | "
            f"{r['p99']:.0f} | {r['max']:.0f} | {'yes' if ok else '**no**'} | "
            f"{'yes' if r['latest_has_all'] else '**no**'} | {r['base_restore_s']:.2f} | "
            f"{r['pitr_restore_s']:.2f} | {r['pitr_restore_s'] / r['base_restore_s']:.2f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report)
    print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    main()
