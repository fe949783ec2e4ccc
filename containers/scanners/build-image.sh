#!/usr/bin/env bash
# Builds mailflow/scanners:<hash>, the Debian image of the daemons the reference's Edges
# scan with in the containers target: ClamAV's clamd and SpamAssassin's spamd. No
# freshclam and no sa-update ever run in it: the harness gives clamd a one-line
# signature database and spamd the rules the package ships (fixtures/clamdaemon,
# fixtures/spamdaemon render both configurations). Prints the image name; an unchanged
# image is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../debian/build-image.sh" scanners clamav-daemon spamd
