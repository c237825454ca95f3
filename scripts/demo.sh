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

# The base image: Debian, pulled when Docker Hub answers, else made here with debootstrap from
# the host's own Debian mirror (kept in the store, so later runs reuse it). With no mirror at all,
# a small busybox root filesystem built from Debian's busybox-static.
mirror=$( (sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null; \
           sed -n 's/^deb \(\[[^]]*\] \)\?\(http[^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null) | grep -v security | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
base=
if cairn image inspect debian:bookworm >/dev/null 2>&1; then
  base=debian:bookworm
elif timeout 20 "$PWD/bin/cairn" pull -q debian:bookworm >/dev/null 2>&1; then
  base=debian:bookworm
elif command -v debootstrap >/dev/null && timeout 600 debootstrap --variant=minbase bookworm "$work/debian" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tar --numeric-owner -C "$work/debian" -cf "$work/debian.tar" .
  rm -rf "$work/debian"
  step import -m "debian bookworm (debootstrap)" -c 'CMD ["bash"]' "$work/debian.tar" debian:bookworm
  base=debian:bookworm
fi

busybox_base() {
  cairn image inspect busybox:latest >/dev/null 2>&1 && return 0
  timeout 20 "$PWD/bin/cairn" pull -q busybox:latest >/dev/null 2>&1 && return 0
  mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/root" "$work/rootfs/tmp" "$work/rootfs/usr/bin"
  cp /bin/busybox "$work/rootfs/bin/busybox"
  for app in sh ls cat echo mkdir rm vi; do ln -s busybox "$work/rootfs/bin/$app"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$work/rootfs/etc/group"
  tar --numeric-owner -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
  step import -m "busybox base" -c 'CMD ["/bin/sh"]' "$work/rootfs.tar.gz" busybox:latest
}

# A container that installs vim (the article's step: apt-get in a container on the default
# network, which reaches the mirror through the bridge's NAT), committed with -m and -a.
container=cairn-demo-$$
check=(vim --version)
if [ -n "$base" ] && step run --name "$container" "$base" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends vim'; then
  :
else
  # no mirror answered: the same steps with a stand-in for vim on busybox
  [ -n "$base" ] && printf '\n(no Debian mirror answered from the container: a stand-in for vim on busybox instead)\n'
  cairn rm -f "$container" >/dev/null 2>&1 || true
  busybox_base
  check=(vim)
  step run --name "$container" busybox:latest sh -c 'echo "#!/bin/sh" > /usr/bin/vim && echo "echo vim 9.0" >> /usr/bin/vim && chmod 755 /usr/bin/vim && echo "set number" > /root/.vimrc'
fi
printf '\n\033[1m$ cairn diff %s | head\033[0m\n' "$container"
cairn diff "$container" | head -n 10
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
printf '\n\033[1m$ cairn run --rm %s %s | head -n 1\033[0m\n' "$registry/huzd/test:1.0.0" "${check[*]}"
cairn run --rm "$registry/huzd/test:1.0.0" "${check[@]}" | head -n 1
