#!/usr/bin/env bash
# Chunk-size measurement behind the repository's default chunker parameters: a SQLite
# database and its SQL dump, before and after 1% of rows change at random.
# Usage: bench/chunk-sizes.sh [ROWS]   (default 400000 rows, about 100 MiB of database)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-400000}"
work="$(mktemp -d /tmp/lifeboat-chunks.XXXXXX)"
trap 'rm -rf "$work"' EXIT
python3 - "$work" "$rows" <<'PY'
import random, sqlite3, sys, shutil
work, rows = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
db = sqlite3.connect(f"{work}/before.db")
db.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, status TEXT, total INTEGER, note TEXT)")
words = "alpha beta gamma delta shipped pending refunded express standard gift wrap".split()
db.executemany("INSERT INTO orders VALUES (?,?,?,?,?)",
    ((i, rng.randint(1, 50000), rng.choice(words), rng.randint(100, 100000),
      " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))) for i in range(1, rows + 1)))
db.commit(); db.close()
shutil.copy(f"{work}/before.db", f"{work}/after.db")
db = sqlite3.connect(f"{work}/after.db")
for i in rng.sample(range(1, rows + 1), rows // 100):
    db.execute("UPDATE orders SET status = ?, total = total + 1 WHERE id = ?", (rng.choice(words), i))
db.commit(); db.close()
PY
sqlite3 "$work/before.db" .dump > "$work/before.sql"
sqlite3 "$work/after.db" .dump > "$work/after.sql"
ls -la "$work"
cargo run --release -q -p lifeboat-repo --example chunk_sizes -- \
  "$work/before.db" "$work/after.db" "$work/before.sql" "$work/after.sql"
