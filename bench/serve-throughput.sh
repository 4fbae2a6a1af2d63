#!/usr/bin/env bash
# Backup throughput through `lifeboat serve` (loopback TLS, local-directory repository)
# against the same backup written to a local directory directly. Goal: at most 1.3x the
# direct time. See bench/README.md.
#
#   bench/serve-throughput.sh                    # 500 MiB SQLite database + 2,000 small files
#   BENCH_SIZE_MB=64 bench/serve-throughput.sh   # smoke run
#
# Environment:
#   BENCH_SIZE_MB   size of the SQLite database in MiB (default 500)
#   BENCH_FILES     number of small files (default 2000)
#   BENCH_ROUNDS    alternate direct and served backups N times each, report medians (default 1)
#   BENCH_DIR       parent of the scratch directory (default /tmp)
#   LIFEBOAT_BIN    use this lifeboat binary instead of building one (release)
set -euo pipefail

BENCH_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_HOME/.." && pwd)"
SIZE_MB="${BENCH_SIZE_MB:-500}"
FILES="${BENCH_FILES:-2000}"
ROUNDS="${BENCH_ROUNDS:-1}"
PARENT="${BENCH_DIR:-/tmp}"

say() { printf '[bench] %s\n' "$*" >&2; }

if [[ -n "${LIFEBOAT_BIN:-}" ]]; then
    LIFEBOAT="$LIFEBOAT_BIN"
else
    say "building lifeboat (release)"
    (cd "$ROOT" && cargo build --release --quiet -p lifeboat)
    LIFEBOAT="${CARGO_TARGET_DIR:-$ROOT/target}/release/lifeboat"
fi
[[ -x "$LIFEBOAT" ]] || { say "no lifeboat binary at $LIFEBOAT"; exit 1; }
GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"

mkdir -p "$PARENT"
WORK="$(mktemp -d "$PARENT/lifeboat-serve-bench.XXXXXX")"
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

say "generating ${SIZE_MB} MiB database + ${FILES} files in $WORK/data"
python3 "$BENCH_HOME/datagen.py" create --dir "$WORK/data" --size-mb "$SIZE_MB" --files "$FILES" >/dev/null
DATA_BYTES="$(du -sb "$WORK/data" | cut -f1)"

export LIFEBOAT_PASSWORD="bench passphrase"
export LIFEBOAT_CACHE_DIR="$WORK/cache"
unset LIFEBOAT_PASSWORD_FILE LIFEBOAT_REPO

# The server, on a free loopback port with its self-signed certificate.
mkdir -p "$WORK/served"
"$LIFEBOAT" serve --repo "$WORK/served" --listen 127.0.0.1:0 --state-dir "$WORK/state" \
    >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q fingerprint "$WORK/serve.out" 2>/dev/null && break
    sleep 0.1
done
ADDRESS="$(grep -o 'lifeboat+https://[^ ]*' "$WORK/serve.out")"
export LIFEBOAT_SERVER_FINGERPRINT="$(grep -o 'sha256:[0-9a-f]*' "$WORK/serve.out")"
ADMIN_TOKEN="$("$LIFEBOAT" serve token add bench-admin --role admin --state-dir "$WORK/state" 2>/dev/null | head -1)"
APP_TOKEN="$("$LIFEBOAT" serve token add bench-app --role append --state-dir "$WORK/state" 2>/dev/null | head -1)"

# Each round: a fresh repository of each kind, then one backup of the data into each, the
# order alternating, page cache warm for both (the data was just written and read).
run_backup() { # repo token -> seconds
    local start end
    sync   # untimed: neither run pays for the other's writeback
    start="$(date +%s.%N)"
    LIFEBOAT_SERVER_TOKEN="$2" "$LIFEBOAT" --repo "$1" backup "$WORK/data" --json >"$WORK/last.json"
    end="$(date +%s.%N)"
    python3 -c "print(f'{$end - $start:.3f}')"
}
init_repo() { # repo token
    LIFEBOAT_SERVER_TOKEN="$2" "$LIFEBOAT" --repo "$1" init >/dev/null
}
clear_served() { # the served directory is emptied between rounds (the server keeps it)
    find "$WORK/served" -mindepth 1 -delete
    rm -rf "$WORK/state/lock-owners"/*
}
tar -cf /dev/null -C "$WORK" data   # warm the page cache for both

DIRECT=()
SERVED=()
for round in $(seq "$ROUNDS"); do
    rm -rf "$WORK/direct" "$WORK/cache"
    clear_served
    init_repo "$WORK/direct" ""
    init_repo "$ADDRESS" "$ADMIN_TOKEN"
    if (( round % 2 == 1 )); then
        DIRECT+=("$(run_backup "$WORK/direct" "")")
        rm -rf "$WORK/cache"
        SERVED+=("$(run_backup "$ADDRESS" "$APP_TOKEN")")
    else
        SERVED+=("$(run_backup "$ADDRESS" "$APP_TOKEN")")
        rm -rf "$WORK/cache"
        DIRECT+=("$(run_backup "$WORK/direct" "")")
    fi
    say "round $round: direct ${DIRECT[-1]} s, through lifeboat serve ${SERVED[-1]} s"
done
STORED="$(du -sb "$WORK/served" | cut -f1)"

DATE="$(date +%F)"
OUT="$BENCH_HOME/results/serve-throughput-$DATE-${SIZE_MB}MB.md"
python3 - "$OUT" "$SIZE_MB" "$FILES" "$DATA_BYTES" "$STORED" "$GIT_REV" "$(nproc)" \
    "${DIRECT[*]}" "${SERVED[*]}" <<'PY'
import statistics, sys
out, size_mb, files, data_bytes, stored, rev, cores, direct, served = sys.argv[1:]
direct = [float(x) for x in direct.split()]
served = [float(x) for x in served.split()]
d, s = statistics.median(direct), statistics.median(served)
mib = int(data_bytes) / 2**20
ratio = s / d
text = f"""# Backup through `lifeboat serve` vs direct ({size_mb} MiB database + {files} files)

Lifeboat {rev}; {cores} cores; {mib:.0f} MiB of data (bench/datagen.py), {int(stored) / 2**20:.0f} MiB stored through the server;
one backup into a fresh local-directory repository, directly and through `lifeboat serve`
on loopback TLS (self-signed certificate, pinned; an append token). Median of {len(direct)} round(s).

| target | time (s) | MiB/s |
|---|---|---|
| local directory, direct | {d:.2f} | {mib / d:.0f} |
| `lifeboat serve` (loopback TLS, same disk) | {s:.2f} | {mib / s:.0f} |

Ratio served / direct: **{ratio:.2f}x** (goal: at most 1.3x) — {"met" if ratio <= 1.3 else "NOT met"}.
Rounds: direct {", ".join(f"{x:.2f}" for x in direct)}; served {", ".join(f"{x:.2f}" for x in served)}.
"""
open(out, "w").write(text)
print(text)
PY
say "written to $OUT"
