# Sourced by scripts/ensure-deps.sh and scripts/node-line.sh before they compile native addons
# (better-sqlite3, zstd-napi, Cairn's own): node-gyp builds with every core (JOBS), and through
# ccache when it is installed, with its cache in .cache/ccache/. The second Node.js line then
# takes SQLite's amalgamation (two minutes of one core, the same object for every Node.js) from
# that cache instead of compiling it again.
export JOBS=${JOBS:-max}
if command -v ccache >/dev/null 2>&1 && [ -z "${CAIRN_NO_CCACHE:-}" ]; then
  export CCACHE_DIR=${CCACHE_DIR:-$PWD/.cache/ccache}
  export CC=${CC:-ccache gcc} CXX=${CXX:-ccache g++}
fi
