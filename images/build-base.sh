#!/usr/bin/env bash
# Builds localhost/orderly-node:20-bookworm-slim, a stand-in for the official node:20-bookworm-slim,
# on machines that cannot pull from a registry: a minimal Debian bookworm root made by mmdebstrap
# from Debian's own packages (bookworm, -updates and -security, so Chromium is current), plus this
# host's Node 20 and npm in the official image's places (/usr/local/bin, /usr/local/lib/node_modules).
# Usage: images/build-base.sh [tag]   (make images passes its store in STORE_FLAGS)
set -euo pipefail
TAG=${1:-localhost/orderly-node:20-bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
NODE_BIN=$(command -v node)
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || { echo "build-base: the host's node is older than 20; install Node 20 first" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/orderly-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mmdebstrap --variant=minbase --include=ca-certificates --mode=root \
  --aptopt='APT::Install-Recommends "false"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  bookworm "$WORK/rootfs" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY bookworm-security main"
install -D -m 0755 "$NODE_BIN" "$WORK/rootfs/usr/local/bin/node"
mkdir -p "$WORK/rootfs/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$WORK/rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$WORK/rootfs/usr/local/bin/npx"
# The official image has a user "node" (uid 1000); the runner image makes its own fixed user.
tar --numeric-owner -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
read -r -a flags <<<"${STORE_FLAGS:-}"
ctr=$(buildah "${flags[@]}" from scratch)
buildah "${flags[@]}" add "$ctr" "$WORK/rootfs.tar" /
buildah "${flags[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$(node -p process.versions.node)" --cmd node "$ctr"
buildah "${flags[@]}" commit --rm "$ctr" "$TAG"
echo "build-base: $TAG ($(node -p process.versions.node))"
