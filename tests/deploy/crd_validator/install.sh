#!/usr/bin/env bash
# Install this directory's pinned npm packages (npm ci) into a cache, once; print the directory
# to run validate.mjs from. Keyed by the lock file, so a changed pin installs anew.
#   UPWARD_STACK_CACHE_DIR  cache root (default ~/.cache/upward)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${UPWARD_STACK_CACHE_DIR:-$HOME/.cache/upward}"
key="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-12)"
dest="$cache_root/crd-validator-$key"

if [ ! -f "$dest/.complete" ]; then
  command -v npm >/dev/null 2>&1 || { echo "crd-validator: npm is not on PATH" >&2; exit 1; }
  mkdir -p "$cache_root"
  exec 9>"$dest.lock"
  flock 9
  if [ ! -f "$dest/.complete" ]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    cp "$here/package.json" "$here/package-lock.json" "$dest/"
    (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    touch "$dest/.complete"
  fi
fi
cp "$here/validate.mjs" "$dest/validate.mjs"  # cheap: keeps the script current
echo "$dest"
