#!/usr/bin/env bash
# The dashboard page (web/ → crates/kpi-server/dashboard/index.html, embedded in kpid):
#   1. installs Debian's chromium when it is missing (apt-get; CI runs as root);
#   2. installs web/'s locked npm packages (npm ci; no browser download) and rebuilds the
#      page (buf generate from proto/kpi/v1, tsc, esbuild), then fails if the result
#      differs from the committed crates/kpi-server/dashboard/index.html;
#   3. runs the unit tests of the page's helpers (web/test/units.test.mjs), builds kpid and
#      runs the browser test, web/test/dashboard.test.mjs, which starts its own kpid servers
#      on 127.0.0.1 port 0 and stops them by PID.
#
#   scripts/dashboard.sh                            # what .ci/run does
#   UPDATE_DOCS_SCREENSHOT=1 scripts/dashboard.sh   # also refresh docs/dashboard.png
#
# Needs cargo, node 20+ and npm, git, and (if chromium is missing) apt-get. Environment:
# SETUP_TIMEOUT (s, default 600) bounds each install, TEST_TIMEOUT (s, default 400) the
# browser test.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
SETUP_TIMEOUT="${SETUP_TIMEOUT:-600}"
TEST_TIMEOUT="${TEST_TIMEOUT:-400}"
page="crates/kpi-server/dashboard/index.html"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'dashboard.sh: error: %s\n' "$*" >&2; exit 1; }

for tool in cargo node npm git timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

if ! command -v chromium >/dev/null; then
    command -v apt-get >/dev/null || die "chromium is not installed and there is no apt-get to install it"
    log "installing Debian's chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    timeout --kill-after=10 "$SETUP_TIMEOUT" apt-get update -qq || die "apt-get update failed"
    timeout --kill-after=10 "$SETUP_TIMEOUT" apt-get install -y -qq chromium >/dev/null \
        || die "apt-get install chromium failed"
fi
chromium_bin="$(command -v chromium)"
log "browser: $("$chromium_bin" --version 2>/dev/null || echo "$chromium_bin")"

log "installing web/'s locked dependencies (npm ci, no browser download)"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout --kill-after=10 "$SETUP_TIMEOUT" \
    npm ci --prefix web --no-audit --no-fund --loglevel=error \
    || die "npm ci in web/ failed or timed out"

log "rebuilding the page (npm run build in web/)"
npm run --prefix web --silent build
if ! git diff --quiet -- "$page"; then
    git diff --stat -- "$page" >&2
    die "$page differs from the committed one: run \`npm --prefix web run build\` and commit it"
fi
log "the rebuilt page is byte for byte the committed one"

log "unit tests of the page's helpers (web/test/units.test.mjs)"
timeout --kill-after=10 60 node --test web/test/units.test.mjs >/dev/null \
    || { node --test web/test/units.test.mjs >&2 || true; die "the page's unit tests failed"; }

log "building kpid"
cargo build --bin kpid

log "browser test (web/test/dashboard.test.mjs)"
CHROMIUM="$chromium_bin" timeout --kill-after=10 "$TEST_TIMEOUT" node web/test/dashboard.test.mjs \
    || die "the browser test failed or timed out"
