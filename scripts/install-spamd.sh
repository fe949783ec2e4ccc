#!/bin/sh
# Finds or installs SpamAssassin's spamd for the content filter specs (FILTER-013):
# Debian's spamd, with apt-get, as root. The specs start spamd themselves with a site
# configuration of their own on a loopback port, and score with the rules the package
# ships (GTUBE among them); they neither run sa-update nor use a spamd the system may
# start. Prints one line when it installs or cannot, none when spamd is already there.
# Without spamd those specs are N/A in-process, with the reason; under CI=true that
# fails instead, so a gate never passes on a clause it did not judge.
set -u
if command -v spamd >/dev/null 2>&1 || [ -x /usr/sbin/spamd ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "spamd: not installed, and installing spamd needs root and apt-get: FILTER-013 will be N/A in-process"
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends spamd >/dev/null 2>&1; then
  echo "spamd: installed Debian's spamd ($(/usr/sbin/spamd --version 2>/dev/null | head -1 || echo spamd)) for FILTER-013"
else
  echo "spamd: apt-get install spamd failed: FILTER-013 will be N/A in-process"
  [ "${CI:-}" = true ] && exit 1
fi
exit 0
