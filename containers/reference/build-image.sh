#!/usr/bin/env bash
# Builds mailflow/reference:<hash>, a FROM scratch image holding the static mailflow
# binary, and tags it mailflow/reference:latest too. The tag is a hash of the binary and
# the Dockerfile, so an unchanged tree reuses the image. Prints the image name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! docker info >/dev/null 2>&1; then
  echo "build-image.sh: no Docker engine answers (docker info failed)" >&2
  exit 3
fi
stage=$(mktemp -d "${TMPDIR:-/tmp}/mailflow-reference.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rootfs/etc/mailflow" "$stage/rootfs/spool" "$stage/rootfs/tmp"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$stage/rootfs/mailflow" ./cmd/mailflow)
cp "$here/Dockerfile" "$stage/"
tag=$(cat "$stage/rootfs/mailflow" "$here/Dockerfile" | sha256sum | cut -c1-12)
image="mailflow/reference:$tag"
if ! docker image inspect "$image" >/dev/null 2>&1; then
  docker build -q -t "$image" "$stage" >/dev/null 2>"$stage.err" || { cat "$stage.err" >&2; rm -f "$stage.err"; exit 1; }
  rm -f "$stage.err"
fi
docker tag "$image" mailflow/reference:latest
# Earlier builds stay: another run (a CI job beside this one) may be using its own.
# `make docker-clean` removes them.
echo "$image"
