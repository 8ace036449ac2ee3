#!/usr/bin/env bash
# Bundles the review web client into $1: `npm ci` when node_modules is missing or older
# than package-lock.json (serialised with flock: several build trees share ui/), then esbuild.
set -euo pipefail
out="$1"
ui="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ui"
exec 9>"/tmp/isoline-ui-npm.lock"
flock 9
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
flock -u 9
node web/build.mjs "$out"
