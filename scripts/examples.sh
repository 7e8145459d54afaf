#!/usr/bin/env bash
# Runs the client examples against a fresh kpid and checks what they print:
#   - examples/rust_client.rs      (if present): the win rate of 30 won / 70 lost is 30 %
#   - examples/python/             stores deals.csv, prints the monthly win rate table,
#                                  compared line for line with expected_output.txt
#   - examples/node/               lists the metrics, computes an NPS of 30
# kpid is built with `cargo build --bin kpid`, started on 127.0.0.1:0 with a temporary data
# directory, and stopped by its PID when the script exits, however it exits.
#
# Needs cargo, python3 (with venv and pip), node 20+ and npm, and access to crates.io, PyPI
# and the npm registry. Exits non-zero if anything fails.
#
# Environment: STARTUP_TIMEOUT (s, default 30) bounds kpid's start, CLIENT_TIMEOUT (s,
# default 60) each client run, SETUP_TIMEOUT (s, default 600) each dependency install.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
CLIENT_TIMEOUT="${CLIENT_TIMEOUT:-60}"
SETUP_TIMEOUT="${SETUP_TIMEOUT:-600}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'examples.sh: error: %s\n' "$*" >&2; exit 1; }

for tool in cargo python3 node npm timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

work="$(mktemp -d "${TMPDIR:-/tmp}/kpid-examples.XXXXXX")"
kpid_pid=""

stop_kpid() {
    [[ -n "$kpid_pid" ]] || return 0
    if kill -0 "$kpid_pid" 2>/dev/null; then
        kill -TERM "$kpid_pid" 2>/dev/null || true
        # Graceful shutdown flushes the store; give it 10 s, then kill it.
        for _ in $(seq 1 100); do
            kill -0 "$kpid_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$kpid_pid" 2>/dev/null; then
            log "kpid (pid $kpid_pid) did not stop on SIGTERM within 10 s; killing it"
            kill -KILL "$kpid_pid" 2>/dev/null || true
        fi
    fi
    wait "$kpid_pid" 2>/dev/null || true
    kpid_pid=""
}
cleanup() {
    local status=$?
    stop_kpid
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- setup (before kpid runs)
log "building kpid"
cargo build --bin kpid
kpid_bin="$target_dir/debug/kpid"
[[ -x "$kpid_bin" ]] || die "$kpid_bin was not built"

have_rust_example=false
if [[ -f examples/rust_client.rs ]]; then
    have_rust_example=true
    log "building the Rust example"
    cargo build --example rust_client
fi

log "setting up the Python example (venv, pinned grpcio, stubs)"
timeout --kill-after=10 "$SETUP_TIMEOUT" examples/python/generate.sh \
    || die "examples/python/generate.sh failed or timed out"

log "installing the Node example's locked dependencies (npm ci)"
timeout --kill-after=10 "$SETUP_TIMEOUT" \
    npm ci --prefix examples/node --no-audit --no-fund --loglevel=error \
    || die "npm ci in examples/node failed or timed out"

# ---------------------------------------------------------------- kpid
log "starting kpid on 127.0.0.1:0 (data in $work/data)"
# Text logs at info, whatever the caller's environment says, so the ready line is there.
RUST_LOG=info "$kpid_bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" --log-format text \
    >"$work/kpid.log" 2>&1 &
kpid_pid=$!

addr=""
deadline=$((SECONDS + STARTUP_TIMEOUT))
while [[ -z "$addr" ]]; do
    # The ready line, e.g. `… INFO kpi_server::server: kpid ready addr=127.0.0.1:41215 …`.
    addr="$(grep -m 1 'ready' "$work/kpid.log" | sed -n 's/.*addr=\([0-9.]*:[0-9]*\).*/\1/p' || true)"
    [[ -n "$addr" ]] && break
    if ! kill -0 "$kpid_pid" 2>/dev/null; then
        cat "$work/kpid.log" >&2
        die "kpid exited before it was ready"
    fi
    if ((SECONDS >= deadline)); then
        cat "$work/kpid.log" >&2
        die "kpid was not ready within ${STARTUP_TIMEOUT}s"
    fi
    sleep 0.2
done
log "kpid (pid $kpid_pid) ready at $addr"

# ---------------------------------------------------------------- clients
passed=0
failed=0
skipped=0

# run NAME CHECK COMMAND...: runs COMMAND under CLIENT_TIMEOUT, shows its output, then
# runs the shell function CHECK on the output file; counts a pass only if both succeed.
run() {
    local name="$1" check="$2"
    shift 2
    local out="$work/$name.out"
    log "$name: $*"
    local status=0
    timeout --kill-after=5 "$CLIENT_TIMEOUT" "$@" >"$out" 2>&1 || status=$?
    sed "s/^/    [$name] /" "$out"
    if ((status == 124 || status == 137)); then
        log "FAIL $name: timed out after ${CLIENT_TIMEOUT}s"
        failed=$((failed + 1))
    elif ((status != 0)); then
        log "FAIL $name: exited with status $status"
        failed=$((failed + 1))
    elif ! "$check" "$out"; then
        failed=$((failed + 1))
    else
        log "ok   $name"
        passed=$((passed + 1))
    fi
}

check_rust() {
    grep -Eq '^[0-9]+ metrics:$' "$1" || { log "FAIL rust: no metric count line"; return 1; }
    grep -Fq 'sales.win_rate = 30 % ' "$1" || { log "FAIL rust: no 'sales.win_rate = 30 %' line"; return 1; }
}
check_python() {
    if ! diff -u examples/python/expected_output.txt "$1" >"$work/python.diff"; then
        log "FAIL python: output differs from examples/python/expected_output.txt:"
        cat "$work/python.diff" >&2
        return 1
    fi
}
check_node() {
    grep -Eq '^[0-9]+ metrics in [0-9]+ families$' "$1" || { log "FAIL node: no metric count line"; return 1; }
    grep -Eq '^  success \([0-9]+\): .*success\.nps' "$1" || { log "FAIL node: success.nps not listed"; return 1; }
    grep -Fxq 'success.nps = 30 (from detractors=2, promoters=5, responses=10)' "$1" \
        || { log "FAIL node: no 'success.nps = 30' line"; return 1; }
}

if $have_rust_example; then
    run rust check_rust "$target_dir/debug/examples/rust_client" --addr "http://$addr"
else
    log "skip rust: examples/rust_client.rs does not exist"
    skipped=$((skipped + 1))
fi
run python check_python examples/python/.venv/bin/python examples/python/win_rate_by_month.py --addr "$addr"
run node check_node node examples/node/client.js --addr "$addr"

# kpid must still be up after serving every client.
kill -0 "$kpid_pid" 2>/dev/null || { cat "$work/kpid.log" >&2; die "kpid died while serving the examples"; }

summary="examples: $passed passed, $failed failed"
((skipped > 0)) && summary+=", $skipped skipped"
echo "$summary"
((failed == 0))
