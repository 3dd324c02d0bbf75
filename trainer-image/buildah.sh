#!/usr/bin/env bash
# buildah as this project runs it: no daemon, chroot isolation, and its store under the kinfer
# cache so a warm cache keeps built images. Storage: the kernel's overlay where it works (root, and
# a test mount succeeds), else vfs, which works anywhere but copies a whole image for every layer
# and every container (creating a container of the kinfer image took 10-30 s with vfs here, 0.1 s
# with overlay). Each driver has its own store; KINFER_BUILDAH_DRIVER picks one.
# Usage: trainer-image/buildah.sh <buildah arguments...>
set -euo pipefail
cache="${KINFER_CACHE:-$HOME/.cache/kinfer}"
command -v buildah >/dev/null || { echo "buildah is not installed (Debian: apt-get install buildah)" >&2; exit 127; }
driver=${KINFER_BUILDAH_DRIVER:-}
if [ -z "$driver" ]; then
  driver=vfs
  if [ "$(id -u)" -eq 0 ] && grep -qw overlay /proc/filesystems; then
    mkdir -p "$cache/containers"
    probe=$(mktemp -d "$cache/containers/overlay-probe.XXXXXX")
    mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
    if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
      umount "$probe/merged"
      driver=overlay
    fi
    rm -rf "$probe"
  fi
fi
if [ "$driver" = vfs ]; then store=storage run=run; else store=storage-$driver run=run-$driver; fi
exec buildah --storage-driver "$driver" --root "$cache/containers/$store" --runroot "$cache/containers/$run" "$@"
