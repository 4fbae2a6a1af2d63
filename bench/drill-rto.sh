#!/usr/bin/env bash
# Measured RTO of restore drills: the example Express app's SQLite database after a load
# run, a pgbench database on the machine's PostgreSQL (127.0.0.1:5432, user postgres) as a
# logical dump, and pgbench in a throwaway PostgreSQL 15 cluster as a physical base backup
# plus archived WAL (recovered by the drill in another throwaway cluster).
#
#   bench/drill-rto.sh [path/to/lifeboat] [pgbench scale, default 10] [load seconds, default 20]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${1:-$ROOT/target/release/lifeboat}")
SCALE=${2:-10}
LOAD_S=${3:-20}
WORK=$(mktemp -d)
DB=lb_bench_pgbench_$$
PG=postgres://postgres@127.0.0.1:5432
PGBIN=/usr/lib/postgresql/15/bin
PHYS=$WORK/physical
# PostgreSQL refuses to run as root: its clusters (and the lifeboat that drives them) run
# as the postgres user then.
if [[ $(id -u) -eq 0 ]]; then AS=(runuser -u postgres --); else AS=(); fi
cleanup() {
  if [[ -f $PHYS/pgdata/postmaster.pid ]]; then
    "${AS[@]}" "$PGBIN/pg_ctl" -D "$PHYS/pgdata" -m immediate stop >/dev/null 2>&1 || true
  fi
  kill "${APP:-}" 2>/dev/null || true
  psql -X -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export LIFEBOAT_PASSWORD=bench-passphrase LIFEBOAT_CACHE_DIR=$WORK/cache LIFEBOAT_REPO=$WORK/repo
"$BIN" init -q
rto() { python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.2fs" % r["rto_seconds"], "passed" if r["passed"] else "FAILED: %s" % r["reason"])'; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/data"
DATABASE_PATH=$WORK/data/app.db PORT=$PORT node "$ROOT/examples/express-crud/server.js" >/dev/null 2>&1 &
APP=$!
sleep 1
node "$ROOT/examples/express-crud/load.js" --url "http://127.0.0.1:$PORT" --concurrency 8 \
  --duration-ms $((LOAD_S * 1000)) --ack-log "$WORK/acks.jsonl" >/dev/null
kill "$APP"; wait "$APP" 2>/dev/null || true
SIZE=$(du -h "$WORK/data/app.db" | cut -f1)
ROWS=$(python3 -c "import sqlite3; c=sqlite3.connect('$WORK/data/app.db'); print(sum(c.execute(f'select count(*) from {t}').fetchone()[0] for (t,) in c.execute(\"select name from sqlite_master where type='table' and name not like 'sqlite_%'\")))")
"$BIN" backup -q "$WORK/data/app.db"
echo "example app SQLite ($SIZE, $ROWS rows):"
for i in 1 2 3; do echo -n "  drill $i: "; "$BIN" drill "$WORK/data/app.db" --json --config /nonexistent | rto; done

psql -X -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
pgbench -q -i -s "$SCALE" "$PG/$DB" >/dev/null 2>&1
PGSIZE=$(psql -X -At "$PG/$DB" -c "select pg_size_pretty(pg_database_size(current_database()))")
"$BIN" backup -q "$PG/$DB"
echo "pgbench scale $SCALE ($PGSIZE, $((SCALE * 100000)) accounts), logical dump restored into a scratch database:"
for i in 1 2 3; do echo -n "  drill $i: "; "$BIN" drill "$PG/$DB" --json --config /nonexistent | rto; done

# Physical: pgbench in a throwaway cluster that archives its WAL into a repository, one
# base backup, ten seconds of pgbench after it (WAL the drill must replay), then drills.
mkdir -p "$PHYS/tmp"
cp "$BIN" "$PHYS/lifeboat"
echo bench-passphrase > "$PHYS/pass"
chmod 755 "$WORK"
chmod 600 "$PHYS/pass"
if [[ $(id -u) -eq 0 ]]; then chown -R postgres:postgres "$PHYS"; fi
L=("${AS[@]}" env -u LIFEBOAT_PASSWORD LIFEBOAT_REPO="$PHYS/repo" LIFEBOAT_PASSWORD_FILE="$PHYS/pass"
  LIFEBOAT_CACHE_DIR="$PHYS/cache" TMPDIR="$PHYS/tmp" "$PHYS/lifeboat")
"${L[@]}" init -q
"${AS[@]}" "$PGBIN/initdb" -D "$PHYS/pgdata" -U postgres --auth=trust -E UTF8 >/dev/null
PPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  echo "port = $PPORT"
  echo "listen_addresses = '127.0.0.1'"
  echo "unix_socket_directories = '$PHYS'"
  echo "archive_mode = on"
  echo "archive_command = '$PHYS/lifeboat --repo $PHYS/repo --password-file $PHYS/pass pg wal-push %p'"
  echo "max_wal_size = 1GB"
} >> "$PHYS/pgdata/postgresql.conf"
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PHYS/pgdata" -l "$PHYS/pg.log" -w start >/dev/null
PURL=postgres://postgres@127.0.0.1:$PPORT/postgres
pgbench -q -i -s "$SCALE" "$PURL" >/dev/null 2>&1
"${L[@]}" pg basebackup -q "$PURL"
pgbench -T 10 -c 2 "$PURL" >/dev/null 2>&1
LAST=$(psql -X -At "$PURL" -c "select pg_walfile_name(pg_switch_wal())")
archived() { psql -X -At "$PURL" -c "select coalesce(last_archived_wal, '') >= '$LAST' from pg_stat_archiver"; }
for _ in $(seq 300); do [[ $(archived) == t ]] && break; sleep 0.2; done
WAL_MB=$(du -sm "$PHYS/repo/wal" 2>/dev/null | cut -f1 || true)
echo "pgbench scale $SCALE in a throwaway cluster: base backup, then 10 s of pgbench replayed from the archive (${WAL_MB} MiB of archived WAL); recovered, promoted and queried in a throwaway cluster:"
for i in 1 2 3; do echo -n "  drill $i: "; "${L[@]}" drill "$PURL" --physical --json --config /nonexistent | rto; done
