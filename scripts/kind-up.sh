#!/usr/bin/env bash
# The Kind tier in one command: a Kind cluster (kind-config.yaml: control plane + a GPU-pattern
# worker), the kinfer image built and loaded into it, Postgres and an S3 server (versitygw) in
# kinfer-system, the Helm chart with deploy/kind-values.yaml, then the example job
# (deploy/examples/colors-test-run.yaml) on generated sample data, waited for to completion.
# Needs docker (or podman as `docker`), kind, kubectl and helm. Re-running it is safe.
# Environment: KIND_CLUSTER (default kinfer), IMAGE (default localhost/kinfer:dev).
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=${KIND_CLUSTER:-kinfer}
image=${IMAGE:-localhost/kinfer:dev}
ns=kinfer-system
missing=()
for tool in docker kind kubectl helm; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "kind:up needs ${missing[*]} on PATH (docker, https://kind.sigs.k8s.io, kubectl, helm)." >&2
  echo "Without Docker, use the local control plane instead: npm run cluster:up (README, Kubernetes tier)." >&2
  exit 127
fi
step() { printf '\n==> %s\n' "$*"; }

step "Kind cluster $cluster"
if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --config kind-config.yaml --wait 120s
fi
kubectl config use-context "kind-$cluster" >/dev/null

step "image $image (trainer-image/Dockerfile), loaded into the cluster"
docker build -f trainer-image/Dockerfile -t "$image" .
kind load docker-image "$image" --name "$cluster"

step "Postgres and versitygw in $ns (deploy/kind/)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f deploy/kind/postgres.yaml -f deploy/kind/versitygw.yaml
kubectl -n "$ns" rollout status statefulset/postgres --timeout=180s
kubectl -n "$ns" rollout status deployment/versitygw --timeout=180s

step "kinfer (charts/kinfer, deploy/kind-values.yaml)"
helm upgrade --install kinfer charts/kinfer -n "$ns" -f deploy/kind-values.yaml \
  --set image.repository="${image%:*}" --set image.tag="${image##*:}" --wait --timeout 5m
helm test kinfer -n "$ns"

step "sample model and dataset -> s3://kinfer-demo (kinfer samples, run from the image)"
kubectl -n "$ns" delete pod kinfer-samples --ignore-not-found
kubectl -n "$ns" run kinfer-samples --image="$image" --image-pull-policy=Never --restart=Never \
  --overrides='{"spec":{"containers":[{"name":"kinfer-samples","image":"'"$image"'","imagePullPolicy":"Never","args":["kinfer","samples","s3://kinfer-demo"],"env":[{"name":"S3_ENDPOINT","value":"http://versitygw.'"$ns"'.svc:7070"},{"name":"AWS_ACCESS_KEY_ID","valueFrom":{"secretKeyRef":{"name":"kinfer-s3","key":"AWS_ACCESS_KEY_ID"}}},{"name":"AWS_SECRET_ACCESS_KEY","valueFrom":{"secretKeyRef":{"name":"kinfer-s3","key":"AWS_SECRET_ACCESS_KEY"}}}]}]}}'
kubectl -n "$ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/kinfer-samples --timeout=180s
kubectl -n "$ns" logs kinfer-samples

step "the example job: deploy/examples/colors-test-run.yaml"
kubectl -n "$ns" delete ij colors-eval --ignore-not-found --wait
kubectl -n "$ns" apply -f deploy/examples/colors-test-run.yaml
kubectl -n "$ns" wait --for=jsonpath='{.status.phase}'=Completed ij/colors-eval --timeout=300s
kubectl -n "$ns" get ij colors-eval
echo
echo "REST API: http://127.0.0.1:8080/api/v1/test-runs   (kind-config.yaml maps the NodePort)"
echo "Remove everything: kind delete cluster --name $cluster"
