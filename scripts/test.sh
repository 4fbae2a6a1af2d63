#!/usr/bin/env bash
# The whole test suite in one command, on a fresh machine too: installs what the tests need
# (sqlite3 and chromium from Debian, Garage when missing, moto's S3 server, schemathesis,
# the npm packages),
# starts the database servers if they are down, runs every test binary without stopping at
# the first failure, and ends with one summary line. A test that could not run its checks for
# want of a capability (root, a tmpfs mount) is counted as skipped, never as passed.
#   scripts/test.sh [extra `cargo test` arguments, e.g. -p lifeboat --test s3]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lifeboat/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "services"
# The database sources (PostgreSQL 15, MariaDB 10.11) are tested against the machine's
# servers; start them if they are down.
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start ||
    echo "warning: PostgreSQL did not start"
fi
if command -v mariadb-admin >/dev/null && ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd ||
    echo "warning: MariaDB did not start"
fi

step "tools"
# The replication tests drive the sqlite3 shell as a second, short-lived app; the runbook
# test renders the HTML runbook in Debian's chromium (through playwright-core).
missing=()
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} from Debian's packages"
  as_root apt-get update -qq || echo "warning: apt-get update failed; trying the install anyway"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

step "garage (S3)"
# The S3 tests run against a real Garage server that they start on loopback ports.
if ! command -v garage >/dev/null; then
  echo "garage is missing: building it with cargo install (about 12 minutes on two cores)"
  cargo install garage --locked
fi
garage --version 2>/dev/null | head -1 || true

step "moto (S3 with object lock)"
# The object-lock tests run against moto's S3 server (Garage has no object lock).
command -v moto_server >/dev/null ||
  pip install --quiet 'moto[server]' ||
  python3 -m pip install --quiet --break-system-packages 'moto[server]'

step "gcp-storage-emulator (gcs:// repositories)"
# Google Cloud Storage's emulator for the store tests (Azure's, Azurite, is an npm package).
command -v gcp-storage-emulator >/dev/null ||
  pip install --quiet gcp-storage-emulator ||
  python3 -m pip install --quiet --break-system-packages gcp-storage-emulator

step "schemathesis (the agent's API against its OpenAPI document)"
command -v st >/dev/null ||
  pip install --quiet schemathesis ||
  python3 -m pip install --quiet --break-system-packages schemathesis

step "npm packages (Node $(node --version 2>/dev/null || echo missing))"
# The end-to-end test drives examples/express-crud (Express 5 + better-sqlite3 12); the
# migration test the real Knex CLI in examples/knex-migrations; the runbook test drives
# chromium through playwright-core; the store tests start Azurite from tests/stores.
npm ci --prefix examples/express-crud --no-audit --no-fund --loglevel=error
npm ci --prefix examples/knex-migrations --no-audit --no-fund --loglevel=error
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
npm ci --prefix tests/stores --no-audit --no-fund --loglevel=error

step "TypeScript: the dashboard (dashboard/dist/, embedded by the agent) and the API client"
# Both are committed compiled (cargo alone builds the agent; the client installs without a
# build step), and the client's types are generated from docs/openapi.json: each must be
# what its sources compile to.
# The client first: the dashboard takes its types from the client's generated schema.
for package in clients/typescript dashboard; do
  npm ci --prefix "$package" --no-audit --no-fund --loglevel=error
  npm run --prefix "$package" --silent build >/dev/null
done
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
  ! git diff --quiet -- dashboard/dist clients/typescript/src clients/typescript/dist; then
  git diff --stat -- dashboard/dist clients/typescript/src clients/typescript/dist
  echo "compiled TypeScript is stale: run npm run --prefix dashboard build and npm run --prefix clients/typescript build, and commit"
  exit 1
fi

step "build the tests"
# Compiling first, apart, so a compile error stops here with its message on top, and the
# test log below holds only tests.
if ! cargo test --workspace --no-run "$@"; then
  echo "tests: none run: the tests do not compile (the errors are above)"
  exit 101
fi

step "tests"
log="$(mktemp)"
skips="$(mktemp)"
trap 'rm -f "$log" "$skips"' EXIT
set +e
LIFEBOAT_TEST_SKIPS="$skips" cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

step "summary"
python3 - "$log" "$skips" "$status" <<'PY'
import re, sys
log, skips, status = open(sys.argv[1], errors="replace").read(), sys.argv[2], int(sys.argv[3])
passed = failed = ignored = 0
for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", log):
    passed += int(m[1]); failed += int(m[2]); ignored += int(m[3])
skipped = [l for l in open(skips).read().splitlines() if l.strip()]
broken = sorted(set(re.findall(r"error: test failed, to rerun pass `([^`]+)`", log)))
for line in skipped:
    print(f"skipped: {line}")
for target in broken:
    print(f"failed: {target}")
if status != 0 and not broken:
    print("failed: cargo test itself (see above)")
print(f"tests: {passed - len(skipped)} passed, {failed} failed, {len(skipped)} skipped "
      f"for a missing capability, {ignored} ignored"
      + ("" if status == 0 else f"; FAILED ({len(broken)} test binaries)"))
PY
exit "$status"
