#!/usr/bin/env bash
# Cold builds of one or more checkouts, one after the other, each in a fresh target
# directory: wall and CPU time, peak compiler memory, target size, binary size.
#   bench/cold-build.sh [--release] CHECKOUT...      (e.g. a `git worktree` of the before)
# With --release it builds what scripts/demo.sh builds (`cargo build --release`);
# otherwise the tests (`cargo build --workspace --tests`). Results go to stdout.
set -euo pipefail
profile=(--workspace --tests)
dir=debug
if [ "${1:-}" = --release ]; then
  profile=(--release)
  dir=release
  shift
fi
for tree in "$@"; do
  target=$(mktemp -d /tmp/cold-build.XXXX)
  times=$(mktemp)
  (cd "$tree" && /usr/bin/time -f "%e %U %S %M" -o "$times" \
    env CARGO_TARGET_DIR="$target" cargo build "${profile[@]}" >/dev/null 2>&1)
  read -r wall user sys rss <"$times"
  printf '%s (%s): wall %s s, CPU %.0f s, peak rustc %d MB, target %s, lifeboat %s\n' \
    "$tree" "$(git -C "$tree" rev-parse --short HEAD)" "$wall" "$(echo "$user + $sys" | bc)" \
    $((rss / 1024)) "$(du -sh "$target" | cut -f1)" \
    "$(du -h "$target/$dir/lifeboat" | cut -f1)"
  rm -rf "$target" "$times"
done
