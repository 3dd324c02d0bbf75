#!/bin/sh
# The image's entrypoint: `runner` (default), `controller`, `callback`, `predictor`, or `kinfer <cli args>`;
# anything else is executed as given. The application root is the directory above this script's
# `trainer-image/` when run from a checkout, else /app (inside the image).
set -e
case "$0" in
  */trainer-image/entrypoint.sh) app=$(cd "$(dirname "$0")/.." && pwd) ;;
  *) app=/app ;;
esac
cmd=${1:-runner}
[ $# -gt 0 ] && shift
case "$cmd" in
  # RUNNER_PROCESS_ENV and RUNNER_NODE_FLAGS (src/contract/runner-env.ts): memory given back, a flat heap over long jobs.
  runner) exec env MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=4 --heap-growing-percent=10 --incremental-marking-soft-trigger=60 --incremental-marking-hard-trigger=85 "$app/src/runner/main.ts" "$@" ;;
  controller) exec node "$app/src/controller/main.ts" "$@" ;;
  callback) exec node "$app/src/callback/main.ts" "$@" ;;
  predictor) exec node "$app/src/predictor/main.ts" "$@" ;;
  kinfer) exec node "$app/src/cli/main.ts" "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
