#!/usr/bin/env bash
# Lifeboat vs restic vs borg on the same freshly generated data. See bench/README.md.
#
#   bench/run.sh                      # full run: 1 GiB SQLite file + 5,000 small files
#   BENCH_SIZE_MB=64 bench/run.sh     # smoke run
#
# Environment:
#   BENCH_SIZE_MB   size of the SQLite database in MiB (default 1024)
#   BENCH_FILES     number of small files in the tree (default 5000)
#   BENCH_DIR       parent of the scratch directory (default /tmp); needs ~4x the data free
#   BENCH_TOOLS     comma list, in run order (default lifeboat,restic,borg,sqlite3)
#   BENCH_DATASETS  comma list (default db,tree)
#   BENCH_ROUNDS    repeat the whole comparison N times on fresh data and report medians (default 1)
#   BENCH_KEEP=1    keep the scratch directory (data, repos, logs) for inspection
#   BENCH_REV       build this git revision (e.g. HEAD) instead of the working tree; it is
#                   exported under target/bench/ and built there, so edits in progress are ignored
#   LIFEBOAT_BIN    use this lifeboat binary instead of building one
set -euo pipefail

BENCH_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_HOME/.." && pwd)"
SIZE_MB="${BENCH_SIZE_MB:-1024}"
FILES="${BENCH_FILES:-5000}"
TOOLS="${BENCH_TOOLS:-lifeboat,restic,borg,sqlite3}"
DATASETS="${BENCH_DATASETS:-db,tree}"
PARENT="${BENCH_DIR:-/tmp}"

say() { printf '[bench] %s\n' "$*" >&2; }

# --- tools -----------------------------------------------------------------------------
need_pkgs=()
[[ ",$TOOLS," == *,restic,* ]] && ! command -v restic >/dev/null && need_pkgs+=(restic)
[[ ",$TOOLS," == *,borg,* ]] && ! command -v borg >/dev/null && need_pkgs+=(borgbackup)
[[ ",$TOOLS," == *,sqlite3,* ]] && ! command -v sqlite3 >/dev/null && need_pkgs+=(sqlite3)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
if ((${#need_pkgs[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing ${need_pkgs[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
    else
        say "missing: ${need_pkgs[*]} (install them, e.g. apt-get install ${need_pkgs[*]})"
        exit 1
    fi
fi
python3 -c 'import sqlite3' || { say "python3 with the sqlite3 module is required"; exit 1; }

GIT_REV=""
if [[ -n "${LIFEBOAT_BIN:-}" ]]; then
    LIFEBOAT="$LIFEBOAT_BIN"
    GIT_REV="binary $LIFEBOAT_BIN"
elif [[ -n "${BENCH_REV:-}" ]]; then
    # A committed revision, exported (git archive) beside the build cache: the working tree,
    # which others may be editing, is not used.
    rev="$(git -C "$ROOT" rev-parse --verify "${BENCH_REV}^{commit}")"
    src="$ROOT/target/bench/src-${rev:0:12}"
    find "$ROOT/target/bench" -maxdepth 1 -name 'src-*' ! -name "src-${rev:0:12}" -exec rm -rf {} + 2>/dev/null || true
    if [[ ! -f "$src/Cargo.toml" ]]; then
        rm -rf "$src" && mkdir -p "$src"
        git -C "$ROOT" archive "$rev" | tar -x -C "$src"
    fi
    say "building lifeboat ${rev:0:12} (release, from git)"
    (cd "$src" && CARGO_TARGET_DIR="$ROOT/target/bench/target" cargo build --release --quiet -p lifeboat)
    LIFEBOAT="$ROOT/target/bench/target/release/lifeboat"
    GIT_REV="${rev:0:12}"
else
    say "building lifeboat (release)"
    (cd "$ROOT" && cargo build --release --quiet -p lifeboat)
    LIFEBOAT="$ROOT/target/release/lifeboat"
    if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
        GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD)"
        if [[ -n "$(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
            GIT_REV="$GIT_REV + uncommitted changes"
        fi
    fi
fi
[[ -x "$LIFEBOAT" ]] || { say "no lifeboat binary at $LIFEBOAT"; exit 1; }

# --- scratch space ---------------------------------------------------------------------
mkdir -p "$PARENT"
WORK="$(mktemp -d "$PARENT/lifeboat-bench.XXXXXX")"
STATUS=1
cleanup() {
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        say "kept $WORK"
        return
    fi
    if [[ "$STATUS" != 0 && -d "$WORK/logs" ]]; then
        local keep="$PARENT/lifeboat-bench-logs.$(date +%Y%m%d-%H%M%S)"
        mv "$WORK/logs" "$keep" && say "something failed: the tools' logs are in $keep"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
need_kb=$(( (SIZE_MB + FILES * 33 / 1024) * 1024 * 4 ))
avail_kb=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
if (( avail_kb < need_kb )); then
    say "not enough space in $PARENT: need ~$((need_kb / 1024)) MiB, have $((avail_kb / 1024)) MiB"
    exit 1
fi
say "scratch directory $WORK"

python3 "$BENCH_HOME/harness.py" \
    --work "$WORK" \
    --lifeboat "$LIFEBOAT" \
    --results-dir "$BENCH_HOME/results" \
    --size-mb "$SIZE_MB" \
    --files "$FILES" \
    --tools "$TOOLS" \
    --datasets "$DATASETS" \
    --rounds "${BENCH_ROUNDS:-1}" \
    --git "$GIT_REV" && STATUS=0 || STATUS=$?
exit "$STATUS"
