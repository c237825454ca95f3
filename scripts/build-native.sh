#!/bin/sh
# Builds Cairn's Node-API addons with node-gyp: native/sys/ (the mount and umount2 system calls,
# instead of a mount(8) process per mount, xattr reads instead of getfattr processes, a folder's
# lstats in one call, a blob's early write-out or O_DIRECT write, read-ahead hints) and native/
# (gzip members made by libdeflate).
# Run by `npm ci` / `npm install` (the package's install script), by scripts/ensure-deps.sh, and by
# scripts/node-line.sh for another Node.js line (`sh scripts/build-native.sh DIR`).
#
# It never fails the install: without a compiler or Node's headers, it says so in one line and Cairn
# mounts with mount(8) and compresses gzip with zlib instead (slower, also valid; see
# src/mount/index.ts and src/layer/deflate.ts); without libdeflate's headers (Debian:
# libdeflate-dev) only the gzip addon is left out. The binary's ABI is Node-API's: one build serves every Node.js
# from 18 on. Node's headers: npm's `nodedir` (npm_config_nodedir), else the ones installed beside
# the running node (/usr/include/node for Debian's and NodeSource's packages, <prefix>/include/node
# for nodejs.org's tarballs), else node-gyp downloads them.
# The project folder to build in: the argument (scripts/node-line.sh builds in its tree), else this
# script's project.
cd "${1:-$(dirname "$0")/..}" || exit 0

say() { printf 'cairn: %s\n' "$*" >&2; }

if [ "${CAIRN_SKIP_NATIVE:-}" = 1 ]; then
  say "CAIRN_SKIP_NATIVE=1: native addons not built (mounts use mount(8), gzip uses zlib)"
  exit 0
fi
node=${npm_node_execpath:-$(command -v node)}
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix=$(dirname "$(dirname "$node")")
  if [ -f "$prefix/include/node/node_api.h" ]; then
    npm_config_nodedir=$prefix
    export npm_config_nodedir
  fi
fi

# node-gyp: npm puts its own on the PATH of install scripts; else the one npm ships
if command -v node-gyp >/dev/null 2>&1; then
  gyp() { node-gyp "$@"; }
else
  npm_root=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  gyp_js=$npm_root/node_modules/node-gyp/bin/node-gyp.js
  if [ ! -f "$gyp_js" ]; then
    say "node-gyp not found: native addon not built, gzip uses zlib"
    exit 0
  fi
  gyp() { "$node" "$gyp_js" "$@"; }
fi

# build DIR WITHOUT: builds the addon in DIR; says what is done without it when it does not build
build() {
  log=$(mktemp)
  if gyp rebuild --directory "$1" >"$log" 2>&1; then
    rm -f "$log"
  else
    tail -n 15 "$log" >&2
    rm -f "$log"
    say "the native addon in $1 did not build (above): $2"
  fi
}

build native/sys "mounts use mount(8), xattrs are read with getfattr"
if printf '#include <libdeflate.h>\n' | ${CC:-cc} -E -x c - >/dev/null 2>&1; then
  build native "gzip uses zlib"
else
  say "libdeflate's headers are missing (Debian: apt-get install libdeflate-dev): gzip addon not built, gzip uses zlib"
fi
exit 0
