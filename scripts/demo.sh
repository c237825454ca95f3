#!/usr/bin/env bash
# The main job: the article's workflow on Cairn's embedded defaults: the default store
# (/var/lib/cairn as root) and Cairn's own registry. Installs what is missing, builds, then runs
# each step and shows its output, as a user following the article with `cairn` for `docker`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-deps.sh

cairn() { "$PWD/bin/cairn" "$@"; }
step() { printf '\n\033[1m$ cairn %s\033[0m\n' "$*"; cairn "$@"; }

work=$(mktemp -d)
registry_pid=
container=
cleanup() {
  [ -n "$container" ] && cairn rm -f "$container" >/dev/null 2>&1 || true
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Cairn's registry, with one user (huzd) in an htpasswd file, on a free loopback port.
password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
printf '%s' "$password" | cairn registry htpasswd huzd >"$work/htpasswd"
"$PWD/bin/cairn" registry serve --root "$work/registry" --listen 127.0.0.1:0 --htpasswd "$work/htpasswd" --access-log none >/dev/null 2>"$work/registry.log" &
registry_pid=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$work/registry.log" && break; sleep 0.1; done
registry=$(sed -n 's#.*listening on https\?://\([^ /]*\).*#\1#p' "$work/registry.log" | head -n 1)
[ -n "$registry" ] || { cat "$work/registry.log" >&2; exit 1; }
printf 'Cairn registry on %s (user huzd)\n' "$registry"

# A base image: pulled when the network allows, else a small root filesystem built here from
# Debian's busybox-static.
if ! timeout 20 "$PWD/bin/cairn" pull -q busybox:latest >/dev/null 2>&1; then
  mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/root" "$work/rootfs/tmp" "$work/rootfs/usr/bin"
  cp /bin/busybox "$work/rootfs/bin/busybox"
  for app in sh ls cat echo mkdir rm vi; do ln -s busybox "$work/rootfs/bin/$app"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$work/rootfs/etc/group"
  tar --numeric-owner -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
  step import -m "busybox base" -c 'CMD ["/bin/sh"]' "$work/rootfs.tar.gz" busybox:latest
fi

# A container that changes files ("installs vim"), committed with -m and -a.
container=cairn-demo-$$
step run --name "$container" busybox:latest sh -c 'echo "#!/bin/sh" > /usr/bin/vim && echo "echo vim 9.0" >> /usr/bin/vim && chmod 755 /usr/bin/vim && echo "set number" > /root/.vimrc'
step diff "$container"
id=$(cairn commit -m "ubuntu install vim" -a "huzd" "$container" ubuntuwithvim:1.0.0)
printf '\n\033[1m$ cairn commit -m "ubuntu install vim" -a "huzd" %s ubuntuwithvim:1.0.0\033[0m\n%s\n' "$container" "$id"
cairn rm "$container" >/dev/null
container=
step images
step history ubuntuwithvim:1.0.0

# login, tag, push
printf '\n\033[1m$ cairn login --username=huzd --password-stdin %s\033[0m\n' "$registry"
export DOCKER_CONFIG="$work/docker-config"
printf '%s' "$password" | cairn login --username=huzd --password-stdin "$registry"
short=${id#sha256:}
step tag "${short:0:12}" "$registry/huzd/test:1.0.0"
step push "$registry/huzd/test:1.0.0"

# remove it, pull it back (the base layer already exists), run it
step rmi -f "${short:0:3}"
step images
step pull "$registry/huzd/test:1.0.0"
step images
step run --rm "$registry/huzd/test:1.0.0" vim
