#!/usr/bin/env bash
# Starts a throwaway single-node Garage (S3) on loopback for Lifeboat's end-to-end tests.
#
#   .ci/garage.sh [DIR [ENV_FILE]]
#
# DIR holds everything: config, state (ports, keys), metadata, data, log, pid. Without DIR
# a fresh `mktemp -d` directory is used. The script waits until Garage answers, applies a
# one-node layout, imports an access key, creates the bucket `lifeboat-test` with
# read/write/owner rights for that key, writes ENV_FILE (default DIR/env) and prints its path:
#
#   . "$(.ci/garage.sh /tmp/garage)"    # exports AWS_* and LIFEBOAT_TEST_S3_BUCKET
#   cargo test -p lifeboat --test s3
#   kill "$GARAGE_PID"                  # when done; rm -rf /tmp/garage
#
# Running it again on the same DIR reuses the ports, keys and data: if Garage is still
# running it only re-checks it, otherwise it restarts it on the same data (this is how a
# test brings a killed Garage back).
#
# Environment (all optional):
#   GARAGE_BIN         the garage binary (default: `garage` on PATH, else ~/.cargo/bin/garage)
#   GARAGE_S3_PORT, GARAGE_RPC_PORT, GARAGE_ADMIN_PORT
#                      fixed ports (default: free random ports, chosen on the first run)
#   GARAGE_BUCKET      bucket name (default lifeboat-test)
#   GARAGE_WATCH_PID   kill Garage when this process exits (a test binary passes its pid)
#   GARAGE_WATCH_CLEANUP=1  with GARAGE_WATCH_PID: also delete DIR then
#   GARAGE_TIMEOUT     seconds to wait for Garage to come up (default 60: a loaded
#                      two-core machine once took more than 15)
set -euo pipefail

say() { echo "garage.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

GARAGE_BIN=${GARAGE_BIN:-$(command -v garage || true)}
if [ -z "$GARAGE_BIN" ] && [ -x "${HOME:-/nonexistent}/.cargo/bin/garage" ]; then
    GARAGE_BIN=$HOME/.cargo/bin/garage
fi
[ -n "$GARAGE_BIN" ] && [ -x "$GARAGE_BIN" ] ||
    die "garage not found: install Garage 2.x (cargo install garage) or set GARAGE_BIN"

if [ $# -ge 1 ] && [ -n "$1" ]; then
    DIR=$1
    mkdir -p "$DIR"
else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-garage.XXXXXX")
fi
DIR=$(cd "$DIR" && pwd -P)
ENV_FILE=${2:-$DIR/env}
CONFIG=$DIR/garage.toml
STATE=$DIR/state
PID_FILE=$DIR/garage.pid
LOG=$DIR/garage.log
BUCKET=${GARAGE_BUCKET:-lifeboat-test}
TIMEOUT=${GARAGE_TIMEOUT:-60}
umask 077

random_hex() { # $1 bytes
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ] && return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
        if ! port_in_use "$port"; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

choose_ports() {
    S3_PORT=${GARAGE_S3_PORT:-$(free_port)}
    RPC_PORT=${GARAGE_RPC_PORT:-$(free_port)}
    ADMIN_PORT=${GARAGE_ADMIN_PORT:-$(free_port)}
}

write_state() {
    cat >"$STATE.tmp" <<EOF
S3_PORT=$S3_PORT
RPC_PORT=$RPC_PORT
ADMIN_PORT=$ADMIN_PORT
RPC_SECRET=$RPC_SECRET
ADMIN_TOKEN=$ADMIN_TOKEN
KEY_ID=$KEY_ID
SECRET_KEY=$SECRET_KEY
EOF
    mv "$STATE.tmp" "$STATE"
}

write_config() {
    cat >"$CONFIG.tmp" <<EOF
# Throwaway single-node Garage for Lifeboat tests (written by .ci/garage.sh).
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "sqlite"
replication_factor = 1
# Test data is random: compressing it only costs time.
compression_level = "none"

rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$RPC_SECRET"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
admin_token = "$ADMIN_TOKEN"
EOF
    mv "$CONFIG.tmp" "$CONFIG"
}

g() { "$GARAGE_BIN" -c "$CONFIG" "$@"; }

alive() { # $1 pid: running, and not a zombie waiting to be reaped
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo "?")" != Z ]
}

running_pid() { # prints the pid of a live Garage started from DIR
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(cat "$PID_FILE")
    [ -n "$pid" ] && alive "$pid" || return 1
    echo "$pid"
}

start_garage() {
    : >>"$LOG"
    echo "--- $(date -u +%FT%TZ) starting garage on s3 $S3_PORT, rpc $RPC_PORT, admin $ADMIN_PORT" >>"$LOG"
    # Detached from our stdout/stderr, so a caller reading them sees EOF when we exit.
    local detach=()
    if command -v setsid >/dev/null 2>&1; then
        detach=(setsid)
    fi
    RUST_LOG=${RUST_LOG:-garage=warn} "${detach[@]}" "$GARAGE_BIN" -c "$CONFIG" server \
        </dev/null >>"$LOG" 2>&1 &
    started_pid=$!
    echo "$started_pid" >"$PID_FILE"
}

# Waits until `garage status` answers over RPC; returns 1 if Garage died first.
wait_rpc() {
    local deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        running_pid >/dev/null || return 1
        if g status >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    die "garage did not answer within ${TIMEOUT}s; see $LOG"
}

wait_until() { # $1 what, then a command
    local what=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out waiting for $what; see $LOG"
        running_pid >/dev/null || die "garage exited while waiting for $what; see $LOG"
        sleep 0.1
    done
}

s3_answers() {
    if command -v curl >/dev/null 2>&1; then
        # Any HTTP answer (403 for an anonymous request) means the S3 API is serving.
        curl -s -o /dev/null -m 2 "http://127.0.0.1:$S3_PORT/"
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null
    fi
}

# A Garage started by this run must not outlive a failure of this run.
started_pid=
on_exit() {
    local rc=$?
    if [ "$rc" != 0 ] && [ -n "$started_pid" ]; then
        kill -KILL "$started_pid" 2>/dev/null || true
    fi
}
trap on_exit EXIT

# --- state: ports and secrets are chosen once per DIR ---
fresh=0
if [ -f "$STATE" ] && [ -f "$CONFIG" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
else
    fresh=1
    choose_ports
    RPC_SECRET=$(random_hex 32)
    ADMIN_TOKEN=$(random_hex 32)
    KEY_ID=GK$(random_hex 12)
    SECRET_KEY=$(random_hex 32)
    write_state
    write_config
    mkdir -p "$DIR/meta" "$DIR/data"
fi

# --- start (or re-check) the server ---
if pid=$(running_pid) && g status >/dev/null 2>&1; then
    say "garage already running (pid $pid)"
else
    if pid=$(running_pid); then
        say "garage pid $pid does not answer; restarting it"
        kill -KILL "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    attempts=1
    # On a fresh DIR a port may have been taken meanwhile: choose again (unless fixed).
    if ((fresh)) && [ -z "${GARAGE_S3_PORT:-}${GARAGE_RPC_PORT:-}${GARAGE_ADMIN_PORT:-}" ]; then
        attempts=3
    fi
    for attempt in $(seq "$attempts"); do
        start_garage
        if wait_rpc; then
            break
        fi
        if ((attempt == attempts)); then
            tail -n 20 "$LOG" >&2 || true
            die "garage exited at startup; see $LOG"
        fi
        say "garage exited at startup (port taken?); retrying with other ports"
        choose_ports
        write_state
        write_config
    done
fi

# --- one-node layout ---
# Retried as a whole: right after startup a command may still fail transiently.
deadline=$((SECONDS + TIMEOUT))
until g health >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for a healthy cluster; see $LOG"
    running_pid >/dev/null || die "garage exited while applying the layout; see $LOG"
    if layout=$(g layout show 2>/dev/null) &&
        grep -q "No nodes currently have a role" <<<"$layout"; then
        node=$(g node id -q | cut -d@ -f1)
        version=$(sed -n 's/^Current cluster layout version: *//p' <<<"$layout")
        g layout assign -z dc1 -c 10G "$node" >/dev/null 2>&1 &&
            g layout apply --version $((${version:-0} + 1)) >/dev/null 2>&1 || true
    fi
    sleep 0.1
done

# --- key and bucket ---
if ! g key info "$KEY_ID" >/dev/null 2>&1; then
    g key import --yes -n lifeboat-test "$KEY_ID" "$SECRET_KEY" >/dev/null
fi
if ! g bucket info "$BUCKET" >/dev/null 2>&1; then
    g bucket create "$BUCKET" >/dev/null
fi
g bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >/dev/null
wait_until "the S3 API on port $S3_PORT" s3_answers

PID=$(cat "$PID_FILE")

# --- env file ---
mkdir -p "$(dirname "$ENV_FILE")"
cat >"$ENV_FILE.tmp" <<EOF
export AWS_ACCESS_KEY_ID='$KEY_ID'
export AWS_SECRET_ACCESS_KEY='$SECRET_KEY'
export AWS_REGION='garage'
export AWS_ENDPOINT_URL='http://127.0.0.1:$S3_PORT'
export LIFEBOAT_TEST_S3_BUCKET='$BUCKET'
export GARAGE_PID='$PID'
export GARAGE_CONFIG='$CONFIG'
export GARAGE_DIR='$DIR'
EOF
mv "$ENV_FILE.tmp" "$ENV_FILE"

# --- optional watchdog: Garage does not outlive the process that asked for it ---
if [ -n "${GARAGE_WATCH_PID:-}" ]; then
    cleanup=${GARAGE_WATCH_CLEANUP:-0}
    (
        trap '' HUP INT
        while kill -0 "$GARAGE_WATCH_PID" 2>/dev/null; do
            # Garage stopped by someone else (a restart gets its own watchdog).
            alive "$PID" || exit 0
            sleep 1
        done
        kill -KILL "$PID" 2>/dev/null || true
        if [ "$cleanup" = 1 ] && [ -f "$DIR/garage.toml" ] && [ -f "$DIR/state" ]; then
            sleep 0.5
            rm -rf "$DIR"
        fi
    ) </dev/null >/dev/null 2>&1 &
    disown || true
fi

echo "$ENV_FILE"
