#!/usr/bin/env python3
"""Lifeboat against pg_dump | zstd, pg_dump + restic and pg_basebackup on a pgbench database
(see bench/README.md).

    postgres.py --lifeboat BIN [--scale 50] [--clients 2] [--second-day-tx 2000]
                [--pg-bin /usr/lib/postgresql/15/bin] [--work DIR] [--keep] [--out FILE.md]

One throwaway PostgreSQL cluster archives its WAL into a Lifeboat repository
(archive_command = lifeboat pg wal-push). On it, in this order:

  1. first day: `lifeboat backup postgres://...` vs `pg_dump | zstd -3` vs
     `pg_dump > dump.sql; restic backup dump.sql` (time, bytes added, peak RSS);
  3. base backup: `lifeboat pg basebackup` vs `pg_basebackup -Ft -z -X fetch -c fast`;
  2. second day: `pgbench -c CLIENTS -t TX`, then the three logical backups again;
  4. point-in-time restore: a target time after the second day, a little more work, the WAL
     archived; `lifeboat pg restore --at T --start` (restore, replay, promote) timed and
     checked against the row count at T, with unpacking the pg_basebackup tar as reference.

The base backups are taken before the second day, like a nightly base backup, so the
point-in-time restore replays the second day's WAL from the archive. Runs as root (the
cluster and every lifeboat command then run as the `postgres` user through runuser) or as
an ordinary user. Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PASSWORD = "bench-passphrase-not-secret"
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def log(msg):
    print(f"[postgres] {msg}", file=sys.stderr, flush=True)


def is_root():
    return os.geteuid() == 0


def as_owner(argv):
    """argv as the cluster's owner: the postgres user when we are root, else ourselves."""
    return ["runuser", "-u", "postgres", "--", *argv] if is_root() else list(argv)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def du_bytes(path):
    out = subprocess.run(["du", "-sb", path], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True)
    except OSError:
        return "n/a"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "n/a"


def chown_owner(path):
    if is_root():
        subprocess.run(["chown", "-R", "postgres:postgres", path], check=True)


class Failed(Exception):
    pass


class Runner:
    """Runs commands with a monotonic wall clock and the peak RSS of the process tree it
    waits for (/usr/bin/time -v; else getrusage(RUSAGE_CHILDREN), the max over every child
    so far)."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.time_file = os.path.join(scratch, "time.out")

    def run(self, argv, *, owner=False, env=None, check=True, what=None):
        """Returns {seconds, stdout, rss_kib}; raises Failed when the command fails."""
        if os.path.exists(self.time_file):
            os.remove(self.time_file)
        full = [TIME, "-v", "-o", self.time_file, *argv] if TIME else list(argv)
        if owner:
            full = as_owner(full)
        t0 = time.monotonic()
        out = subprocess.run(full, cwd=self.scratch, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        rss = None
        if TIME:
            try:
                with open(self.time_file) as f:
                    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
                rss = int(m.group(1)) if m else None
            except OSError:
                pass
        else:
            rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if check and out.returncode != 0:
            name = what or shlex.join(argv[:4])
            raise Failed(f"{name} failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
        return {"seconds": seconds, "stdout": out.stdout, "rss_kib": rss}


class Lifeboat:
    """The lifeboat copy in the scratch directory, run as the cluster's owner with the
    repository, passphrase file and cache given through the environment."""

    def __init__(self, runner, binary, repo, password_file, cache):
        self.runner = runner
        self.binary = binary
        self.repo = repo
        self.password_file = password_file
        self.env = ["env", "-u", "LIFEBOAT_PASSWORD", f"LIFEBOAT_REPO={repo}",
                    f"LIFEBOAT_PASSWORD_FILE={password_file}", f"LIFEBOAT_CACHE_DIR={cache}"]

    def timed(self, *args):
        return self.runner.run([*self.env, self.binary, *args], owner=True,
                               what=f"lifeboat {' '.join(args[:3])}")

    def json(self, *args):
        r = self.timed("--json", *args)
        r["json"] = json.loads(r["stdout"])
        return r

    def archive_command(self):
        return f"{self.binary} --repo {self.repo} --password-file {self.password_file} pg wal-push %p"


def psql(port, sql, db="benchdb"):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                          "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db,
                          "-c", sql], capture_output=True, text=True)
    if out.returncode != 0:
        raise Failed(f"psql -p {port} {sql!r}: {out.stderr.strip()}")
    return out.stdout.strip()


class Cluster:
    def __init__(self, pg_bin, data, port, logfile):
        self.pg_bin, self.data, self.port, self.log = pg_bin, data, port, logfile

    def pg_ctl(self, *args, check=True):
        out = subprocess.run(as_owner([f"{self.pg_bin}/pg_ctl", "-D", self.data, *args]),
                             cwd=os.path.dirname(self.data), capture_output=True, text=True)
        if check and out.returncode != 0:
            raise Failed(f"pg_ctl {' '.join(args)}: {out.stdout.strip()} {out.stderr.strip()}\n"
                         f"{self.log_tail()}")

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.pg_ctl("-m", "fast", "-w", "stop", check=False)

    def log_tail(self, n=20):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def wait_archived(self, timeout):
        """Waits until the archiver has handed every finished WAL file to lifeboat pg wal-push
        (no .ready file left in pg_wal/archive_status); switches no file."""
        status = os.path.join(self.data, "pg_wal", "archive_status")
        deadline = time.monotonic() + timeout
        last_note = time.monotonic()
        while True:
            ready = [f for f in os.listdir(status) if f.endswith(".ready")]
            if not ready:
                return
            if time.monotonic() > deadline:
                raise Failed(f"{len(ready)} WAL files not archived after {timeout}s\n"
                             f"{self.log_tail()}")
            if time.monotonic() - last_note > 30:
                log(f"waiting for the archive: {len(ready)} WAL files to go")
                last_note = time.monotonic()
            time.sleep(0.2)

    def archive_now(self, timeout):
        """Switches WAL files and waits until the archiver has handed the finished one (and
        every one before it) to lifeboat pg wal-push."""
        wal = psql(self.port, "SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + timeout
        last_note = time.monotonic()
        while True:
            done, failed = psql(self.port, "SELECT coalesce(last_archived_wal, ''), failed_count "
                                "FROM pg_stat_archiver").split("|")
            if done >= wal:
                return
            if time.monotonic() > deadline:
                raise Failed(f"WAL {wal} not archived after {timeout}s (archived up to "
                             f"{done or 'nothing'}, {failed} failures)\n{self.log_tail()}")
            if time.monotonic() - last_note > 30:
                log(f"waiting for the archive: {done or 'nothing'} of {wal}, {failed} failures")
                last_note = time.monotonic()
            time.sleep(0.2)


def segment_number(wal_file, segment_size=16 << 20):
    """The position of a WAL file (TTTTTTTTLLLLLLLLSSSSSSSS) in the WAL of its timeline."""
    return int(wal_file[8:16], 16) * (0x100000000 // segment_size) + int(wal_file[16:24], 16)


def cell(text):
    return str(text).replace("|", "\\|")


def mib(b):
    return b / 1048576


def fmt_s(row):
    return f"{row['seconds']:.2f}" if row.get("seconds") is not None else row.get("status", "n/a")


def fmt_bytes(b):
    return "n/a" if b is None else f"{b:,} ({mib(b):.1f} MiB)"


def fmt_rss(kib):
    return "n/a" if kib is None else f"{kib / 1024:.0f}"


def ratio(lb, other):
    if lb is None or other is None or other == 0:
        return "n/a"
    return f"{lb / other:.2f}"


class Bench:
    def __init__(self, a, scratch):
        self.a = a
        self.scratch = scratch
        self.runner = Runner(scratch)
        self.clusters = []
        self.facts = {}
        self.results = {}
        self.have = {"zstd": shutil.which("zstd") is not None,
                     "restic": shutil.which("restic") is not None}
        self.dumps = os.path.join(scratch, "dumps")
        self.restic_env = dict(os.environ, RESTIC_REPOSITORY=os.path.join(scratch, "restic-repo"),
                               RESTIC_PASSWORD=PASSWORD,
                               RESTIC_CACHE_DIR=os.path.join(scratch, "restic-cache"))

    def path(self, name):
        return os.path.join(self.scratch, name)

    def conn(self, port=None):
        return ["-h", "127.0.0.1", "-p", str(port or self.primary.port), "-U", "postgres"]

    def settle(self):
        """Untimed, before every timed step: the archiver has caught up, dirty pages are written."""
        self.primary.wait_archived(self.a.archive_timeout)
        subprocess.run(["sync"], check=True)

    # --- setup -----------------------------------------------------------------------------

    def setup(self):
        a = self.a
        binary = self.path("lifeboat")
        shutil.copyfile(a.lifeboat, binary)
        os.chmod(binary, 0o755)
        password_file = self.path("passphrase")
        with open(password_file, "w") as f:
            f.write(PASSWORD + "\n")
        for d in ("lifeboat-cache", "dumps"):
            os.makedirs(self.path(d))
        chown_owner(self.scratch)
        os.chmod(password_file, 0o600)
        self.lb = Lifeboat(self.runner, binary, self.path("lifeboat-repo"), password_file,
                           self.path("lifeboat-cache"))
        self.lb.timed("init")  # default key derivation settings, as a user would have

        data = self.path("primary")
        out = subprocess.run(as_owner([f"{a.pg_bin}/initdb", "-D", data, "-U", "postgres",
                                       "--auth=trust", "-E", "UTF8"]),
                             cwd=self.scratch, capture_output=True, text=True)
        if out.returncode != 0:
            raise Failed(f"initdb: {out.stderr.strip()}")
        self.primary = Cluster(a.pg_bin, data, free_port(), self.path("primary.log"))
        command = self.lb.archive_command().replace("'", "''")
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write(f"\n# lifeboat bench/postgres.py\nport = {self.primary.port}\n"
                    f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{data}'\n"
                    f"archive_mode = on\narchive_command = '{command}'\nmax_wal_size = 1GB\n")
        self.clusters.append(self.primary)
        # The server's children (archive_command) keep their lifeboat cache in the scratch
        # directory too, not in the postgres user's home.
        out = subprocess.run(as_owner(["env", f"LIFEBOAT_CACHE_DIR={self.path('lifeboat-cache')}",
                                       f"{a.pg_bin}/pg_ctl", "-D", data, "-l", self.primary.log,
                                       "-w", "start"]),
                             cwd=self.scratch, capture_output=True, text=True)
        if out.returncode != 0:
            raise Failed(f"pg_ctl start: {out.stderr.strip()}\n{self.primary.log_tail()}")
        psql(self.primary.port, "CREATE DATABASE benchdb", db="postgres")
        self.url = f"postgres://postgres@127.0.0.1:{self.primary.port}/benchdb"
        log(f"cluster on port {self.primary.port}; pgbench -i -s {a.scale}")
        r = self.runner.run(["pgbench", *self.conn(), "-i", "-s", str(a.scale), "-q", "benchdb"],
                            what="pgbench -i")
        self.facts["init_seconds"] = r["seconds"]
        psql(self.primary.port, "CHECKPOINT")
        log("waiting until the WAL of the initial load is archived")
        self.primary.archive_now(self.a.archive_timeout)
        self.settle()
        self.facts["db_bytes"] = int(psql(self.primary.port,
                                          "SELECT pg_database_size('benchdb')"))
        self.facts["cluster_bytes"] = du_bytes(os.path.join(data, "base"))
        if self.have["restic"]:
            out = subprocess.run(["restic", "init", "--repository-version", "2"],
                                 env=self.restic_env, capture_output=True, text=True)
            if out.returncode != 0:
                log(f"restic init failed, restic is left out: {out.stderr.strip()}")
                self.have["restic"] = False

    # --- parts -----------------------------------------------------------------------------

    def logical(self, day):
        rows = []
        log(f"{day}: lifeboat backup")
        self.settle()
        r = self.lb.json("backup", self.url)
        s = r["json"]["summary"]
        rows.append({"tool": "lifeboat backup postgres://", "seconds": r["seconds"],
                     "bytes": s["stored_bytes"], "rss_kib": r["rss_kib"],
                     "note": f"dump {mib(s['total_bytes']):.1f} MiB, new {mib(s['new_bytes']):.1f} MiB "
                             f"before compression"})

        zst = os.path.join(self.dumps, f"{day}.sql.zst")
        if self.have["zstd"]:
            log(f"{day}: pg_dump | zstd -3")
            self.settle()
            cmd = (f"pg_dump {shlex.join(self.conn())} benchdb | zstd -3 -q -c > "
                   f"{shlex.quote(zst)}")
            try:
                r = self.runner.run(["bash", "-o", "pipefail", "-c", cmd], what="pg_dump | zstd")
                rows.append({"tool": "pg_dump | zstd -3", "seconds": r["seconds"],
                             "bytes": os.path.getsize(zst), "rss_kib": r["rss_kib"],
                             "note": "a whole new file every time"})
            except Failed as e:
                log(str(e))
                rows.append({"tool": "pg_dump | zstd -3", "status": "failed"})
        else:
            rows.append({"tool": "pg_dump | zstd -3", "status": "n/a (no zstd)"})

        if self.have["restic"]:
            log(f"{day}: pg_dump > dump.sql; restic backup dump.sql")
            dump = os.path.join(self.dumps, "dump.sql")
            self.settle()
            try:
                d = self.runner.run(["pg_dump", *self.conn(), "-f", dump, "benchdb"],
                                    what="pg_dump")
                self.facts[f"{day}_plain_dump_bytes"] = os.path.getsize(dump)
                subprocess.run(["sync"], check=True)
                repo = self.restic_env["RESTIC_REPOSITORY"]
                before = du_bytes(repo)
                r = self.runner.run(["restic", "backup", "--quiet", dump], env=self.restic_env,
                                    what="restic backup")
                rss = max(x for x in (d["rss_kib"], r["rss_kib"], 0) if x is not None) or None
                rows.append({"tool": "pg_dump > dump.sql; restic backup", "seconds":
                             d["seconds"] + r["seconds"], "bytes": du_bytes(repo) - before,
                             "rss_kib": rss,
                             "note": f"pg_dump {d['seconds']:.2f} s + restic {r['seconds']:.2f} s; "
                                     f"needs a {mib(os.path.getsize(dump)):.0f} MiB scratch file"})
            except Failed as e:
                log(str(e))
                rows.append({"tool": "pg_dump > dump.sql; restic backup", "status": "failed"})
        else:
            rows.append({"tool": "pg_dump > dump.sql; restic backup", "status": "n/a (no restic)"})
        self.results[day] = rows

    def base_backups(self):
        rows = []
        log("base backup: lifeboat pg basebackup")
        self.settle()
        r = self.lb.json("pg", "basebackup", self.url)
        s = r["json"]["summary"]
        self.facts["base_end_lsn"] = r["json"]["base_backup"]["end_lsn"]
        self.facts["wal_archive_bytes_after_base"] = du_bytes(os.path.join(self.lb.repo, "wal"))
        rows.append({"tool": "lifeboat pg basebackup", "seconds": r["seconds"],
                     "bytes": s["stored_bytes"], "rss_kib": r["rss_kib"],
                     "note": f"cluster {mib(s['total_bytes']):.1f} MiB; waits until the WAL to its "
                             f"end is archived; the WAL archive is not counted"})
        log("base backup: pg_basebackup -Ft -z -X fetch -c fast")
        self.settle()
        self.pgbb = self.path("pg_basebackup")
        r = self.runner.run(["pg_basebackup", *self.conn(), "-D", self.pgbb, "-Ft", "-z",
                             "-X", "fetch", "-c", "fast"], what="pg_basebackup")
        rows.append({"tool": "pg_basebackup -Ft -z -X fetch", "seconds": r["seconds"],
                     "bytes": du_bytes(self.pgbb), "rss_kib": r["rss_kib"],
                     "note": "gzip tar with the WAL to its end inside; `-c fast` like lifeboat"})
        self.results["base"] = rows

    def second_day(self):
        a = self.a
        log(f"second day: pgbench -c {a.clients} -t {a.second_day_tx}")
        self.settle()
        r = self.runner.run(["pgbench", *self.conn(), "-c", str(a.clients), "-t",
                             str(a.second_day_tx), "benchdb"], what="pgbench")
        m = re.search(r"tps = ([\d.]+)", r["stdout"])
        self.facts["second_day_seconds"] = r["seconds"]
        self.facts["second_day_tps"] = float(m.group(1)) if m else None

    def pitr(self):
        a = self.a
        port = self.primary.port
        time.sleep(1.1)
        target = psql(port, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        count_at_target = psql(port, "SELECT count(*) FROM pgbench_history")
        target_lsn = psql(port, "SELECT pg_current_wal_lsn()")
        time.sleep(1.1)
        self.runner.run(["pgbench", *self.conn(), "-n", "-t", "200", "benchdb"],
                        what="pgbench (after the target)")
        self.facts["pitr_target"] = target
        self.facts["history_rows_at_target"] = int(count_at_target)
        self.facts["history_rows_final"] = int(psql(port, "SELECT count(*) FROM pgbench_history"))
        self.facts["replay_wal_bytes"] = int(float(psql(
            port, f"SELECT pg_wal_lsn_diff('{target_lsn}', '{self.facts['base_end_lsn']}')")))
        first, last = psql(port, f"SELECT pg_walfile_name('{self.facts['base_end_lsn']}'), "
                                 f"pg_walfile_name('{target_lsn}')").split("|")
        self.facts["replay_wal_files"] = segment_number(last) - segment_number(first) + 1
        rows = []

        log(f"point-in-time restore to {target}: lifeboat pg restore --start")
        self.primary.archive_now(self.a.archive_timeout)  # the WAL past T is in the archive
        self.settle()
        self.facts["wal_archive_bytes"] = du_bytes(os.path.join(self.lb.repo, "wal"))
        target_dir = self.path("restore-lifeboat")
        rport = free_port()
        restored = Cluster(a.pg_bin, target_dir, rport,
                           os.path.join(target_dir, "lifeboat-recovery.log"))
        self.clusters.append(restored)
        r = self.lb.json("pg", "restore", "--at", target, "--target-dir", target_dir,
                         "--start", "--port", str(rport))
        returned = time.monotonic()
        in_recovery = psql(rport, "SELECT pg_is_in_recovery()")
        late = None
        if in_recovery != "f":
            while in_recovery != "f" and time.monotonic() - returned < 60:
                time.sleep(0.05)
                in_recovery = psql(rport, "SELECT pg_is_in_recovery()")
            late = time.monotonic() - returned
        got = psql(rport, "SELECT count(*) FROM pgbench_history")
        ok = got == count_at_target and in_recovery == "f"
        self.facts["pitr_verified"] = ok
        self.facts["pitr_rows_restored"] = int(got)
        self.facts["pitr_still_in_recovery_on_return_s"] = late
        check = f"{got} history rows at T, expected {count_at_target}: " + \
            ("ok" if ok else "**MISMATCH**")
        if late is not None:
            check += (f"; **pg_is_in_recovery() was still true when lifeboat returned** "
                      f"(false {late:.2f} s later)" if in_recovery == "f" else
                      "; **still in recovery 60 s after lifeboat returned**")
        restored.stop()
        shutil.rmtree(target_dir, ignore_errors=True)
        rows.append({"tool": "lifeboat pg restore --at T --start", "seconds": r["seconds"],
                     "rss_kib": r["rss_kib"],
                     "includes": f"base backup out of the repository "
                                 f"({r['json']['restored_seconds']:.2f} s), recovery settings, "
                                 f"server start, {self.facts['replay_wal_files']} archived WAL "
                                 f"files fetched and replayed to T, promotion",
                     "check": check})

        log("reference: tar -xzf of the pg_basebackup tar")
        tar_dir = self.path("restore-tar")
        os.makedirs(tar_dir)
        subprocess.run(["sync"], check=True)
        t = self.runner.run(["tar", "-xzf", os.path.join(self.pgbb, "base.tar.gz"),
                             "-C", tar_dir], what="tar -xzf")
        rows.append({"tool": "tar -xzf base.tar.gz", "seconds": t["seconds"],
                     "rss_kib": t["rss_kib"],
                     "includes": "unpacking only: no server, no WAL replay; only the "
                                 "base backup's end can be reached",
                     "check": ""})
        chown_owner(tar_dir)
        os.chmod(tar_dir, 0o700)
        tport = free_port()
        tar_cluster = Cluster(a.pg_bin, tar_dir, tport, self.path("restore-tar.log"))
        self.clusters.append(tar_cluster)
        t0 = time.monotonic()
        # archive_mode off: this copy must not push WAL into the primary's archive.
        tar_cluster.pg_ctl("-l", tar_cluster.log, "-w", "-o",
                           f"-p {tport} -c listen_addresses=127.0.0.1 "
                           f"-c unix_socket_directories={tar_dir} -c archive_mode=off", "start")
        started = time.monotonic() - t0
        got_tar = psql(tport, "SELECT count(*) FROM pgbench_history")
        tar_cluster.stop()
        shutil.rmtree(tar_dir, ignore_errors=True)
        rows.append({"tool": "tar -xzf + pg_ctl start -w", "seconds": t["seconds"] + started,
                     "rss_kib": None,
                     "includes": f"unpacking + crash recovery from the WAL in the tar "
                                 f"(pg_ctl {started:.2f} s); the state at the base backup's end, "
                                 f"not T",
                     "check": f"{got_tar} history rows (the base backup's)"})
        self.results["pitr"] = rows

    def cleanup(self):
        for c in reversed(self.clusters):
            try:
                c.stop()
            except Exception as e:  # noqa: BLE001 - best effort
                log(f"stopping {c.data}: {e}")


def table(rows, lb_row, bytes_label="bytes added"):
    lines = [f"| tool | seconds | {bytes_label} | peak RSS MiB | time: lifeboat ÷ this | "
             f"size: lifeboat ÷ this | notes |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {cell(r['tool'])} | {fmt_s(r)} | {fmt_bytes(r.get('bytes'))} | "
                     f"{fmt_rss(r.get('rss_kib'))} | {ratio(lb_row.get('seconds'), r.get('seconds'))} | "
                     f"{ratio(lb_row.get('bytes'), r.get('bytes'))} | {cell(r.get('note', ''))} |")
    return lines


def report(a, bench, versions, started):
    f = bench.facts
    res = bench.results
    L = [f"# PostgreSQL: Lifeboat against pg_dump | zstd, pg_dump + restic and pg_basebackup — "
         f"{started:%Y-%m-%d %H:%M} UTC\n",
         f"- Command: `{shlex.join(sys.argv)}`",
         f"- Machine: {os.cpu_count()} cores ({versions['cpu']}), {versions['mem']}, "
         f"kernel {platform.release()}; scratch directory under {a.work or '/tmp'}",
         f"- Versions: {versions['lifeboat']}; {versions['postgres']}; {versions['pg_dump']}; "
         f"{versions['restic']}; {versions['zstd']}",
         f"- Data: pgbench scale {a.scale} (`pgbench -i` {f['init_seconds']:.1f} s; database "
         f"{mib(f['db_bytes']):.0f} MiB; plain dump {mib(f.get('day1_plain_dump_bytes') or 0):.0f} MiB)"
         if f.get("day1_plain_dump_bytes") else
         f"- Data: pgbench scale {a.scale} (`pgbench -i` {f['init_seconds']:.1f} s; database "
         f"{mib(f['db_bytes']):.0f} MiB)",
         f"- Second day: `pgbench -c {a.clients} -t {a.second_day_tx}` "
         f"({a.clients * a.second_day_tx} transactions, {f['second_day_seconds']:.1f} s"
         + (f", {f['second_day_tps']:.0f} tps)" if f.get("second_day_tps") else ")"),
         "- Settings: Lifeboat repository made by `lifeboat init` (default key derivation), local; "
         "the cluster archives into it (`archive_command = lifeboat pg wal-push %p`); "
         "restic repository format 2 (compression auto); zstd level 3, one thread",
         "- Order: setup → 1 (lifeboat → zstd → restic) → 3 (lifeboat → pg_basebackup) → second day "
         "→ 2 (lifeboat → zstd → restic) → 4; before each timed step the WAL archive catches up "
         "and `sync` runs (untimed); no caches dropped",
         f"- Peak RSS: {'/usr/bin/time -v' if TIME else 'getrusage(RUSAGE_CHILDREN), max so far'} "
         "around the command, so it is the largest process of its tree (lifeboat's includes the "
         "pg_dump / pg_basebackup it runs)",
         "- Ratios are Lifeboat ÷ other: below 1 means Lifeboat is faster or smaller",
         "",
         "## 1. Logical backup, first day\n"]
    L += table(res["day1"], res["day1"][0])
    L += ["", "## 2. Second day: backup after `pgbench`\n",
          "Bytes added by the second backup (for zstd: the second dump file, all new by nature).\n"]
    L += table(res["day2"], res["day2"][0])
    L += ["", "## 3. Base backup\n"]
    L += table(res["base"], res["base"][0], "bytes")
    L += ["",
          f"Lifeboat's WAL archive held {mib(f['wal_archive_bytes_after_base']):.1f} MiB after the "
          f"base backup (everything since initdb, including the initial load) and "
          f"{mib(f['wal_archive_bytes'] or 0):.1f} MiB before the restore; pg_basebackup keeps no "
          "WAL beyond its tar, so it cannot go to a later point in time.",
          "", "## 4. Point-in-time restore\n",
          f"Target T = {f['pitr_target']}, after the second day; 200 more transactions followed, "
          f"then the WAL was switched and archived. From the base backup's end to T: "
          f"{f['replay_wal_files']} WAL files, {mib(f['replay_wal_bytes']):.1f} MiB of WAL positions "
          f"(a file ended early by a WAL switch counts whole).\n",
          "| method | seconds | peak RSS MiB | lifeboat ÷ this | includes | check |",
          "|---|---:|---:|---:|---|---|"]
    lb = res["pitr"][0]
    for r in res["pitr"]:
        L.append(f"| {cell(r['tool'])} | {fmt_s(r)} | {fmt_rss(r.get('rss_kib'))} | "
                 f"{ratio(lb['seconds'], r['seconds'])} | {cell(r['includes'])} | "
                 f"{cell(r['check'])} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lifeboat", required=True, help="the lifeboat binary (copied to scratch)")
    ap.add_argument("--scale", type=int, default=50, help="pgbench scale (50: ~750 MiB)")
    ap.add_argument("--clients", type=int, default=2, help="pgbench -c on the second day")
    ap.add_argument("--second-day-tx", type=int, default=2000,
                    help="pgbench -t (per client) on the second day")
    ap.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
    ap.add_argument("--archive-timeout", type=int, default=1800,
                    help="seconds to wait for the WAL archive to catch up")
    ap.add_argument("--work", default=None, help="parent of the scratch directory (default /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--out", default=None, help="also write the Markdown report here")
    a = ap.parse_args()
    a.lifeboat = os.path.abspath(a.lifeboat)
    for tool in ("pgbench", "pg_dump", "psql", "pg_basebackup", "tar", "du"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    if not os.access(f"{a.pg_bin}/initdb", os.X_OK):
        raise SystemExit(f"{a.pg_bin}/initdb not found (--pg-bin)")
    if is_root() and shutil.which("runuser") is None:
        raise SystemExit("running as root needs runuser to run PostgreSQL as postgres")

    started = datetime.datetime.now(datetime.timezone.utc)
    scratch = tempfile.mkdtemp(prefix="lifeboat-pg-bench-", dir=a.work or "/tmp")
    os.chmod(scratch, 0o755)
    bench = Bench(a, scratch)
    log(f"scratch directory {scratch}")
    failed = False
    try:
        bench.setup()
        bench.logical("day1")
        bench.base_backups()
        bench.second_day()
        bench.logical("day2")
        bench.pitr()
    except (Failed, subprocess.CalledProcessError, KeyError, ValueError) as e:
        failed = True
        log(f"FAILED: {e}")
        logs = f"/tmp/lifeboat-pg-bench-logs.{int(time.time())}"
        os.makedirs(logs, exist_ok=True)
        for c in bench.clusters:
            if os.path.exists(c.log):
                shutil.copy(c.log, os.path.join(logs, os.path.basename(c.data) + ".log"))
        log(f"server logs kept in {logs}")
    finally:
        bench.cleanup()
        if a.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if failed:
        raise SystemExit(1)

    def meminfo():
        try:
            with open("/proc/meminfo") as fh:
                kib = int(fh.readline().split()[1])
            return f"{kib / 1048576:.0f} GiB RAM"
        except (OSError, ValueError, IndexError):
            return "RAM n/a"

    def cpu():
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.machine()

    versions = {
        "lifeboat": first_line([a.lifeboat, "--version"]),
        "postgres": first_line([f"{a.pg_bin}/postgres", "--version"]),
        "pg_dump": first_line(["pg_dump", "--version"]),
        "restic": first_line(["restic", "version"]).split(" compiled")[0] if bench.have["restic"]
        else "restic n/a",
        "zstd": first_line(["zstd", "--version"]).strip("* ") if bench.have["zstd"] else "zstd n/a",
        "cpu": cpu(), "mem": meminfo(),
    }
    text = report(a, bench, versions, started)
    print(text)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)
    print(json.dumps({"facts": bench.facts, "results": bench.results, "versions": versions}),
          file=sys.stderr)


if __name__ == "__main__":
    main()
