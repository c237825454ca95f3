#!/usr/bin/env bash
# The main job: the article's image workflow on Cairn's embedded defaults (the default store,
# /var/lib/cairn as root). Installs what is missing, builds, then runs each step and shows
# its output, as a user following the article would.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-deps.sh

cairn() { node "$PWD/build/src/cli/main.js" "$@"; }
step() { printf '\n\033[1m$ cairn %s\033[0m\n' "$*"; cairn "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A base image: a small root filesystem made from Debian's busybox-static.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/root" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for app in sh ls cat echo vi; do ln -s busybox "$work/rootfs/bin/$app"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$work/rootfs/etc/group"
tar --numeric-owner -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .

step import -m "busybox base" -c 'CMD ["/bin/sh"]' "$work/rootfs.tar.gz" cairn-demo/base:1.0
id=$(cairn images -q cairn-demo/base:1.0)
step images cairn-demo/base
step tag "$id" registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0
step images
step history cairn-demo/base:1.0
step save -o "$work/base.tar" cairn-demo/base:1.0
step save --format oci -o "$work/base-oci.tar" registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0
step rmi -f "${id:0:3}"
step images
step load -i "$work/base.tar"
step load -i "$work/base-oci.tar"
step images
step system df
printf '\nThe article'"'"'s remaining steps (run, commit, login, push, pull) arrive with the container engine and the registry.\n'
