#!/bin/sh
# Finds or installs ClamAV's daemon for the antivirus specs (FILTER-009, FILTER-010):
# Debian's clamav-daemon, with apt-get, as root. The specs start clamd themselves with
# a configuration and a one-line signature database of their own; they neither run
# freshclam nor use a clamd the system may start. Prints one line when it installs or
# cannot, none when clamd is already there. Without clamd those specs are N/A
# in-process, with the reason; under CI=true that fails instead, so a gate never
# passes on clauses it did not judge.
set -u
if command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "clamd: not installed, and installing clamav-daemon needs root and apt-get: FILTER-009 and FILTER-010 will be N/A in-process"
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clamav-daemon >/dev/null 2>&1; then
  echo "clamd: installed Debian's clamav-daemon ($(/usr/sbin/clamd --version 2>/dev/null || echo clamd)) for FILTER-009 and FILTER-010"
else
  echo "clamd: apt-get install clamav-daemon failed: FILTER-009 and FILTER-010 will be N/A in-process"
  [ "${CI:-}" = true ] && exit 1
fi
exit 0
