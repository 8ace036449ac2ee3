#!/usr/bin/env bash
# make demo: the main job on a generated head-and-neck case.
#   1. a seeded phantom patient: DICOM CT series + ground-truth RT-STRUCT + preview picture
#   2. isoline run on the DICOM CT with the phantom's targets as the physician's (--targets):
#      auto-contoured organs -> achievable-dose plan -> RT-STRUCT, RT-DOSE, plan, DVHs and an
#      HTML report. (The network's own target suggestions are trained on real patients; on a
#      synthetic phantom they are not meaningful.)
#   3. the same dose on the phantom's ground truth: the network's organs are trained on real
#      patients and are poor on the synthetic anatomy, so the report's organ criteria (on the
#      auto-contours) can say a few Gy where the true organ gets tens: the auto-contours'
#      Dice and the criteria on the true organs are printed beside them.
set -euo pipefail
BUILD_DIR="${1:-build}"
ISOLINE="$BUILD_DIR/bin/isoline"
OUT="${DEMO_OUT:-demo-out}"
mkdir -p "$OUT"
echo "== isoline demo: output in $OUT/"
"$ISOLINE" --version
echo "== 1/3 phantom patient (seed 7, 256 x 256 x 160 at 2 x 2 x 2.5 mm)"
# Generated once: a case reviewed in the browser since the last demo keeps its edits (review/).
if [ -f "$OUT/case/ground_truth.json" ]; then
  echo "   reusing $OUT/case (delete it to generate it again)"
else
  "$ISOLINE" phantom hn --seed 7 --size 256,256,160 --spacing 2,2,2.5 --out "$OUT/case" --preview
fi
echo "== 2/3 isoline run: targets from the phantom's RT-STRUCT, organs auto-contoured, plan, dose, DICOM out, report"
"$ISOLINE" run "$OUT/case/dicom" --targets "$OUT/case/dicom/RS.dcm" --out "$OUT/result" --overwrite
echo "== 3/3 check against the phantom's ground truth (possible only on a generated case)"
organs=$(cd "$OUT/result/masks" && ls -- *.nii.gz | sed 's/\.nii\.gz$//' | grep -v -E '^(Body|GTV.*|CTV.*|PTV.*)$' | paste -sd, -)
echo "-- auto-contoured organs against the phantom's (Dice 1 = identical)"
"$ISOLINE" eval contours --pred "$OUT/result/masks" --ref "$OUT/case/masks" --structures "$organs" \
  --no-reference-check -q
echo "-- the plan's dose (RD.dcm) on the phantom's true organs; the criteria above are on the auto-contours"
"$ISOLINE" dvh --dose "$OUT/result/RD.dcm" --masks "$OUT/case/masks" --criteria planning/criteria/hn.json -q \
  | sed -n '/^criterion/,$p'
cat <<MSG
== done
  The plan was optimised on the auto-contoured organs: where they miss the true organ (Dice
  well below 1, "CHECK" flags in the report), so did the sparing, and its criterion in the
  report is on the contour, not on the organ.
  CT series (DICOM)          $OUT/case/dicom/   (NIfTI: $OUT/case/ct.nii.gz, picture: $OUT/case/preview.png)
  ground-truth RT-STRUCT     $OUT/case/dicom/RS.dcm   (masks: $OUT/case/masks/)
  RT-STRUCT                  $OUT/result/RS.dcm   (auto organs + the given targets; masks: $OUT/result/masks/)
  achievable dose RT-DOSE    $OUT/result/RD.dcm   (Gy; also $OUT/result/dose.nii.gz)
  plan, DVHs, metrics        $OUT/result/plan.json, dvh.csv, metrics.json
  report                     $OUT/result/report.html
  the phantom and its ground-truth structures in the browser review UI:
                             $ISOLINE serve $OUT/case
MSG
