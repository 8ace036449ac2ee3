#!/usr/bin/env bash
# make demo: runs the main job on a generated case and prints where the results are.
# The steps available grow with the modules; each step below runs what exists today.
set -euo pipefail
BUILD_DIR="${1:-build}"
ISOLINE="$BUILD_DIR/bin/isoline"
OUT="${DEMO_OUT:-demo-out}"
mkdir -p "$OUT"
echo "== isoline demo: output in $OUT/"
"$ISOLINE" --version
if "$ISOLINE" --help | grep -q "^  run "; then
  "$ISOLINE" phantom hn --seed 7 --out "$OUT/case"
  "$ISOLINE" run "$OUT/case/ct" --out "$OUT/result"
  echo "== report: $OUT/result/report.html"
else
  echo "The main job (isoline run) is not built yet: see issues and docs/architecture.md."
  shared="$(cd "$(dirname "$0")/.." && pwd)/../shared/data/openkbp/train/pt_1/ct.nii.gz"
  if [ -f "$shared" ]; then "$ISOLINE" info "$shared"; fi
fi
