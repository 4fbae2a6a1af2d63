#!/usr/bin/env bash
# Builds the npm tarballs: `lifeboat` (the launcher and the Node API) and one package per
# platform holding that platform's binary, selected by npm through optionalDependencies
# with os/cpu/libc (as esbuild and biome ship theirs).
#   scripts/npm-pack.sh [--out DIR] [--binary PATH] [TARGET...]
# TARGET is a Rust target triple (default: this machine's). Cross targets need their
# toolchain: `rustup target add T` and, for aarch64-unknown-linux-gnu, Debian's
# gcc-aarch64-linux-gnu; for x86_64-unknown-linux-musl, musl-tools.
# --binary packs a binary built already (the tests pack their own build) for this
# machine's platform instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
out=target/npm
binary=
targets=()
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
host=$(rustc -vV | sed -n 's/^host: //p')
((${#targets[@]})) || targets=("$host")
version=$(node -p "require('./npm/lifeboat/package.json').version")
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The npm platform key, os, cpu and libc of a Rust target triple.
describe() {
  case "$1" in
    x86_64-unknown-linux-gnu) echo "linux-x64-gnu linux x64 glibc" ;;
    aarch64-unknown-linux-gnu) echo "linux-arm64-gnu linux arm64 glibc" ;;
    x86_64-unknown-linux-musl) echo "linux-x64-musl linux x64 musl" ;;
    x86_64-apple-darwin) echo "darwin-x64 darwin x64 -" ;;
    aarch64-apple-darwin) echo "darwin-arm64 darwin arm64 -" ;;
    x86_64-pc-windows-msvc) echo "win32-x64 win32 x64 -" ;;
    *) echo "no npm platform for target $1" >&2; return 1 ;;
  esac
}

for target in "${targets[@]}"; do
  read -r key os cpu libc < <(describe "$target")
  exe=lifeboat
  [ "$os" = win32 ] && exe=lifeboat.exe
  if [ -n "$binary" ]; then
    [ "$target" = "$host" ] || { echo "--binary packs this machine's platform only" >&2; exit 2; }
    built=$binary
  else
    echo "building lifeboat for $target (profile dist: stripped, LTO)"
    linker_env=()
    [ "$target" = aarch64-unknown-linux-gnu ] &&
      linker_env=(CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc)
    if [ "$target" = "$host" ]; then
      cargo build --profile dist --locked -p lifeboat
      built="${CARGO_TARGET_DIR:-target}/dist/$exe"
    else
      env "${linker_env[@]}" cargo build --profile dist --locked -p lifeboat --target "$target"
      built="${CARGO_TARGET_DIR:-target}/$target/dist/$exe"
    fi
  fi
  dir="$stage/lifeboat-$key"
  mkdir -p "$dir/bin"
  cp "$built" "$dir/bin/$exe"
  chmod 755 "$dir/bin/$exe"
  node - "$dir" "$key" "$os" "$cpu" "$libc" "$version" "$exe" <<'JS'
const [dir, key, os, cpu, libc, version, exe] = process.argv.slice(2);
const manifest = {
  name: `lifeboat-${key}`,
  version,
  description: `The lifeboat binary for ${key}`,
  license: 'Apache-2.0',
  os: [os],
  cpu: [cpu],
  ...(libc === '-' ? {} : { libc: [libc] }),
  files: [`bin/${exe}`],
  preferUnplugged: true,
};
require('node:fs').writeFileSync(`${dir}/package.json`, JSON.stringify(manifest, null, 2) + '\n');
JS
  (cd "$dir" && npm pack --silent --pack-destination "$out" >/dev/null)
done

cp -r npm/lifeboat "$stage/lifeboat"
(cd "$stage/lifeboat" && npm pack --silent --pack-destination "$out" >/dev/null)

for tarball in "$out"/lifeboat-*"$version".tgz; do
  printf '%s\t%s bytes\n' "$(basename "$tarball")" "$(stat -c %s "$tarball")"
done
