#!/usr/bin/env bash
# Build the pinned helm binary from the Go module proxy into a cache, once, and print its path.
#
# No release binaries are downloaded: `go install helm.sh/helm/v3/cmd/helm@<version>` builds
# it from the module source (a cold build takes a few minutes on 2 cores; later runs find the
# cached binary and return at once). Needs Go >= 1.24 on PATH.
#
#   UPWARD_HELM_VERSION    helm version to build (default v3.22.0)
#   UPWARD_HELM_KUBE_VERSION  the Kubernetes version helm assumes without a cluster; helm's
#                          own Makefile derives it from its k8s.io/client-go (v0.37 -> 1.37)
#   UPWARD_STACK_CACHE_DIR cache root (default ~/.cache/upward); the binary goes to
#                          <root>/helm-<version>/helm
set -euo pipefail

version="${UPWARD_HELM_VERSION:-v3.22.0}"
kube_version="${UPWARD_HELM_KUBE_VERSION:-1.37}"
cache_root="${UPWARD_STACK_CACHE_DIR:-$HOME/.cache/upward}"
dest="$cache_root/helm-$version"

if [ -x "$dest/helm" ]; then
  echo "$dest/helm"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-helm: 'go' is not on PATH; it is needed to build helm $version" >&2
  exit 1
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/helm-$version.lock"
flock 9  # another run (make, a test session) may be building the same version
if [ ! -x "$dest/helm" ]; then
  echo "install-helm: building helm $version from the Go module proxy (once)..." >&2
  partial="$dest.partial"
  rm -rf "$partial"
  mkdir -p "$partial"
  started=$(date +%s)
  pkg=helm.sh/helm/v3
  ldflags="-s -w -X $pkg/internal/version.version=$version -X $pkg/internal/version.metadata="
  for target in lint/rules chartutil; do
    ldflags="$ldflags -X $pkg/pkg/$target.k8sVersionMajor=${kube_version%%.*}"
    ldflags="$ldflags -X $pkg/pkg/$target.k8sVersionMinor=${kube_version#*.}"
  done
  CGO_ENABLED=0 GOBIN="$partial" GOFLAGS=-mod=mod go install -ldflags "$ldflags" \
    "$pkg/cmd/helm@$version" >&2
  rm -rf "$dest"
  mv "$partial" "$dest"
  echo "install-helm: built $dest/helm in $(($(date +%s) - started)) s" >&2
fi
echo "$dest/helm"
