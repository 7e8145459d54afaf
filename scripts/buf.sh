#!/usr/bin/env bash
# Lints the protos with buf, then checks them for breaking changes against the previous
# commit. buf comes from the npm registry (@bufbuild/buf, which ships the buf binary for
# this platform), pinned, installed once into .cache/buf (gitignored).
#
#   scripts/buf.sh                  # lint, then breaking against HEAD~1
#   BUF_AGAINST=main scripts/buf.sh # breaking against another git ref
#
# `buf breaking` is skipped, with a message, when the ref does not exist (a shallow clone,
# the first commit) or has no buf.yaml yet. Needs node/npm and git. Exits non-zero on any
# lint or breaking finding, or if buf cannot be installed.
set -euo pipefail

BUF_VERSION="1.75.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="$root/.cache/buf"
buf="$cache/node_modules/.bin/buf"
against_ref="${BUF_AGAINST:-HEAD~1}"

log() { printf '==> %s\n' "$*" >&2; }

if [[ ! -x "$buf" ]] || [[ "$("$buf" --version 2>/dev/null)" != "$BUF_VERSION" ]]; then
    command -v npm >/dev/null || { echo "buf.sh: error: npm is not installed" >&2; exit 1; }
    log "installing @bufbuild/buf@$BUF_VERSION into ${cache#"$root"/}"
    mkdir -p "$cache"
    npm install --prefix "$cache" --no-audit --no-fund --loglevel=error \
        --save-exact "@bufbuild/buf@$BUF_VERSION" >&2
    version="$("$buf" --version)" \
        || { echo "buf.sh: error: the installed buf does not run" >&2; exit 1; }
    [[ "$version" == "$BUF_VERSION" ]] \
        || { echo "buf.sh: error: installed buf is $version, expected $BUF_VERSION" >&2; exit 1; }
fi

status=0

log "buf lint (buf $BUF_VERSION, buf.yaml at the repository root)"
if "$buf" lint; then
    log "buf lint: no findings"
else
    log "buf lint: FAILED (findings above)"
    status=1
fi

if ! git rev-parse --verify --quiet "$against_ref^{commit}" >/dev/null; then
    log "buf breaking: skipped: $against_ref does not exist in this clone"
elif ! git cat-file -e "$against_ref:buf.yaml" 2>/dev/null; then
    log "buf breaking: skipped: $against_ref has no buf.yaml"
else
    log "buf breaking --against '.git#ref=$against_ref'"
    if "$buf" breaking --against ".git#ref=$against_ref"; then
        log "buf breaking: no findings"
    else
        log "buf breaking: FAILED (findings above)"
        status=1
    fi
fi

exit "$status"
