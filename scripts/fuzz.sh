#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a while (default 10 s each).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Each run starts from the kept corpus (fuzz/corpus/<target>, committed: seeds written from
# docs/FORMAT.md and inputs that reached new code) and from this machine's working corpus
# (~/.cache/lifeboat/fuzz-corpus/<target>, where new inputs go). FUZZ_KEEP=1 merges what
# the working corpus covers beyond the kept one into fuzz/corpus, to commit.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The machine's toolchain is stable:
# RUSTC_BOOTSTRAP lets it take the flags libFuzzer's instrumentation needs. Safe Rust gains
# little from AddressSanitizer, so targets build without it (faster, no sanitizer runtime);
# overflow checks and debug assertions stay on.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-10}"
shift || true
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/lifeboat/fuzz-target}"
work="${FUZZ_CORPUS_DIR:-$HOME/.cache/lifeboat/fuzz-corpus}"
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build --sanitizer none
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "$work/$target"
  # -max_len keeps inputs near object sizes; a crash leaves its input in fuzz/artifacts/.
  if ! cargo fuzz run --sanitizer none "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target failed: its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  printf '%-12s %s runs\n' "$target" "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  if [[ "${FUZZ_KEEP:-}" == 1 ]]; then
    cargo fuzz run --sanitizer none "$target" "corpus/$target" "$work/$target" -- \
      -merge=1 -max_len=65536 >"$log" 2>&1 || { tail -20 "$log"; exit 1; }
  fi
done
