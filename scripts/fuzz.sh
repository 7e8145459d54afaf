#!/usr/bin/env bash
# Fuzzes kpid's request decoding, conversion, validation and computation with cargo-fuzz
# (libFuzzer + AddressSanitizer).
#
#   scripts/fuzz.sh                  # every target for 60 s each
#   scripts/fuzz.sh 300              # every target for 300 s each
#   scripts/fuzz.sh 60 compute_request
#
# Targets (fuzz/fuzz_targets):
#   record_validation  bytes -> kpi.v1.PutRecordsRequest -> conversion + validation of each
#                      record; a valid record must survive the wire round trip unchanged
#   compute_request    bytes -> kpi.v1.ComputeRequest and BatchComputeRequest -> the
#                      server's conversion + the engine over a small in-memory store
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer); with only a stable toolchain,
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them. The fuzz project is not a workspace
# member: it builds into fuzz/target. The corpus grows in fuzz/corpus/<target> (seeded
# from fuzz/seeds/<target>); a crash is saved in fuzz/artifacts/<target> and makes this
# script fail.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(record_validation compute_request)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# Use nightly features on the stable toolchain unless a nightly is the one in use.
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

for target in "${TARGETS[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  extra=()
  if [ -f "fuzz/$target.dict" ]; then
    extra+=("-dict=fuzz/$target.dict")
  fi
  echo "== cargo fuzz run $target for ${SECS}s"
  # -timeout: one input may take at most 10 s; -rss_limit_mb: 2 GiB.
  cargo fuzz run "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}"
done
echo "== fuzzing found no crash"
