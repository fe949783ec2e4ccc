#!/usr/bin/env bash
# Builds a Debian bookworm image of Debian packages without any registry: debootstrap a
# minbase rootfs from the configured apt mirror, apt-get install the packages inside it,
# then `docker import`. The tag is a hash of this script, the name, the package list and
# the debconf answers, so an unchanged image is never rebuilt. Prints the image name.
# The third-party MTAs' images (containers/mta) and the scanners' (containers/scanners)
# are built by it.
#
#   containers/debian/build-image.sh NAME PKG...   -> mailflow/NAME:<hash>
#
# DEBCONF holds debconf-set-selections lines answered before the install.
set -euo pipefail

name=${1:?usage: build-image.sh NAME PKG...}
shift
[ $# -gt 0 ] || { echo "build-image.sh: no packages for $name" >&2; exit 2; }
pkgs="$*"
debconf=${DEBCONF:-}
suite=bookworm
tag=$( (cat "$0"; echo "$name $suite $pkgs"; echo "$debconf") | sha256sum | cut -c1-12)
image="mailflow/$name:$tag"

if ! docker info >/dev/null 2>&1; then
  echo "build-image.sh: no Docker engine answers (docker info failed)" >&2
  exit 3
fi
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
# Builds of one image side by side (the worker processes of a parallel run) wait for
# the first, then find its image.
exec 9>"${TMPDIR:-/tmp}/mailflow-image-$name.lock"
flock 9
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  # Builds side by side (make mta-images, the scanners' image beside them) install it
  # once: the first takes the lock, the others wait and then find it. apt itself waits
  # for its lock rather than failing if something else holds it.
  exec 8>"${TMPDIR:-/tmp}/mailflow-debootstrap.lock"
  flock 8
  if ! command -v debootstrap >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq debootstrap >/dev/null
  fi
  flock -u 8
fi
# The mirror this machine's apt already uses; nothing else is reachable.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
[ -n "$mirror" ] || { echo "build-image.sh: no apt mirror configured" >&2; exit 2; }

root=$(mktemp -d "${TMPDIR:-/tmp}/mailflow-$name.XXXXXX")
trap '[ -n "${KEEP_ROOT:-}" ] || rm -rf "$root"' EXIT
# mktemp -d makes the directory 0700, and it becomes the chroot's (and the image's) "/".
# Every daemon that drops root then cannot traverse "/": exim4-config's postinst runs
# `exim -C ... -bV`, which drops to Debian-exim and fails with "user mail was not found"
# because /etc/passwd is unreachable. A root filesystem must be 0755.
chmod 0755 "$root"
log="$root.log"
fail() { echo "build-image.sh: $1 failed; last lines of $log:" >&2; tail -20 "$log" >&2; exit 1; }
# Two stages: a plain minbase system, then the packages installed with apt inside it.
# Maintainer scripts (exim4-config's above all) fail when debootstrap configures them
# among the base packages.
DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include=ca-certificates,iproute2 \
  "$suite" "$root" "$mirror" >"$log" 2>&1 || fail debootstrap
# Services must not start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
if [ -n "$debconf" ]; then
  printf '%s\n' "$debconf" | chroot "$root" debconf-set-selections
fi
# shellcheck disable=SC2086 # the package list is meant to split
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >>"$log" 2>&1 || fail "apt-get install $pkgs"
rm -f "$log" "$root/usr/sbin/policy-rc.d"
# Nothing in the image starts on its own; whoever runs it names the command.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
echo "$image"
