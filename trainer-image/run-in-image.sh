#!/usr/bin/env bash
# A local stand-in for a container runtime: runs a fresh container of IMAGE with the image's own
# ENTRYPOINT and CMD (or the given arguments in place of CMD), host networking, and this
# process's environment minus host paths. The subprocess tier runs its runners from the image
# with KINFER_RUNNER_COMMAND='["trainer-image/run-in-image.sh","localhost/kinfer:dev"]'.
# SIGTERM and SIGINT go to the container's init (tini) as a runtime signals PID 1; buildah itself
# runs in its own session, because on a signal it would kill the container outright.
# Usage: trainer-image/run-in-image.sh IMAGE [args...]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
b() { "$here/buildah.sh" "$@"; }
image=$1
shift

ctr=$(b from --pull-never --quiet "$image") || exit 125
trap 'b rm "$ctr" >/dev/null 2>&1' EXIT

config=(--env TINI_SUBREAPER=1) # tini is not PID 1 here: let it adopt orphans anyway
# The host's own settings stay outside, as with a real runtime: its paths, and Node options that
# may name host files (a --require'd hook would stop the image's node before the runner starts;
# a compile cache directory would replace the image's own).
while IFS= read -r -d '' kv; do
  case ${kv%%=*} in PATH | HOME | TMPDIR | PWD | OLDPWD | SHLVL | _ | NODE_OPTIONS | NODE_PATH | NODE_EXTRA_CA_CERTS | NODE_COMPILE_CACHE) ;; *) config+=(--env "$kv") ;; esac
done < <(env -0)
b config "${config[@]}" "$ctr" || exit 125

mapfile -t entrypoint < <(b inspect --type image --format '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}' "$image")
if [ $# -gt 0 ]; then args=("$@"); else mapfile -t args < <(b inspect --type image --format '{{range .OCIv1.Config.Cmd}}{{println .}}{{end}}' "$image"); fi

setsid "$here/buildah.sh" run --isolation chroot --network host "$ctr" -- "${entrypoint[@]}" "${args[@]}" &
pid=$!
forward() {
  local init
  init=$(pgrep -s "$pid" -x tini | head -1)
  if [ -n "$init" ]; then kill -"$1" "$init"; else kill -"$1" "$pid"; fi
}
trap 'forward TERM' TERM
trap 'forward INT' INT
while :; do
  wait "$pid"
  rc=$?
  kill -0 "$pid" 2>/dev/null || break
done
exit "$rc"
