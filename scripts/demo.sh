#!/usr/bin/env bash
# make demo: the main job on a generated head-and-neck case.
#   1. a seeded phantom patient: DICOM CT series + ground-truth RT-STRUCT + preview picture
#   2. isoline run on the DICOM CT with the phantom's targets as the physician's (--targets):
#      auto-contoured organs -> achievable-dose plan -> RT-STRUCT, RT-DOSE, plan, DVHs and an
#      HTML report. (The network's own target suggestions are trained on real patients; on a
#      synthetic phantom they are not meaningful.)
set -euo pipefail
BUILD_DIR="${1:-build}"
ISOLINE="$BUILD_DIR/bin/isoline"
OUT="${DEMO_OUT:-demo-out}"
mkdir -p "$OUT"
echo "== isoline demo: output in $OUT/"
"$ISOLINE" --version
echo "== 1/2 phantom patient (seed 7, 256 x 256 x 160 at 2 x 2 x 2.5 mm)"
# Generated once: a case reviewed in the browser since the last demo keeps its edits (review/).
if [ -f "$OUT/case/ground_truth.json" ]; then
  echo "   reusing $OUT/case (delete it to generate it again)"
else
  "$ISOLINE" phantom hn --seed 7 --size 256,256,160 --spacing 2,2,2.5 --out "$OUT/case" --preview
fi
echo "== 2/2 isoline run: targets from the phantom's RT-STRUCT, organs auto-contoured, plan, dose, DICOM out, report"
"$ISOLINE" run "$OUT/case/dicom" --targets "$OUT/case/dicom/RS.dcm" --out "$OUT/result" --overwrite
cat <<MSG
== done
  CT series (DICOM)          $OUT/case/dicom/
  ground-truth RT-STRUCT     $OUT/case/dicom/RS.dcm
  RT-STRUCT                  $OUT/result/RS.dcm   (auto organs + the given targets)
  achievable dose RT-DOSE    $OUT/result/RD.dcm   (plan: $OUT/result/plan.json)
  report                     $OUT/result/report.html
  review in the browser      $ISOLINE serve $OUT/case
MSG
