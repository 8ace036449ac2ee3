#!/usr/bin/env bash
# make demo: the main job as far as it is built today, on a generated head-and-neck case.
#   1. a seeded phantom patient: DICOM CT series + ground-truth RT-STRUCT + preview picture
#   2. auto-contouring of the DICOM CT -> RT-STRUCT referencing every CT slice (+ NIfTI masks)
# When `isoline run` (contour -> plan -> dose -> RT-STRUCT, RT-DOSE, report) exists, the demo
# runs it instead.
set -euo pipefail
BUILD_DIR="${1:-build}"
ISOLINE="$BUILD_DIR/bin/isoline"
OUT="${DEMO_OUT:-demo-out}"
mkdir -p "$OUT"
echo "== isoline demo: output in $OUT/"
"$ISOLINE" --version
if "$ISOLINE" --help | grep -q "^  run "; then
  "$ISOLINE" phantom hn --seed 7 --out "$OUT/case" --preview
  "$ISOLINE" run "$OUT/case/dicom" --out "$OUT/result"
  echo "== report: $OUT/result/report.html"
  exit 0
fi
echo "== 1/2 phantom patient (seed 7, 256 x 256 x 160 at 2 x 2 x 2.5 mm)"
"$ISOLINE" phantom hn --seed 7 --size 256,256,160 --spacing 2,2,2.5 --out "$OUT/case" --preview
echo "== 2/2 auto-contouring the DICOM CT"
"$ISOLINE" contour "$OUT/case/dicom" --out "$OUT/RS_auto.dcm" --masks "$OUT/auto_masks"
"$ISOLINE" info "$OUT/RS_auto.dcm" | head -20
cat <<MSG
== done
  CT series (DICOM)        $OUT/case/dicom/
  ground-truth RT-STRUCT   $OUT/case/dicom/RS.dcm
  auto RT-STRUCT           $OUT/RS_auto.dcm
  preview picture          $OUT/case/preview.png
  review in the browser    $ISOLINE serve $OUT/case
The plan/dose report (isoline run) is not built yet: see docs/architecture.md.
MSG
