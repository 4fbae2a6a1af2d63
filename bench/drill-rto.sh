#!/usr/bin/env bash
# Measured RTO of restore drills: the example Express app's SQLite database after a load
# run, and a pgbench database on the machine's PostgreSQL (127.0.0.1:5432, user postgres).
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
cleanup() {
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
