#!/usr/bin/env bash
# The main job on the embedded default: an app's SQLite database and uploads folder,
# backed up to a local encrypted repository, then a disaster, then the restore.
# Usage: scripts/demo.sh   (builds lifeboat in release mode; leaves its files in $DEMO_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
# Cargo's own progress shows: the first release build takes a while (about 6 minutes on
# two cores), later ones seconds.
echo "== building lifeboat (release) in $target_dir"
cargo build --release --bin lifeboat
lifeboat() { "$target_dir/release/lifeboat" "$@"; }

DEMO_DIR="${DEMO_DIR:-$(mktemp -d /tmp/lifeboat-demo.XXXXXX)}"
app="$DEMO_DIR/app"
mkdir -p "$app/uploads"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "An app: a SQLite database (customers, orders) and an uploads folder in $app"
python3 - "$app/app.db" <<'PY'
import random, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
PRAGMA journal_mode=WAL;
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                    total_cents INTEGER NOT NULL, note TEXT);
""")
rng = random.Random(1)
db.executemany("INSERT INTO customers VALUES (?,?,?)",
               ((i, f"Customer {i}", f"c{i}@example.com") for i in range(1, 20001)))
db.executemany("INSERT INTO orders VALUES (?,?,?,?)",
               ((i, rng.randint(1, 20000), rng.randint(100, 99999), "note " * rng.randint(1, 20))
                for i in range(1, 200001)))
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
for i in $(seq 1 20); do head -c $((RANDOM * 8)) /dev/urandom > "$app/uploads/photo-$i.jpg"; done
du -sh "$app/app.db" "$app/uploads"

export LIFEBOAT_REPO="$DEMO_DIR/repo"
# A demo passphrase in the environment; in production use LIFEBOAT_PASSWORD_FILE or the prompt.
export LIFEBOAT_PASSWORD="demo passphrase, keep yours somewhere safe"

say "lifeboat init"
lifeboat init

say "lifeboat backup (first: everything is new)"
lifeboat backup "$app"

say "The app keeps working: 1% of orders change, one upload is added"
python3 - "$app/app.db" <<'PY'
import random, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rng = random.Random(2)
ids = rng.sample(range(1, 200001), 2000)
db.executemany("UPDATE orders SET total_cents = total_cents + 1 WHERE id = ?", ((i,) for i in ids))
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
head -c 50000 /dev/urandom > "$app/uploads/new-photo.jpg"

say "lifeboat backup (second: only what changed is stored)"
lifeboat backup "$app" --tag nightly

say "lifeboat snapshots"
lifeboat snapshots

say "Disaster: the database file is overwritten in the middle"
python3 - "$app/app.db" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(os.path.getsize(sys.argv[1]) // 2)
    f.write(os.urandom(1 << 20))
PY
sqlite3 "$app/app.db" "PRAGMA integrity_check" 2>&1 | head -3 || true

say "lifeboat restore latest"
lifeboat restore latest --target "$DEMO_DIR/restored"
restored="$DEMO_DIR/restored/app/app.db"
echo "integrity_check: $(sqlite3 "$restored" 'PRAGMA integrity_check')"
echo "orders: $(sqlite3 "$restored" 'SELECT count(*) FROM orders'), customers: $(sqlite3 "$restored" 'SELECT count(*) FROM customers')"

say "lifeboat verify --read-data (every byte of the repository)"
lifeboat verify --read-data

say "Damage in the repository is found and named: flip one byte of a pack in a copy"
cp -r "$DEMO_DIR/repo" "$DEMO_DIR/repo-damaged"
pack=$(find "$DEMO_DIR/repo-damaged/data" -type f | head -1)
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//3]^=1; open(p,'wb').write(b)" "$pack"
LIFEBOAT_REPO="$DEMO_DIR/repo-damaged" lifeboat verify --read-data && exit 1 || echo "(exit code $? : damage found, as it should be)"

say "Done. Everything is in $DEMO_DIR"
