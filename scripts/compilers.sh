# Sourced by scripts/ensure-deps.sh and scripts/node-line.sh before they compile native addons
# (better-sqlite3, zstd-napi, Cairn's own): node-gyp builds with every core (JOBS), and through
# ccache when it is installed. The second Node.js line then takes SQLite's amalgamation (two
# minutes of one core, the same object for every Node.js) from that cache instead of compiling it
# again. The cache lives where the tests keep what they build between runs ($CAIRN_TEST_CACHE, else
# /var/cache/cairn-test as root, see test/helpers/rootfs.ts), so that another clone on the same
# machine (a CI run) compiles nothing that an earlier one did; without root, in .cache/ccache/.
export JOBS=${JOBS:-max}
if command -v ccache >/dev/null 2>&1 && [ -z "${CAIRN_NO_CCACHE:-}" ]; then
  if [ -z "${CCACHE_DIR:-}" ]; then
    if [ -n "${CAIRN_TEST_CACHE:-}" ]; then
      CCACHE_DIR=$CAIRN_TEST_CACHE/ccache
    elif [ "$(id -u)" = 0 ]; then
      CCACHE_DIR=/var/cache/cairn-test/ccache
    else
      CCACHE_DIR=$PWD/.cache/ccache
    fi
  fi
  export CCACHE_DIR
  export CC=${CC:-ccache gcc} CXX=${CXX:-ccache g++}
fi
