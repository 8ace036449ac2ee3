#!/usr/bin/env bash
# make demo: the main job on a head-and-neck case, then a check of what it did against a reference.
# The case: a real patient when the project's shared data is there (OpenKBP validation patient
# pt_201: CT, the clinician's organs and targets, the clinical plan's dose; DEMO_CASE=DIR picks
# another OpenKBP patient folder), else (or with DEMO_CASE=phantom) a generated phantom.
#   1. the case: the real CT as NIfTI, or a seeded phantom (DICOM CT + ground-truth RT-STRUCT)
#   2. isoline run on the CT with the clinician's / phantom's targets as the physician's
#      (--targets): auto-contoured organs -> achievable-dose plan -> RT-STRUCT, RT-DOSE, plan,
#      DVHs and an HTML report.
#   3. the reference: the auto-contoured organs scored against the clinician's (or the
#      phantom's) organs (Dice), and the criteria of the plan's dose on those reference organs
#      (real patient: beside the clinical plan's dose on the same organs). On the phantom the
#      network's organs are poor (it is trained on real patients), so the report's organ
#      criteria, computed on the auto-contours, can say a few Gy where the true organ gets tens.
set -euo pipefail
BUILD_DIR="${1:-build}"
ISOLINE="$BUILD_DIR/bin/isoline"
OUT="${DEMO_OUT:-demo-out}"
REAL="${DEMO_CASE:-../shared/data/openkbp/validation/pt_201}"
if [ "$REAL" != phantom ] && [ -f "$REAL/ct.nii.gz" ] && [ -f "$REAL/PTV70.nii.gz" ]; then
  mkdir -p "$OUT"
  echo "== isoline demo: output in $OUT/"
  "$ISOLINE" --version
  echo "== 1/3 real patient: $REAL (OpenKBP: CT, the clinician's contours, the clinical plan's dose)"
  # The clinician's structures as a masks folder (the patient folder also holds the CT and doses).
  ref="$OUT/reference"
  rm -rf "$ref.tmp" && mkdir -p "$ref.tmp"
  for f in "$REAL"/*.nii.gz; do
    case "$(basename "$f")" in ct.nii.gz|dose.nii.gz|possible_dose_mask.nii.gz) ;; *) cp "$f" "$ref.tmp/" ;; esac
  done
  rm -rf "$ref" && mv "$ref.tmp" "$ref"
  echo "== 2/3 isoline run: the clinician's targets (PTVs), organs auto-contoured, plan, dose, DICOM out, report"
  "$ISOLINE" run "$REAL/ct.nii.gz" --targets "$ref" --out "$OUT/result" --overwrite
  echo "== 3/3 check against the clinician's contours and the clinical plan"
  # The auto-contoured organs the clinician also delineated. (No `cd` here: $ref may be relative.
  # Every iteration ends with status 0, or pipefail would stop the demo on the last organ.)
  organs=$(for f in "$OUT/result/masks"/*.nii.gz; do
             o=$(basename "$f" .nii.gz)
             case "$o" in Body | GTV* | CTV* | PTV*) continue ;; esac
             if [ -f "$ref/$o.nii.gz" ]; then echo "$o"; fi
           done | paste -sd, -)
  echo "-- auto-contoured organs against the clinician's (Dice 1 = identical)"
  "$ISOLINE" eval contours --pred "$OUT/result/masks" --ref "$ref" --structures "$organs" -q
  echo "-- the achievable dose (RD.dcm) on the clinician's organs and targets"
  "$ISOLINE" dvh --dose "$OUT/result/RD.dcm" --masks "$ref" --criteria planning/criteria/hn.json -q \
    | sed -n '/^criterion/,$p'
  if [ -f "$REAL/dose.nii.gz" ]; then
    echo "-- the clinical plan's dose on the same structures"
    "$ISOLINE" dvh --dose "$REAL/dose.nii.gz" --masks "$ref" --criteria planning/criteria/hn.json -q \
      | sed -n '/^criterion/,$p'
  fi
  # A review case for the browser UI: the CT (NIfTI, and the DICOM series RS.dcm and RD.dcm
  # reference, so that an approved RT-STRUCT references it too), the run's structures and its
  # dose. Edits made in the browser are kept in review/ across demos.
  mkdir -p "$OUT/case/masks"
  cp "$REAL/ct.nii.gz" "$OUT/case/ct.nii.gz"
  rm -rf "$OUT/case/dicom" && cp -r "$OUT/result/CT" "$OUT/case/dicom"
  cp "$OUT/result/dose.nii.gz" "$OUT/case/dose.nii.gz"
  rm -f "$OUT/case/masks/"*.nii.gz
  rm -f "$OUT/case/masks/quality.json"
  cp "$OUT/result/masks/"*.nii.gz "$OUT/result/masks/quality.json" "$OUT/case/masks/"
  cat <<MSG
== done
  Auto-contours are for review: compare the Dice above and the report's CHECK flags. The
  achievable dose was optimised on the auto-contoured organs and the clinician's targets.
  CT series (DICOM)          $OUT/result/CT/   (written from the NIfTI CT; RS and RD reference it)
  RT-STRUCT                  $OUT/result/RS.dcm   (auto organs + the clinician's targets; masks: $OUT/result/masks/)
  achievable dose RT-DOSE    $OUT/result/RD.dcm   (Gy; also $OUT/result/dose.nii.gz)
  plan, DVHs, metrics        $OUT/result/plan.json, dvh.csv, metrics.json
  report                     $OUT/result/report.html
  the clinician's contours   $OUT/reference/
  review the auto-contours and the dose in the browser:
                             $ISOLINE serve $OUT/case
MSG
  exit 0
fi
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
