#!/usr/bin/env bash
# buildah as this project runs it: no daemon, vfs storage (works without overlay or fuse),
# chroot isolation, and its store under the kinfer cache so a warm cache keeps built images.
# Usage: trainer-image/buildah.sh <buildah arguments...>
set -euo pipefail
cache="${KINFER_CACHE:-$HOME/.cache/kinfer}"
command -v buildah >/dev/null || { echo "buildah is not installed (Debian: apt-get install buildah)" >&2; exit 127; }
exec buildah --storage-driver vfs --root "$cache/containers/storage" --runroot "$cache/containers/run" "$@"
