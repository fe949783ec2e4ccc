#!/usr/bin/env bash
# Builds the Debian image of one third-party MTA under test without any registry, with
# containers/debian/build-image.sh: a minbase bookworm rootfs with the packages its
# profile lists, from the configured apt mirror, imported into Docker. The tag is a
# hash of the inputs (the package list and debconf answers among them), so an unchanged
# image is never rebuilt.
#
# The argument is a profile: a name under profiles/ or a directory (any argument with a
# "/" in it). The profile directory holds
#   packages  Debian packages to install, one or more a line; "#" starts a comment
#   debconf   (optional) lines for debconf-set-selections, fed before the install
#
#   containers/mta/build-image.sh postfix          -> mailflow/mta-postfix:<hash>
#   containers/mta/build-image.sh ./my-profiles/foo -> mailflow/mta-foo:<hash>
set -euo pipefail

arg=${1:?usage: build-image.sh PROFILE (a name under profiles/, or a directory)}
here=$(cd "$(dirname "$0")" && pwd)
case "$arg" in
  */*) [ -d "$arg" ] || { echo "build-image.sh: profile directory $arg not found" >&2; exit 2; }
       dir=$(cd "$arg" && pwd) ;;
  *)   dir="$here/../../profiles/$arg"
       [ -d "$dir" ] || { echo "build-image.sh: unknown profile '$arg' (have: $(cd "$here/../../profiles" && for d in */packages; do printf '%s ' "${d%/packages}"; done))" >&2; exit 2; } ;;
esac
[ -f "$dir/packages" ] || { echo "build-image.sh: $dir/packages not found: a profile lists the Debian packages of its image there" >&2; exit 2; }
# Docker repository names are lower case, of [a-z0-9._-].
mta=$(basename "$dir" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9._\n-' '-')
pkgs=$(sed 's/#.*//' "$dir/packages" | xargs)
[ -n "$pkgs" ] || { echo "build-image.sh: $dir/packages lists no package" >&2; exit 2; }
debconf=""
[ ! -f "$dir/debconf" ] || debconf=$(sed 's/^[[:space:]]*#.*//; /^[[:space:]]*$/d' "$dir/debconf")
# shellcheck disable=SC2086 # the package list is meant to split
DEBCONF=$debconf exec "$here/../debian/build-image.sh" "mta-$mta" $pkgs
