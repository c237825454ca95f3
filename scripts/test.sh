#!/usr/bin/env bash
# The whole test suite: installs what is missing (Debian packages, node_modules), builds,
# runs every test, and stops every process the tests started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-deps.sh

# The tests run in a session of their own, so that whatever they leave running
# (a dockerd, a registry, a container) is stopped with them.
setsid node --test build/test/ &
tests=$!
stop() {
  kill -TERM -- "-$tests" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- "-$tests" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL -- "-$tests" 2>/dev/null || true
}
trap stop EXIT INT TERM
status=0
wait "$tests" || status=$?
exit "$status"
