#!/usr/bin/env bash
# The whole test suite: installs what is missing (Debian packages, node_modules), builds, then
# runs every test twice: on this machine's Node.js, measuring line and branch coverage (c8) and
# failing below the floor, and again on Node.js 24 from the npm registry (scripts/node-line.sh).
# Before the runs, the lint (eslint, dependency-cruiser, knip): a finding fails the suite.
# Stops every process the tests started.
#
# CAIRN_TEST_NODE_LINES="" skips the second run (e.g. while iterating); CAIRN_TEST_NODE_LINES=22.23.5
# runs on another line instead. CAIRN_FUZZ_SECONDS: the time each fuzz target gets (test/fuzz/).
# CAIRN_CHAOS_ROUNDS: rounds of the registry chaos tests (test/registry/chaos.test.ts; default 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Line and branch coverage of src/ by the suite on the machine's Node.js, counted in every process
# that runs build/src/ (the bundled command, build/cli/, is left out: c8 cannot map a bundle's
# lines back to src/). The run fails below these floors: raise them as tests are added, never
# lower them.
COVERAGE_LINES=86
COVERAGE_BRANCHES=78
# The other Node.js lines the suite runs on, after the machine's.
NODE_LINES=${CAIRN_TEST_NODE_LINES-24.22.3}
# Test files run this many at a time (node --test's --test-concurrency): most of a file's time is
# spent waiting (daemons starting, containers, registries), and every file keeps to its own stores,
# daemons, ports and names, so files overlap well even on two cores.
CONCURRENCY=${CAIRN_TEST_CONCURRENCY:-3}
# Fuzzing in the suite is a smoke test: a few seconds per target per run (bench/fuzz.sh runs longer).
export CAIRN_FUZZ_SECONDS=${CAIRN_FUZZ_SECONDS:-3}

bash scripts/ensure-deps.sh

# An explicit list of the test files: Node.js 20 takes no globs, and from 21 on a folder given to
# `node --test` is taken for a module. The list comes from the sources, so that a test compiled
# before its source was deleted (tsc leaves it in build/) does not run.
shopt -s globstar nullglob
files=()
for src in test/**/*.test.ts; do
  js=${src%.ts}.js
  if [ ! -f "build/$js" ]; then
    echo "test.sh: $src has not been built (build/$js)" >&2
    exit 1
  fi
  files+=("$js")
done
if [ "${#files[@]}" -eq 0 ]; then
  echo "test.sh: no test files in test/" >&2
  exit 1
fi

# Each run is a session of its own, so that whatever the tests leave running (a dockerd, a
# registry, a container) is stopped with them.
tests=
stop() {
  [ -n "$tests" ] || return 0
  kill -TERM -- "-$tests" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- "-$tests" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL -- "-$tests" 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

# Each part's output is also kept in .cache/test-logs/, so that when a part fails, the end of the
# output can say what failed (a log that only keeps its last lines, as CI's does, then still shows it).
logs=.cache/test-logs
rm -rf "$logs"
mkdir -p "$logs"
failed=()

# run LABEL DIR COMMAND...: runs COMMAND in DIR in its own session; prints how long it took
run() {
  local label=$1 dir=$2 start=$SECONDS status=0 log
  shift 2
  log="$PWD/$logs/${label//[^A-Za-z0-9.]/_}.log"
  (cd "$dir" && exec setsid "$@") > >(tee "$log") 2>&1 &
  tests=$!
  wait "$tests" || status=$?
  stop
  tests=
  printf 'test.sh: %s: %d s, exit %d\n' "$label" "$((SECONDS - start))" "$status" >&2
  if [ "$status" -ne 0 ]; then failed+=("$label:$log"); fi
  return "$status"
}

# summary: for each part that failed, its failing tests (the spec reporter's closing list) and the
# last lines it printed (a coverage floor or a crash says so there)
summary() {
  local entry label log
  [ "${#failed[@]}" -gt 0 ] || return 0
  printf '\ntest.sh: what failed\n' >&2
  for entry in "${failed[@]}"; do
    label=${entry%%:*} log=${entry#*:}
    printf '\n== %s ==\n' "$label" >&2
    # the closing list, without the stack frames under each failure
    sed -n '/failing tests:/,$p' "$log" | grep -v '^ *at ' | head -n 200 >&2 || true
    printf -- '-- its last lines --\n' >&2
    grep -v '^ *at ' "$log" | tail -n 15 >&2 || true
  done
}

# the default bridge, its rules and netavark's shared firewall chains stay between containers (as
# Docker's do); if the suite made them, they go at its end once no container uses them, so the
# machine is as it was
netavark_chains_before=$( (iptables-save 2>/dev/null || true) | grep -c '^:NETAVARK' || true)
# the parent cgroup of containers (`cairn` in each hierarchy, as Docker's `docker`): if the suite
# made it, it goes at the end once empty (rmdir refuses a cgroup that still has members)
cgroup_parents_before=0
for d in /sys/fs/cgroup/*/cairn /sys/fs/cgroup/cairn; do
  if [ -d "$d" ]; then cgroup_parents_before=$((cgroup_parents_before + 1)); fi
done
remove_cgroup_parents() {
  [ "$cgroup_parents_before" = 0 ] || return 0
  for d in /sys/fs/cgroup/*/cairn /sys/fs/cgroup/cairn; do
    [ -d "$d" ] || continue
    # a container's cgroup left by the suite (a leak to look into): said, and removed when empty
    for c in "$d"/*/; do
      [ -d "$c" ] || continue
      printf 'test.sh: a container cgroup was left: %s\n' "$c" >&2
      rmdir "$c" 2>/dev/null || true
    done
    rmdir "$d" 2>/dev/null || true
  done
}
remove_idle_chains() {
  [ "$netavark_chains_before" = 0 ] || return 0
  node -e "import('./build/src/network/index.js').then((m) => new m.NetworkManager().removeIdleChains())" 2>/dev/null || true
}

status=0

# The lint, once, on the machine's Node.js: eslint's type-checked rules (eslint.config.mjs), the
# folder layering of src/ (.dependency-cruiser.cjs) and unused files, exports and dependencies
# (knip.jsonc). Any finding fails the suite, as a failing test does. eslint keeps a cache of the
# files it passed (keyed on their content) in .cache/eslint/, so that a run checks what changed.
lint() {
  local s=0
  node_modules/.bin/eslint --cache --cache-location .cache/eslint/ --cache-strategy content \
    --max-warnings 0 src test bench scripts || s=1
  node_modules/.bin/depcruise src --config .dependency-cruiser.cjs || s=1
  node_modules/.bin/knip || s=1
  return "$s"
}
lint_start=$SECONDS lint_status=0
lint > >(tee "$logs/lint.log") 2>&1 || lint_status=$?
printf 'test.sh: lint: %d s, exit %d\n' "$((SECONDS - lint_start))" "$lint_status" >&2
if [ "$lint_status" -ne 0 ]; then
  status=$lint_status
  failed+=("lint:$PWD/$logs/lint.log")
fi

rm -rf .cache/coverage
run "Node.js $(node --version)" . node_modules/.bin/c8 \
  --temp-directory .cache/coverage/tmp --reports-dir .cache/coverage \
  --reporter text-summary --reporter json-summary \
  --include 'build/src/**' --exclude 'build/cli/**' \
  --check-coverage --lines "$COVERAGE_LINES" --branches "$COVERAGE_BRANCHES" \
  node --test --test-reporter=spec --test-concurrency="$CONCURRENCY" "${files[@]/#/build/}" || status=$?

for version in $NODE_LINES; do
  tree=$(bash scripts/node-line.sh "$version") || { status=1 failed+=("Node.js v$version setup:/dev/null"); continue; }
  run "Node.js v$version" "$tree" env PATH="$PWD/.cache/node/$version/bin:$PATH" \
    node --test --test-reporter=spec --test-concurrency="$CONCURRENCY" "${files[@]/#/build/}" || status=$?
done
remove_idle_chains
remove_cgroup_parents
summary
exit "$status"
