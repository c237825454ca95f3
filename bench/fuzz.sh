#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted bytes for longer than the test suite does (which gives
# each target CAIRN_FUZZ_SECONDS, 3 s by default):
#
#   bash bench/fuzz.sh [SECONDS] [TARGET...]    e.g. bash bench/fuzz.sh 600 tar load
#
# SECONDS per target (default 300); targets are the files of test/fuzz/ (default: all of them):
# tar, apply, manifest, load, registry, auth. The corpus each target grows is kept in
# .cache/fuzz/TARGET/ and read again by the next run; the inputs that crashed a target are in
# .cache/fuzz/TARGET/crashes/ (and printed, base64, with the error). CAIRN_FUZZ_SEED repeats a run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-300}
[ "$#" -gt 0 ] && shift
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for f in test/fuzz/*.test.ts; do t=${f##*/}; targets+=("${t%.test.ts}"); done
fi

bash scripts/ensure-deps.sh
status=0
for t in "${targets[@]}"; do
  CAIRN_FUZZ_SECONDS=$seconds CAIRN_FUZZ_CORPUS=$PWD/.cache/fuzz \
    node --test --test-reporter=spec --test-timeout=$(( (seconds + 120) * 1000 )) "build/test/fuzz/$t.test.js" || status=1
done
exit "$status"
