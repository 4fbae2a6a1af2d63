#!/usr/bin/env bash
# Builds the npm tarballs of every Linux platform this machine can cross-build
# (x86_64 glibc and musl, arm64 glibc; `rustup target add` them, and install Debian's
# gcc-aarch64-linux-gnu, musl-tools and qemu-user), then checks each platform's binary
# for real: --version, init, a backup of a SQLite database and its restore, checked
# (arm64 runs under qemu-aarch64). Prints each tarball's size. Not part of the test
# suite (three LTO builds take most of an hour on two cores); run before a release.
#   scripts/npm-release-check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/npm}
scripts/npm-pack.sh --out "$out" x86_64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-gnu
version=$(node -p "require('./npm/lifeboat/package.json').version")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for key in linux-x64-gnu linux-x64-musl linux-arm64-gnu; do
  dir="$work/$key"
  mkdir -p "$dir"
  tar -xzf "$out/lifeboat-$key-$version.tgz" -C "$dir"
  run=("$dir/package/bin/lifeboat")
  [ "$key" = linux-arm64-gnu ] && run=(qemu-aarch64 -L /usr/aarch64-linux-gnu "${run[@]}")
  export LIFEBOAT_REPO="$dir/repo" LIFEBOAT_PASSWORD=release-check
  "${run[@]}" --version
  "${run[@]}" --quiet init --kdf-memory-mib 8 --kdf-iterations 1
  sqlite3 "$dir/app.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);"
  "${run[@]}" --quiet backup "$dir/app.db"
  "${run[@]}" --quiet restore latest --target "$dir/restored"
  [ "$(sqlite3 "$dir/restored/app.db" 'SELECT sum(x) FROM t; PRAGMA integrity_check;' | tr '\n' ' ')" = "6 ok " ]
  echo "$key: backup and restore checked ($(file -b "$dir/package/bin/lifeboat" | cut -d, -f1-2))"
done
for tarball in "$out"/lifeboat-*"$version".tgz; do
  printf '%s\t%s bytes packed\n' "$(basename "$tarball")" "$(stat -c %s "$tarball")"
done
