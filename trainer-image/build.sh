#!/usr/bin/env bash
# Builds trainer-image/Dockerfile with buildah (no Docker engine needed) and prints the image
# name. BASE_IMAGE defaults to the offline stand-in from local-base.sh; extra arguments go to
# `buildah bud` (e.g. --build-arg ONNXRUNTIME_NODE_INSTALL=cuda12).
# Usage: trainer-image/build.sh [image-name] [buildah bud args...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-localhost/kinfer:dev}
[ $# -gt 0 ] && shift
base=${BASE_IMAGE:-$("$here/local-base.sh")}
# A TLS-intercepting proxy's CA (as on the CI machines) reaches npm inside the build as a
# read-only mount; it is not copied into any layer.
ca_args=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  ca_args=(--volume "$NODE_EXTRA_CA_CERTS:/run/kinfer-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/kinfer-build-ca.crt)
fi
"$here/buildah.sh" bud --isolation chroot --network host --layers=false --quiet \
  --build-arg BASE_IMAGE="$base" "${ca_args[@]}" -f "$here/Dockerfile" -t "$name" "$@" "$here/.." >&2
"$here/buildah.sh" rmi --prune >/dev/null 2>&1 || true # the previous build of this tag
echo "$name"
