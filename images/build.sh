#!/usr/bin/env bash
# `make images`: builds orderly-runner and orderly-control-room with buildah (vfs storage, chroot
# isolation: no Docker engine, no daemon). The base is the official node:20-bookworm-slim when it can
# be pulled, else the stand-in images/build-base.sh makes with mmdebstrap from Debian's packages.
# Prints each image's size and build time.
set -euo pipefail
cd "$(dirname "$0")/.."
. images/store.sh
command -v buildah >/dev/null || { echo "images: buildah is missing (apt-get install buildah mmdebstrap)" >&2; exit 1; }
OFFICIAL=docker.io/library/node:20-bookworm-slim
LOCAL=localhost/orderly-node:20-bookworm-slim
if [ -n "${BASE_IMAGE:-}" ]; then
  base=$BASE_IMAGE
elif timeout 60 bah pull -q "$OFFICIAL" >/dev/null 2>&1; then
  base=$OFFICIAL
else
  base=$LOCAL
  if ! bah inspect --type image "$LOCAL" >/dev/null 2>&1; then
    echo "images: $OFFICIAL cannot be pulled; making $LOCAL with mmdebstrap"
    start=$SECONDS
    STORE_FLAGS="${STORE_FLAGS[*]}" images/build-base.sh "$LOCAL"
    echo "images: base built in $((SECONDS - start)) s"
  fi
fi
# A TLS-inspecting proxy's CA (this machine has one) as a build secret, never in a layer.
secret=()
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ] && secret=(--secret "id=build_ca,src=$NODE_EXTRA_CA_CERTS")
mkdir -p .orderly/images
for pair in "runner:Dockerfile.runner" "control-room:images/Dockerfile.control-room"; do
  name=${pair%%:*} file=${pair#*:}
  start=$SECONDS
  if ! bah build --format docker --network host --layers "${secret[@]}" --build-arg "BASE_IMAGE=$base" -f "$file" -t "localhost/orderly-$name:latest" . >".orderly/images/$name.log" 2>&1; then
    tail -30 ".orderly/images/$name.log" >&2
    echo "images: orderly-$name failed (log: .orderly/images/$name.log)" >&2
    exit 1
  fi
  echo "images: localhost/orderly-$name:latest from $base in $((SECONDS - start)) s; $(bah images --format '{{.Size}}' "localhost/orderly-$name:latest" | head -1)"
done
