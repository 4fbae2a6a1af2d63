#!/usr/bin/env bash
# Memory and CPU of an idle `lifeboat agent`: one plan (SQLite database and uploads to a
# local repository, every hour, RPO 2h) with the default RPO check every 30 s. Measures
# resident memory and CPU time (the agent plus the `lifeboat request` children it waited
# for) over WINDOW seconds after a warm-up. With DASHBOARD=1 a headless chromium keeps
# the dashboard open meanwhile (it reads the API every 5 s), and the page's load time is
# printed (needs `npm ci --prefix tests/browser`).
#
#   [DASHBOARD=1] bench/agent-idle.sh [path/to/lifeboat] [WINDOW seconds, default 120]
set -euo pipefail
BIN=${1:-target/release/lifeboat}
WINDOW=${2:-120}
BIN=$(realpath "$BIN")
OPENER=$(realpath "$(dirname "$0")/dashboard-open.js")
WORK=$(mktemp -d)
trap 'kill "$AGENT" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
export LIFEBOAT_PASSWORD=bench-passphrase LIFEBOAT_CACHE_DIR=$WORK/cache
mkdir uploads && head -c 1000000 /dev/urandom > uploads/photo.bin
python3 -c "import sqlite3; c=sqlite3.connect('app.db'); c.execute('create table t(x)'); c.executemany('insert into t values (?)', [(i,) for i in range(10000)]); c.commit()"
"$BIN" init --repo "$WORK/repo" -q
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > lifeboat.toml <<TOML
[[source]]
name = "app"
url = "sqlite:./app.db"
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "local"
url = "$WORK/repo"
[[plan]]
name = "app"
sources = ["app", "uploads"]
targets = ["local"]
schedule = "every 1h"
rpo = "2h"
[agent]
listen = "127.0.0.1:$PORT"
state = "./agent.db"
token = "bench-token"
TOML
"$BIN" agent --config lifeboat.toml 2>agent.log &
AGENT=$!
sleep 15   # the first run (a plan that never ran runs at once) and a first RPO check
if [ "${DASHBOARD:-}" = 1 ]; then
  node "$OPENER" "http://127.0.0.1:$PORT/" bench-token "$((WINDOW + 10))" &
  OPENED=$!
  sleep 5
fi
ticks() { awk '{print $14+$15+$16+$17}' "/proc/$AGENT/stat"; }
HZ=$(getconf CLK_TCK)
before=$(ticks)
sleep "$WINDOW"
after=$(ticks)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT/status")
if [ -n "${OPENED:-}" ]; then wait "$OPENED"; fi
cpu=$(python3 -c "print(f'{($after-$before)/$HZ:.2f}')")
pct=$(python3 -c "print(f'{100*($after-$before)/$HZ/$WINDOW:.2f}')")
curl -s -H "Authorization: Bearer bench-token" "http://127.0.0.1:$PORT/metrics" | grep -c '^lifeboat_' >/dev/null
echo "idle agent${DASHBOARD:+ with the dashboard open} over ${WINDOW}s: RSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB), CPU ${cpu}s (${pct}% of one core, RPO checks included)"
