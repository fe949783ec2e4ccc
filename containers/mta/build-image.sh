#!/usr/bin/env bash
# Builds the Debian image of one third-party MTA under test (postfix, exim or
# opensmtpd) without any registry: debootstrap a minbase bookworm rootfs with the MTA's
# packages from the configured apt mirror, then `docker import` it. The tag is a hash of
# this script and the package list, so an unchanged image is never rebuilt.
#
#   containers/mta/build-image.sh postfix     -> mailflow/mta-postfix:<hash>
set -euo pipefail

mta=${1:?usage: build-image.sh postfix|exim|opensmtpd}
case "$mta" in
  # Cyrus SASL (sasldb auxprop + PLAIN/LOGIN) so the Postfix profile can offer AUTH.
  postfix)   pkgs="postfix libsasl2-modules sasl2-bin" ;;
  exim)      pkgs="exim4-daemon-light libidn12" ;;
  opensmtpd) pkgs="opensmtpd" ;;
  *) echo "build-image.sh: unknown MTA '$mta' (postfix, exim, opensmtpd)" >&2; exit 2 ;;
esac
suite=bookworm
here=$(cd "$(dirname "$0")" && pwd)
tag=$( (cat "$0"; echo "$suite $pkgs") | sha256sum | cut -c1-12)
image="mailflow/mta-$mta:$tag"

if ! docker info >/dev/null 2>&1; then
  echo "build-image.sh: no Docker engine answers (docker info failed)" >&2
  exit 3
fi
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
# The mirror this machine's apt already uses; nothing else is reachable.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
[ -n "$mirror" ] || { echo "build-image.sh: no apt mirror configured" >&2; exit 2; }

root=$(mktemp -d "${TMPDIR:-/tmp}/mailflow-mta-$mta.XXXXXX")
trap '[ -n "${KEEP_ROOT:-}" ] || rm -rf "$root"' EXIT
# mktemp -d makes the directory 0700, and it becomes the chroot's (and the image's) "/".
# Every daemon that drops root then cannot traverse "/": exim4-config's postinst runs
# `exim -C ... -bV`, which drops to Debian-exim and fails with "user mail was not found"
# because /etc/passwd is unreachable. A root filesystem must be 0755.
chmod 0755 "$root"
log="$root.log"
fail() { echo "build-image.sh: $1 failed; last lines of $log:" >&2; tail -20 "$log" >&2; exit 1; }
# Two stages: a plain minbase system, then the MTA installed with apt inside it. MTA
# maintainer scripts (exim4-config's above all) fail when debootstrap configures them
# among the base packages.
DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include=ca-certificates,iproute2 \
  "$suite" "$root" "$mirror" >"$log" 2>&1 || fail debootstrap
# Services must not start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
echo "postfix postfix/main_mailer_type select No configuration" | chroot "$root" debconf-set-selections
# shellcheck disable=SC2086 # the package list is meant to split
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >>"$log" 2>&1 || fail "apt-get install $pkgs"
rm -f "$log" "$root/usr/sbin/policy-rc.d"
# Nothing in the image starts on its own; the profile starts the MTA with its config.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
echo "$image"
