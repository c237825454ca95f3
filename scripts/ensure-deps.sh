#!/usr/bin/env bash
# Installs what Cairn's tests and benchmarks need on a Debian machine that may have only Node.js:
# the peer tools (Debian packages, with apt-get), then node_modules (npm ci), then the build (tsc).
# Idempotent and quiet when nothing is missing. Called by scripts/test.sh and scripts/demo.sh.
#
# As root: installs what is missing; fails if it can't.
# Not root: prints what is missing and the command that installs it; fails only when a package that the
# unprivileged tests need is missing (the root-only tools are then reported, and their tests skip).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Needed by tests that run without root (tar interop, xattrs, zstd layers); libdeflate-dev for the
# native addon that makes gzip (native/, built by `npm ci`; without it gzip falls back to zlib).
REQUIRED=(tar attr zstd libdeflate-dev)
# Needed by the interop tests and benchmarks, which need root anyway (dockerd, debootstrap, netns);
# `time` is GNU time, which the benchmarks read peak RSS from; librsvg2-bin draws the soak's curve;
# `tini` is what `--init` runs in a container; gcc and libc6-dev build the static probe the
# confinement tests run inside containers; docker-compose and openssl serve the Engine API tests;
# ccache keeps the second Node.js line from compiling SQLite again (scripts/compilers.sh).
ROOT_ONLY=(docker.io docker-compose openssl skopeo debootstrap busybox-static runc pigz iproute2 time docker-registry apache2-utils crun tmux curl buildah netavark aardvark-dns iptables util-linux wrk librsvg2-bin tini gcc libc6-dev ccache)

log() { printf 'ensure-deps: %s\n' "$*" >&2; }

installed() { # package -> exit 0 when dpkg has it fully installed
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

missing_of() { # packages... -> prints the missing ones
  local p
  for p in "$@"; do installed "$p" || printf '%s\n' "$p"; done
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  log "not a Debian system (no dpkg-query): install by hand: ${REQUIRED[*]} ${ROOT_ONLY[*]}"
  exit 1
fi

mapfile -t missing_required < <(missing_of "${REQUIRED[@]}")
mapfile -t missing_root < <(missing_of "${ROOT_ONLY[@]}")
missing=("${missing_required[@]}" "${missing_root[@]}")

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "${#missing_required[@]}" -gt 0 ]; then
      log "required for the tests: ${missing_required[*]}"
      exit 1
    fi
    log "only root's tests use these; they will be skipped"
  else
    export DEBIAN_FRONTEND=noninteractive
    updated=no
    apt_update() {
      [ "$updated" = yes ] && return 0
      log "apt-get update"
      apt-get update -qq >/dev/null
      updated=yes
    }
    # Update first only when apt knows no candidate for some package (empty or stale lists).
    for p in "${missing[@]}"; do
      if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then apt_update; break; fi
    done
    # Don't let package scripts start services (a system dockerd): the tests start their own.
    # Debian's policy-rc.d convention; an existing one is left alone.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    log "apt-get install ${missing[*]}"
    apt_log=$(mktemp)
    install() { apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; }
    if ! install; then
      # A stale list names files the mirror no longer has: refresh once and retry.
      if [ "$updated" = yes ] || ! apt_update || ! install; then
        tail -n 30 "$apt_log" >&2
        log "apt-get install failed (full log: $apt_log)"
        exit 1
      fi
    fi
    rm -f "$apt_log"
    mapfile -t still < <(missing_of "${missing[@]}")
    if [ "${#still[@]}" -gt 0 ]; then
      log "still missing after apt-get install: ${still[*]}"
      exit 1
    fi
  fi
fi

# node_modules: npm ci when absent or older than the lockfile (npm writes node_modules/.package-lock.json).
# shellcheck source=scripts/compilers.sh
. scripts/compilers.sh
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
# the native addons (npm ci builds them; again here when one is missing, e.g. libdeflate-dev came
# later, or older than its source)
deflate=native/build/Release/cairn_deflate.node
sys=native/sys/build/Release/cairn_sys.node
if [ ! -f $deflate ] || [ ! -f $sys ] || [ native/deflate.c -nt $deflate ] || [ native/sys/sys.c -nt $sys ]; then
  log "building the native addons"
  sh scripts/build-native.sh
fi

npm run --silent build
