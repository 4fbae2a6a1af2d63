#!/usr/bin/env python3
"""Runs the Lifeboat / restic / borg comparison; called by bench/run.sh (see bench/README.md).

    harness.py --work DIR --lifeboat BIN --results-dir DIR [--size-mb N] [--files N]
               [--tools lifeboat,restic,borg] [--datasets db,tree]

For every dataset (db: one SQLite file; tree: many small files), on the same generated data:
  1. each tool, in the fixed order lifeboat -> restic -> borg, makes a first backup;
  2. the data is changed once (~1% of DB rows updated, ~1% of files modified);
  3. each tool, same order, makes a second backup;
  4. each tool, same order, restores its latest snapshot into an empty directory, and the
     result is checked against the source (sha256 of every file; untimed).
Each timed step runs under /usr/bin/time (peak RSS, %M) and its wall time is taken with a
monotonic clock. Repository size (du -sb) is taken after each backup. `sync` runs (untimed)
before every timed step so that one tool does not pay for another's dirty-page writeback; no
caches are dropped: all tools read warm data alike.
Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import datagen  # noqa: E402

PASSWORD = "bench-passphrase-not-secret"
SCENARIOS = [("backup1", "first backup"), ("backup2", "backup after ~1% change"),
             ("restore", "full restore of latest")]


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def du_bytes(path):
    out = subprocess.run(["du", "-sb", path], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


class Tool:
    """One backup tool: how to init, back up and restore with it, in its own sandbox."""

    name = ""

    def __init__(self, work, dataset):
        self.base = os.path.join(work, "tools", self.name, dataset)
        self.repo = os.path.join(self.base, "repo")
        self.home = os.path.join(self.base, "home")  # caches and config live here
        os.makedirs(self.home, exist_ok=True)

    def env(self):
        e = dict(os.environ)
        e["HOME"] = self.home
        e["XDG_CACHE_HOME"] = os.path.join(self.home, ".cache")
        e["XDG_CONFIG_HOME"] = os.path.join(self.home, ".config")
        return e

    def version(self):
        raise NotImplementedError


class Lifeboat(Tool):
    name = "lifeboat"

    def __init__(self, work, dataset, binary):
        self.bin = binary
        super().__init__(work, dataset)

    def env(self):
        e = super().env()
        e["LIFEBOAT_REPO"] = self.repo
        e["LIFEBOAT_PASSWORD"] = PASSWORD
        return e

    def version(self):
        return subprocess.run([self.bin, "--version"], capture_output=True, text=True).stdout.strip()

    def init_cmd(self):
        return [self.bin, "init"], None

    def backup_cmd(self, path, label):
        return [self.bin, "backup", path, "--json", "--quiet"], None

    def restore_cmd(self, target):
        return [self.bin, "restore", "latest", "--target", target, "--quiet"], None


class Restic(Tool):
    name = "restic"

    def env(self):
        e = super().env()
        e["RESTIC_REPOSITORY"] = self.repo
        e["RESTIC_PASSWORD"] = PASSWORD
        e["RESTIC_CACHE_DIR"] = os.path.join(self.home, "restic-cache")
        return e

    def version(self):
        return subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.strip()

    def init_cmd(self):
        # Repository format 2 (compression; "auto" is restic's default mode). 0.14+ defaults to
        # it already; saying it keeps newer and older restic releases comparable.
        return ["restic", "init", "--repository-version", "2"], None

    def backup_cmd(self, path, label):
        return ["restic", "backup", path, "--quiet", "--tag", label], None

    def restore_cmd(self, target):
        return ["restic", "restore", "latest", "--target", target, "--quiet"], None


class Borg(Tool):
    name = "borg"

    def env(self):
        e = super().env()
        e["BORG_PASSPHRASE"] = PASSWORD
        e["BORG_BASE_DIR"] = self.home
        e["BORG_RELOCATED_REPO_ACCESS_IS_OK"] = "yes"
        return e

    def version(self):
        return subprocess.run(["borg", "--version"], capture_output=True, text=True).stdout.strip()

    def init_cmd(self):
        return ["borg", "init", "--encryption", "repokey-blake2", self.repo], None

    def backup_cmd(self, path, label):
        return ["borg", "create", "--compression", "zstd,3", f"{self.repo}::{label}", path], None

    def restore_cmd(self, target):
        # borg extracts into the current directory; the archive name of the latest backup is
        # known (we named it), so no `borg list` is needed.
        return ["borg", "extract", f"{self.repo}::{self.latest}"], target


class SqliteBackup(Tool):
    """`sqlite3 app.db ".backup copy.db"`: SQLite's own online backup, a full copy each time
    (no encryption, compression or deduplication); the floor for reading a database."""
    name = "sqlite3"
    datasets = ("db",)

    def version(self):
        return "sqlite3 " + subprocess.run(["sqlite3", "--version"], capture_output=True,
                                           text=True).stdout.split()[0] + " (.backup)"

    def init_cmd(self):
        return ["mkdir", "-p", self.repo], None

    def backup_cmd(self, path, label):
        return ["sqlite3", os.path.join(path, "app.db"), f".backup {self.repo}/{label}.db"], None

    def restore_cmd(self, target):
        # Into target/db/, where the other tools put the dataset directory.
        return ["sh", "-c", 'mkdir -p "$2/db" && cp "$1" "$2/db/app.db"', "restore",
                f"{self.repo}/{self.latest}.db", target], None


def timed(cmd, env, cwd, logfile):
    """Run cmd under /usr/bin/time; returns dict(seconds, peak_mib, user, sys, rc)."""
    subprocess.run(["sync"], check=True)
    load = loadavg()
    tfile = logfile + ".time"
    full = ["/usr/bin/time", "-f", "%M %U %S", "-o", tfile] + cmd
    with open(logfile, "ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        t0 = time.monotonic()
        rc = subprocess.run(full, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
        seconds = time.monotonic() - t0
    with open(tfile) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    # On failure /usr/bin/time writes "Command exited with non-zero status N" first.
    fields = lines[-1].split()
    return {
        "seconds": round(seconds, 3),
        "peak_mib": round(int(fields[0]) / 1024, 1),
        "user_s": float(fields[1]),
        "sys_s": float(fields[2]),
        "rc": rc,
        "load1_before": load,
    }


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return None


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def find_restored(root, name, want_dir):
    """Restic keeps the absolute path under --target, borg the path without its leading '/',
    other tools may keep only the last component: find the dataset by name, shallowest first."""
    best = None
    for d, dirs, files in os.walk(root):
        depth = d.count(os.sep)
        if name in (dirs if want_dir else files) and (best is None or depth < best[0]):
            best = (depth, os.path.join(d, name))
    return best[1] if best else None


def check_restore(root, dataset_path, expected):
    name = os.path.basename(dataset_path)
    found = find_restored(root, name, True)
    if not found:
        return f"dataset directory {name!r} not found in the restored tree", None
    got = datagen.manifest(found)
    if got == expected:
        return None, "identical"
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    differ = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    # A SQLite file copied through SQLite's backup API (a consistent snapshot of a live
    # database) differs from the source in header bytes only: compare the SQL content.
    logical = []
    for k in differ:
        src, dst = os.path.join(dataset_path, k), os.path.join(found, k)
        if datagen.is_sqlite(src) and datagen.is_sqlite(dst) and \
                datagen.sqlite_digest(src) == datagen.sqlite_digest(dst):
            logical.append(k)
    differ = [k for k in differ if k not in logical]
    if not (missing or extra or differ):
        return None, f"{len(logical)} SQLite file(s) same SQL content, other bytes differ; rest identical"
    return (f"restored content differs: {len(missing)} missing, {len(extra)} extra, "
            f"{len(differ)} with other content (e.g. {(missing + extra + differ)[:3]})"), None


def run_round(a, work, tool_names, datasets):
    """One complete pass on freshly generated data: returns (results, init_errors, info)."""
    data = os.path.join(work, "data")
    logs = os.path.join(a.work, "logs", os.path.basename(work))
    os.makedirs(logs, exist_ok=True)
    paths = {"db": os.path.join(data, "db"), "tree": os.path.join(data, "uploads")}

    log(f"generating data in {data}: SQLite {a.size_mb} MiB, {a.files} small files")
    t0 = time.monotonic()
    subprocess.run([sys.executable, os.path.join(HERE, "datagen.py"), "create", "--dir", data,
                    "--size-mb", str(a.size_mb), "--files", str(a.files)], check=True)
    info = {
        "gen_seconds": round(time.monotonic() - t0, 1),
        "source_mib": {d: round(du_bytes(paths[d]) / 2**20, 1) for d in datasets},
        "file_counts": {d: len(datagen.manifest(paths[d])) for d in datasets},
    }

    def make(name, ds):
        if name == "lifeboat":
            return Lifeboat(work, ds, a.lifeboat)
        if name == "restic":
            return Restic(work, ds)
        if name == "borg":
            return Borg(work, ds)
        if name == "sqlite3":
            return SqliteBackup(work, ds)
        raise SystemExit(f"unknown tool {name}")

    tools = {(t, d): make(t, d) for d in datasets for t in tool_names}
    info["versions"] = {t: tools[(t, datasets[0])].version() for t in tool_names}
    # A tool that does not apply to a dataset (sqlite3 on the file tree) is left out.
    tools = {k: v for k, v in tools.items() if k[1] in getattr(v, "datasets", (k[1],))}
    results = {}  # (dataset, scenario, tool) -> dict
    broken = set()  # (tool, dataset) whose init or backup failed: later steps are skipped
    init_errors = {}

    for (t, d), tool in tools.items():
        cmd, cwd = tool.init_cmd()
        lf = os.path.join(logs, f"{t}-{d}-init.log")
        with open(lf, "wb") as out:
            rc = subprocess.run(cmd, env=tool.env(), cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            log(f"{t} init failed ({d}), exit {rc}:\n{tail(lf)}")
            broken.add((t, d))
            init_errors[(t, d)] = f"exit {rc}: " + tail(lf, 8).strip()

    def backup_round(label):
        for d in datasets:
            for t in tool_names:
                if (t, d) in broken or (t, d) not in tools:
                    continue
                tool = tools[(t, d)]
                cmd, cwd = tool.backup_cmd(paths[d], label)
                lf = os.path.join(logs, f"{t}-{d}-{label}.log")
                r = timed(cmd, tool.env(), cwd, lf)
                r["repo_mib"] = round(du_bytes(tool.repo) / 2**20, 1)
                if r["rc"] != 0:
                    r["error"] = f"exit {r['rc']}: " + tail(lf, 8).strip()
                    broken.add((t, d))
                    log(f"{t} {label} {d} FAILED (exit {r['rc']}):\n{tail(lf)}")
                else:
                    tool.latest = label
                    log(f"{t:9s} {d:5s} {label}: {r['seconds']:8.2f}s  {r['peak_mib']:7.1f} MiB peak  "
                        f"repo {r['repo_mib']:8.1f} MiB")
                results[(d, label, t)] = r

    backup_round("backup1")
    log("changing ~1% of the data")
    subprocess.run([sys.executable, os.path.join(HERE, "datagen.py"), "mutate", "--dir", data], check=True)
    backup_round("backup2")

    expected = {d: datagen.manifest(paths[d]) for d in datasets}
    for d in datasets:
        for t in tool_names:
            if (t, d) in broken or (t, d) not in tools:
                continue
            tool = tools[(t, d)]
            target = os.path.join(work, "restore", t, d)
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(target)
            cmd, cwd = tool.restore_cmd(target)
            lf = os.path.join(logs, f"{t}-{d}-restore.log")
            r = timed(cmd, tool.env(), cwd, lf)
            if r["rc"] != 0:
                r["error"] = f"exit {r['rc']}: " + tail(lf, 8).strip()
                log(f"{t} restore {d} FAILED (exit {r['rc']}):\n{tail(lf)}")
            else:
                problem, how = check_restore(target, paths[d], expected[d])
                r["verified"] = problem is None
                r["verified_how"] = how
                if problem:
                    r["error"] = "restore verification failed: " + problem
                    log(f"{t} restore {d}: {problem}")
                log(f"{t:9s} {d:5s} restore: {r['seconds']:8.2f}s  {r['peak_mib']:7.1f} MiB peak  "
                    f"verified={r['verified']}")
            results[(d, "restore", t)] = r
            shutil.rmtree(target, ignore_errors=True)
    return results, init_errors, info


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def combine(rounds):
    """Median of every measured number over the rounds; a failure in any round wins."""
    out = {}
    for key in rounds[0]:
        rs = [r[key] for r in rounds if key in r]
        bad = [r for r in rs if "error" in r]
        if bad or len(rs) < len(rounds):
            out[key] = bad[0] if bad else dict(rs[0], error="missing in some rounds")
            continue
        m = dict(rs[-1])
        for k in ("seconds", "peak_mib", "user_s", "sys_s", "repo_mib"):
            if k in m:
                m[k] = median([r[k] for r in rs])
        m["seconds_each_round"] = [r["seconds"] for r in rs]
        m["load1_each_round"] = [r.get("load1_before") for r in rs]
        out[key] = m
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--lifeboat", required=True)
    ap.add_argument("--results-dir", required=True)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--tools", default="lifeboat,restic,borg,sqlite3")
    ap.add_argument("--datasets", default="db,tree")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--git", default="")
    a = ap.parse_args()

    tool_names = [t for t in a.tools.split(",") if t]
    datasets = [d for d in a.datasets.split(",") if d]
    all_results, init_errors = [], {}
    for n in range(1, a.rounds + 1):
        if a.rounds > 1:
            log(f"=== round {n} of {a.rounds} ===")
        work = os.path.join(a.work, f"round{n}")
        results, errs, info = run_round(a, work, tool_names, datasets)
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)  # data and repos; logs stay in --work/logs
        all_results.append(results)
        init_errors.update(errs)
    results = combine(all_results)

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "size_mb": a.size_mb,
        "files": a.files,
        "rounds": a.rounds,
        "git": a.git,
        "machine": machine(),
        "order": tool_names,
        "init_errors": {f"{t} {d}": e for (t, d), e in init_errors.items()},
        **info,
    }
    report = render(meta, datasets, tool_names, results)
    print(report)
    os.makedirs(a.results_dir, exist_ok=True)
    day = datetime.date.today().isoformat()
    stem = day
    if a.size_mb != 1024 or a.files != 5000:
        stem += f"-{a.size_mb}MB-{a.files}files"
    if tool_names != ["lifeboat", "restic", "borg", "sqlite3"] or datasets != ["db", "tree"]:
        stem += "-" + "-".join(tool_names + datasets)
    md = os.path.join(a.results_dir, stem + ".md")
    with open(md, "w") as f:
        f.write(report)
    with open(os.path.join(a.results_dir, stem + ".json"), "w") as f:
        json.dump({"meta": meta, "results": [dict(dataset=d, scenario=s, tool=t, **r)
                                             for (d, s, t), r in results.items()],
                   "rounds": [[dict(dataset=d, scenario=s, tool=t, **r) for (d, s, t), r in rr.items()]
                              for rr in all_results]}, f, indent=1)
    log(f"wrote {md} (and .json)")
    failed = [k for k, r in results.items() if "error" in r] + list(init_errors)
    return 1 if failed else 0


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def render(meta, datasets, tools, results):
    L = []
    L.append(f"# Lifeboat vs {', '.join(t for t in tools if t != 'lifeboat')} — {meta['date']}\n")
    rounds = f" BENCH_ROUNDS={meta['rounds']}" if meta["rounds"] > 1 else ""
    L.append(f"- Command: `BENCH_SIZE_MB={meta['size_mb']} BENCH_FILES={meta['files']}{rounds} bench/run.sh`")
    if meta["rounds"] > 1:
        L.append(f"- {meta['rounds']} rounds, each on freshly generated (identical, seeded) data and new "
                 f"repositories; every number below is the median over the rounds")
    L.append(f"- Machine: {meta['machine']}")
    L.append(f"- Lifeboat: {meta['versions'].get('lifeboat', '-')}" + (f" (build: {meta['git']})" if meta['git'] else ""))
    for t in tools:
        if t != "lifeboat":
            L.append(f"- {t}: {meta['versions'][t]}")
    names = {"db": "db (one SQLite file)", "tree": "tree (small files)"}
    for d in datasets:
        L.append(f"- Dataset {names[d]}: {meta['source_mib'][d]} MiB, {meta['file_counts'][d]} file(s)")
    L.append(f"- Settings: Lifeboat defaults; restic defaults (repo v2, compression auto); "
             f"borg `--encryption repokey-blake2 --compression zstd,3`")
    L.append(f"- Order, every step: {' → '.join(tools)}; `sync` before each timed step, no cache drops "
             f"(source data is warm in the page cache for every tool)")
    L.append("- Change between backups: 1% of DB rows updated at random (sqlite3), 1% of files "
             "rewritten in place (random region ≤ 4 KiB) and appended to")
    L.append("- Restore: latest snapshot into an empty directory, then checked file by file (sha256, untimed)")
    loads = [x for r in results.values() for x in r.get("load1_each_round", [r.get("load1_before")])
             if x is not None]
    if loads:
        L.append(f"- 1-minute load average just before the timed steps: {min(loads):.2f} to {max(loads):.2f} "
                 f"on {os.cpu_count()} cores" + (" — **other work was running on this machine: timings are noisy**"
                                                  if max(loads) > 0.5 * (os.cpu_count() or 1) else ""))
    L.append("")

    L.append("| dataset | scenario | tool | seconds | peak MiB | repo MiB | repo growth MiB | CPU s (user+sys) | status |")
    L.append("|---|---|---|---:|---:|---:|---:|---:|---|")
    notes = []
    for d in datasets:
        for s, _ in SCENARIOS:
            for t in tools:
                r = results.get((d, s, t))
                if r is None:
                    L.append(f"| {d} | {s} | {t} | – | – | – | – | – | skipped |")
                    continue
                status = "ok" if "error" not in r else "FAILED"
                if s == "restore" and r.get("verified"):
                    status = "ok, verified" + ("" if r.get("verified_how") == "identical" else " ¹")
                    if r.get("verified_how") != "identical":
                        notes.append(f"¹ {t} {d} restore: {r['verified_how']}.")
                growth = ""
                prev = results.get((d, "backup1", t))
                if s == "backup1":
                    growth = fmt(r.get("repo_mib"), 1)
                elif s == "backup2" and prev and prev.get("repo_mib") is not None:
                    growth = fmt(r["repo_mib"] - prev["repo_mib"], 1)
                L.append(f"| {d} | {s} | {t} | {r['seconds']:.2f} | {r['peak_mib']:.1f} | "
                         f"{fmt(r.get('repo_mib'), 1) if s != 'restore' else ''} | {growth} | "
                         f"{r['user_s'] + r['sys_s']:.1f} | {status} |")
    if notes:
        L.append("")
    L.extend(n + "\n" for n in notes)
    L.append("")

    others = [t for t in tools if t != "lifeboat"]
    if "lifeboat" in tools and others:
        L.append("Ratios (Lifeboat ÷ other; below 1 means Lifeboat is faster / smaller / leaner):\n")
        head = "| dataset | scenario | " + " | ".join(
            f"time ÷ {o} | peak ÷ {o} | repo ÷ {o}" for o in others) + " |"
        L.append(head)
        L.append("|---|---|" + "---:|" * (3 * len(others)))
        for d in datasets:
            for s, _ in SCENARIOS:
                lb = results.get((d, s, "lifeboat"))
                cells = []
                for o in others:
                    r = results.get((d, s, o))
                    ok = lb and r and "error" not in lb and "error" not in r
                    cells.append(fmt(ratio(lb["seconds"], r["seconds"])) if ok else "–")
                    cells.append(fmt(ratio(lb["peak_mib"], r["peak_mib"])) if ok else "–")
                    cells.append(fmt(ratio(lb.get("repo_mib"), r.get("repo_mib"))) if ok and s != "restore" else "")
                L.append(f"| {d} | {s} | " + " | ".join(cells) + " |")
        L.append("")

    if "lifeboat" in tools and "restic" in tools:
        L.append("Goals (against restic):\n")
        L.append("| dataset | goal | target | measured | met |")
        L.append("|---|---|---|---:|---|")
        for d in datasets:
            def get(s, t, k):
                r = results.get((d, s, t))
                if r is None or "error" in r:
                    return None
                if k == "growth_mib":
                    first = results.get((d, "backup1", t)) or {}
                    if first.get("repo_mib") is None or r.get("repo_mib") is None:
                        return None
                    return r["repo_mib"] - first["repo_mib"]
                return r.get(k)

            goals = [("first backup time", "≤ 1/3 of restic", "backup1", "seconds", 1 / 3)]
            goals.append(("restore time", "≤ 1/2 of restic", "restore", "seconds", 0.5))
            goals.append(("repo size after first backup", "≤ restic", "backup1", "repo_mib", 1.0))
            goals.append(("repo size after second backup", "≤ restic", "backup2", "repo_mib", 1.0))
            if d == "db":
                goals.append(("backup time after ~1% of rows changed", "≤ 1/20 of restic",
                              "backup2", "seconds", 1 / 20))
                goals.append(("repo growth after ~1% of rows changed", "≤ 1/5 of restic",
                              "backup2", "growth_mib", 1 / 5))
            for s, label in SCENARIOS:
                goals.append((f"peak memory, {label}", "≤ restic", s, "peak_mib", 1.0))
            for name, target, s, k, limit in goals:
                x = ratio(get(s, "lifeboat", k), get(s, "restic", k))
                met = "–" if x is None else ("yes" if x <= limit + 1e-9 else "**no**")
                L.append(f"| {d} | {name} | {target} | {fmt(x) + '×' if x is not None else '–'} | {met} |")
        L.append("")

    errors = [(k, r["error"]) for k, r in results.items() if "error" in r]
    errors += [((k.split()[1], "init", k.split()[0]), e) for k, e in meta["init_errors"].items()]
    if errors:
        L.append("Failures:\n")
        for (d, s, t), e in errors:
            L.append(f"- {t} {s} {d}: `{e.replace(chr(10), ' / ')[:600]}`")
        L.append("")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
