#!/usr/bin/env python3
"""Benchmark data for bench/run.sh: a real SQLite database and a tree of small files.

    datagen.py create --dir DATA --size-mb 1024 --files 5000 [--seed 1]
    datagen.py mutate --dir DATA [--percent 1] [--seed 2]
    datagen.py manifest --dir DATA/db          # JSON {relpath: sha256} on stdout

Layout under DATA:
    db/app.db        a SQLite database (rollback journal, 4 KiB pages) with an `orders`-like
                     table: ints, short text, a prose-like body and a semi-random blob per row,
                     plus two secondary indexes. Roughly 2:1 compressible overall.
    uploads/         FILES small files (1-64 KiB) in nested year/month/user dirs: ~40% look like
                     images (incompressible), the rest like JSON/text/CSV documents.

Everything is derived from --seed, so two runs with the same arguments make the same data.
Standard library only.
"""

import argparse
import hashlib
import json
import os
import random
import sqlite3
import sys
import time

WORDS = (
    "order customer invoice payment shipping address product quantity price total "
    "discount coupon status pending paid shipped delivered refunded cancelled note "
    "warehouse stock supplier tracking carrier express standard priority gift wrap "
    "review rating comment reply support ticket agent escalated resolved account "
    "email phone street city country postal region tax currency euro dollar pound "
    "the a of and to in is for on with as by at from this that be are was it or an "
    "please thanks hello regards delay damaged return exchange size color small large "
    "medium blue red green black white package box envelope label printed scanned"
).split()

STATUSES = ["pending", "paid", "shipped", "delivered", "refunded", "cancelled"]


def log(msg):
    print(f"[datagen] {msg}", file=sys.stderr, flush=True)


def sentence_pool(rng, n=20000):
    """A pool of prose-like sentences; bodies are random picks from it (fast, compressible)."""
    pool = []
    for _ in range(n):
        words = rng.choices(WORDS, k=rng.randint(6, 18))
        words[0] = words[0].capitalize()
        pool.append(" ".join(words) + rng.choice([".", ".", ".", "!", "?"]))
    return pool


class RowMaker:
    def __init__(self, rng):
        self.rng = rng
        self.pool = sentence_pool(rng)
        self.t0 = 1_600_000_000

    def body(self):
        rng = self.rng
        return " ".join(rng.choices(self.pool, k=rng.randint(4, 12)))

    def blob(self):
        # Half random bytes (hashes, tokens, encrypted fields), half structured text.
        rng = self.rng
        random_part = rng.randbytes(rng.randint(128, 384))
        meta = json.dumps(
            {
                "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                "ua": rng.choice(["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (iPhone)",
                                  "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "curl/8.5.0"]),
                "items": [{"sku": f"SKU-{rng.randrange(100000):05d}", "qty": rng.randint(1, 9),
                           "price": rng.randint(100, 99999)} for _ in range(rng.randint(1, 6))],
            },
            separators=(",", ":"),
        ).encode()
        return random_part + meta

    def row(self, i):
        rng = self.rng
        return (
            i,
            rng.randrange(1, 200_000),
            self.t0 + i * 7 + rng.randrange(7),
            self.t0 + i * 7 + rng.randrange(86400),
            rng.choice(STATUSES),
            rng.randint(100, 500_000),
            " ".join(rng.choices(WORDS, k=rng.randint(2, 6))).title(),
            self.body(),
            self.blob(),
        )


def create_db(path, size_mb, rng):
    target = size_mb * 1024 * 1024
    if os.path.exists(path):
        os.remove(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=4096")
    con.execute("PRAGMA journal_mode=OFF")  # only while building; set back to DELETE below
    con.execute("PRAGMA synchronous=OFF")
    con.execute(
        """CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            amount_cents INTEGER NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            payload BLOB NOT NULL)"""
    )
    con.execute("CREATE INDEX orders_customer ON orders(customer_id, created_at)")
    con.execute("CREATE INDEX orders_status ON orders(status, updated_at)")
    maker = RowMaker(rng)
    insert = "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?)"
    next_id = 1
    batch = 20_000
    started = time.monotonic()
    while True:
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        size = pages * 4096
        if size >= target:
            break
        remaining = target - size
        # ~1.3 KiB per row with indexes; insert at most one batch, fewer near the end.
        n = max(200, min(batch, remaining // 1400))
        rows = [maker.row(i) for i in range(next_id, next_id + n)]
        con.execute("BEGIN")
        con.executemany(insert, rows)
        con.execute("COMMIT")
        next_id += n
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    log(f"db: {next_id - 1} rows, {os.path.getsize(path) / 2**20:.1f} MiB "
        f"in {time.monotonic() - started:.1f}s")


def file_content(rng, size):
    kind = rng.random()
    if kind < 0.4:  # image-like: incompressible
        return rng.randbytes(size)
    if kind < 0.7:  # JSON document
        parts = []
        n = 0
        while n < size:
            s = json.dumps({"id": rng.randrange(10**9), "name": " ".join(rng.choices(WORDS, k=3)),
                            "tags": rng.choices(WORDS, k=4), "score": rng.random()})
            parts.append(s)
            n += len(s) + 2
        return ("[" + ",\n".join(parts) + "]").encode()[:size]
    if kind < 0.85:  # CSV export
        lines = []
        n = 0
        while n < size:
            s = f"{rng.randrange(10**6)},{rng.choice(WORDS)},{rng.randint(1, 999)}.{rng.randint(0, 99):02d},{rng.choice(STATUSES)}"
            lines.append(s)
            n += len(s) + 1
        return "\n".join(lines).encode()[:size]
    # prose
    out = " ".join(rng.choices(WORDS, k=size // 4)).encode()
    return out[:size]


def create_tree(root, files, rng):
    started = time.monotonic()
    total = 0
    for i in range(files):
        year = 2020 + (i * 5) // files
        month = 1 + (i * 61 // files) % 12
        user = rng.randrange(40)
        d = os.path.join(root, str(year), f"{month:02d}", f"user{user:03d}")
        os.makedirs(d, exist_ok=True)
        size = rng.randint(1024, 64 * 1024)
        ext = rng.choice(["jpg", "png", "json", "csv", "txt", "pdf"])
        with open(os.path.join(d, f"upload-{i:06d}.{ext}"), "wb") as f:
            f.write(file_content(rng, size))
        total += size
    log(f"tree: {files} files, {total / 2**20:.1f} MiB in {time.monotonic() - started:.1f}s")


def mutate_db(path, percent, rng):
    con = sqlite3.connect(path, isolation_level=None)
    (max_id,) = con.execute("SELECT max(id) FROM orders").fetchone()
    n = max(1, int(max_id * percent / 100))
    ids = rng.sample(range(1, max_id + 1), n)
    maker = RowMaker(rng)
    now = 1_700_000_000
    con.execute("BEGIN")
    con.executemany(
        "UPDATE orders SET status=?, updated_at=?, amount_cents=?, body=?, payload=? WHERE id=?",
        [(rng.choice(STATUSES), now + k, rng.randint(100, 500_000), maker.body(), maker.blob(), i)
         for k, i in enumerate(ids)],
    )
    con.execute("COMMIT")
    con.close()
    log(f"db: updated {n} of {max_id} rows ({percent}%), now {os.path.getsize(path) / 2**20:.1f} MiB")


def mutate_tree(root, percent, rng):
    paths = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
    )
    n = max(1, int(len(paths) * percent / 100))
    for p in rng.sample(paths, n):
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            # Overwrite a random region (up to 4 KiB) and append up to 1 KiB.
            length = min(size, rng.randint(256, 4096))
            f.seek(rng.randrange(0, size - length + 1))
            f.write(rng.randbytes(length))
            f.seek(0, os.SEEK_END)
            f.write(rng.randbytes(rng.randint(16, 1024)))
    log(f"tree: modified {n} of {len(paths)} files ({percent}%)")


def manifest(root):
    """{relative path: sha256} for every regular file under root (a file root maps '' )."""
    out = {}
    if os.path.isfile(root):
        return {"": sha256_file(root)}
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = sha256_file(p)
    return out


def is_sqlite(path):
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def sqlite_digest(path):
    """sha256 over the schema and every row of every table (in rowid order), plus
    integrity_check: equal digests mean the same database content even where header bytes
    (change counter, schema cookie, SQLite version) differ, as after a copy made with SQLite's
    backup API."""
    h = hashlib.sha256()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        h.update(ok.encode())
        tables = con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        for row in tables:
            h.update(repr(row).encode())
        for _, name, _, _ in (t for t in tables if t[0] == "table"):
            for row in con.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                h.update(repr(row).encode())
    finally:
        con.close()
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--dir", required=True)
    c.add_argument("--size-mb", type=int, default=1024)
    c.add_argument("--files", type=int, default=5000)
    c.add_argument("--seed", type=int, default=1)
    m = sub.add_parser("mutate")
    m.add_argument("--dir", required=True)
    m.add_argument("--percent", type=float, default=1.0)
    m.add_argument("--seed", type=int, default=2)
    f = sub.add_parser("manifest")
    f.add_argument("--dir", required=True)
    a = ap.parse_args()

    if a.cmd == "create":
        os.makedirs(os.path.join(a.dir, "db"), exist_ok=True)
        os.makedirs(os.path.join(a.dir, "uploads"), exist_ok=True)
        create_db(os.path.join(a.dir, "db", "app.db"), a.size_mb, random.Random(a.seed))
        create_tree(os.path.join(a.dir, "uploads"), a.files, random.Random(a.seed + 1000))
    elif a.cmd == "mutate":
        mutate_db(os.path.join(a.dir, "db", "app.db"), a.percent, random.Random(a.seed))
        mutate_tree(os.path.join(a.dir, "uploads"), a.percent, random.Random(a.seed + 1000))
    else:
        json.dump(manifest(a.dir), sys.stdout, indent=0, sort_keys=True)


if __name__ == "__main__":
    main()
