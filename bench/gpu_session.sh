#!/usr/bin/env bash
# The GPU figures of issues #5/#6/#7 in one call on a bare GPU host (CUDA, CMake, PyTorch; no
# Debian libraries):
#   - the standalone dose engine (dose/engine) built there with CUDA: the 9-beam OpenKBP case on
#     CUDA and CPU (--compare: both timings and their maximum difference), the influence matrix
#     on both, and compute-sanitizer's memcheck on a small water case;
#   - the CPU/CUDA agreement tests (test_dose_engine --gtest_filter='DoseDevices.*'), built here;
#   - `isoline plan`'s work with --device cuda on the OpenKBP validation patients
#     (isoline-plan-bench, built here, carried with its few shared libraries), the first ones
#     also on the CPU of the same host with the largest difference of the final doses;
#   - the contouring network alone on CPU and CUDA (contouring/train/network_timing.py).
#
# Here (needs a build with CUDA, e.g. build/, and ../shared/data):
#   bash bench/gpu_session.sh --prepare [BUILD_DIR]   # writes bench/work/gpu_bundle.tgz (~25 MB)
# There (the device tool; carry bench/work/gpu_bundle.tgz only):
#   bash bench/gpu_session.sh     # results in $OUT (or /tmp/gpu_out): gpu_results.json,
#                                 # gpu_logs.tgz, plans_cuda.jsonl
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "${1:-}" = "--prepare" ]; then
  set -e
  BUILD=${2:-build}
  SPLIT=../shared/data/openkbp/validation
  S=$(mktemp -d /tmp/gpu_stage.XXXX)
  mkdir -p bench/work
  [ -f bench/work/dose/hn9.json ] && [ -f bench/work/dose/hn9i.u8 ] ||
    /usr/bin/python3 bench/run.py --build "$BUILD" --only dose
  mkdir -p "$S/bench/work/dose" "$S/bench/work/gpu/bin" "$S/bench/work/gpu/lib" "$S/bench/work/gpu/openkbp"
  cp bench/work/dose/hn9.json bench/work/dose/hn9.f32 bench/work/dose/hn9i.json bench/work/dose/hn9i.f32 \
     bench/work/dose/hn9i.u8 bench/work/dose/of100.json bench/work/dose/of100.f32 "$S/bench/work/dose/"
  /usr/bin/python3 contouring/train/network_timing.py --ct $SPLIT/pt_201/ct.nii.gz --device cpu \
    --save-npy "$S/bench/work/gpu/pt_201_ct.npy" > /dev/null
  cmake --build "$BUILD" --target isoline-plan-bench test_dose_engine test_planning > /dev/null
  cp "$BUILD/bin/isoline-plan-bench" "$BUILD/bin/test_dose_engine" "$BUILD/bin/test_planning" "$S/bench/work/gpu/bin/"
  # their shared libraries, but for the C library itself (the host's is newer)
  ldd "$BUILD/bin/isoline-plan-bench" "$BUILD/bin/test_dose_engine" "$BUILD/bin/test_planning" | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libdl|libpthread|librt)\.so' | xargs -I{} cp -L {} "$S/bench/work/gpu/lib/"
  for p in "$SPLIT"/pt_*; do
    d="$S/bench/work/gpu/openkbp/$(basename "$p")"
    mkdir -p "$d"
    for f in "$p"/*.nii.gz; do
      case $(basename "$f") in dose.nii.gz|possible_dose_mask.nii.gz) ;; *) cp "$f" "$d/" ;; esac
    done
  done
  tar czf bench/work/gpu_bundle.tgz -C "$S" bench
  rm -rf "$S"
  ls -la bench/work/gpu_bundle.tgz
  exit 0
fi

OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
# Logs go to $LOG and come back as one archive (the device tool returns at most 8 files).
LOG=$(mktemp -d /tmp/gpu_log.XXXX)
trap 'tar czf "$OUT/gpu_logs.tgz" -C "$LOG" . 2>/dev/null' EXIT
[ -f bench/work/gpu_bundle.tgz ] && tar xzf bench/work/gpu_bundle.tgz
export ISOLINE_MACHINE_DIR=$ROOT/dose/machines ISOLINE_TEMPLATE_DIR=$ROOT/planning/templates
export LD_LIBRARY_PATH=$ROOT/bench/work/gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi > "$LOG/nvidia-smi.txt" 2>&1
nproc > "$LOG/nproc.txt"

# PARTS: which sections run (default all): engine tests plans network
PARTS=" ${PARTS:-engine tests plans network} "
has() { [[ $PARTS == *" $1 "* ]]; }
B=$(mktemp -d /tmp/isoline-engine-build.XXXX)
if has engine; then
  { cmake -S dose/engine -B $B -DCMAKE_BUILD_TYPE=Release -DISOLINE_CUDA=ON &&
    cmake --build $B -j "$(nproc)"; } > "$LOG/build.log" 2>&1 || { echo "engine build failed"; tail -30 "$LOG/build.log"; }
fi
E=$B/isoline-dose-engine
run() {  # name, command...
  local name=$1; shift
  echo "== $name: $*"
  timeout 240 "$@" > "$LOG/$name.json" 2> "$LOG/$name.err"; echo "   rc $? $(cat "$LOG/$name.json") $(tail -3 "$LOG/$name.err")"
}
# memory errors in the CUDA kernels, on a small water case (a few seconds under the sanitizer)
if has engine && command -v compute-sanitizer > /dev/null; then
  echo "== compute-sanitizer (of100, cuda)"
  timeout 120 compute-sanitizer --tool memcheck --leak-check full $E bench/work/dose/of100.json --device cuda \
    > "$LOG/sanitizer.txt" 2>&1; echo "   rc $? $(grep -E 'ERROR SUMMARY|LEAK SUMMARY' "$LOG/sanitizer.txt" | head -2)"
fi
if has engine; then
  run dose_hn9 $E bench/work/dose/hn9.json --device cuda --compare --repeat 3
  run influence_hn9 $E bench/work/dose/hn9i.json --influence --device cuda --compare
fi

if has tests; then
  echo "== CPU/CUDA agreement tests"
  for t in "test_dose_engine DoseDevices.*" "test_planning OptimizerDevices.*:Optimizer.*:SparseMatrix.*"; do
    set -- $t
    timeout 120 bench/work/gpu/bin/$1 --gtest_filter="$2" --gtest_output=json:"$LOG/$1_devices.json" \
      > "$LOG/$1_devices.txt" 2>&1
    echo "   $1 rc $? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) |max_diff' "$LOG/$1_devices.txt" | tr '\n' ' ')"
  done
fi

# PLAN_DEVICE / PLAN_LIMIT: to try this script on a host without a GPU (cpu, 1 patient);
# PLAN_PATIENTS="pt_236 pt_225": only these; PLAN_COMPARE=N: the first N also on the CPU (2)
if has plans; then
  echo "== plans, --device ${PLAN_DEVICE:-cuda} (the first ${PLAN_COMPARE:-2} also on this host's CPU)"
  if [ -n "${PLAN_PATIENTS:-}" ]; then
    PATIENTS=$(for p in $PLAN_PATIENTS; do echo bench/work/gpu/openkbp/$p; done)
  else
    PATIENTS=$(ls -d bench/work/gpu/openkbp/pt_* 2>/dev/null | sort -t_ -k2 -n | head -n "${PLAN_LIMIT:-1000}")
  fi
  timeout "${PLAN_TIMEOUT:-400}" bench/work/gpu/bin/isoline-plan-bench --device "${PLAN_DEVICE:-cuda}" \
    --compare-cpu "${PLAN_COMPARE:-2}" \
    $PATIENTS > "$OUT/plans_cuda.jsonl" 2> "$LOG/plans_cuda.err"
  echo "   rc $? $(wc -l < "$OUT/plans_cuda.jsonl") patients; $(tail -2 "$LOG/plans_cuda.err")"
fi

PY=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && PY=/usr/bin/python3
if has network; then
  echo "== network timing ($PY)"
  timeout 180 $PY contouring/train/network_timing.py --ct bench/work/gpu/pt_201_ct.npy \
    --json "$LOG/network_hn128.json" > "$LOG/network.txt" 2>&1; echo "   rc $? $(cat "$LOG/network.txt")"
fi
$PY - "$LOG" "$OUT" <<'PY'
import json, sys, os
out, res_dir = sys.argv[1], sys.argv[2]
def load(n):
    try:
        return json.load(open(os.path.join(out, n)))
    except Exception as e:
        return {"error": str(e)}
d, i, n = load("dose_hn9.json"), load("influence_hn9.json"), load("network_hn128.json")
plans = []
try:
    plans = [json.loads(l) for l in open(os.path.join(res_dir, "plans_cuda.jsonl")) if l.strip()]
except Exception:
    pass
tot = [p["total_s"] for p in plans]
cmp = [p for p in plans if "max_dose_diff_percent" in p]
res = {
    "dose_seconds_hn9_cuda": d.get("dose_seconds"),
    "dose_seconds_hn9_cpu_same_host": d.get("other_device_seconds"),
    "cpu_cuda_max_diff_percent": d.get("max_diff_percent_of_max"),
    "influence_seconds_hn9_cuda": i.get("influence_seconds"),
    "influence_seconds_hn9_cpu_same_host": i.get("influence_other_device_seconds"),
    "influence_cpu_cuda_max_diff_percent": i.get("influence_max_diff_percent_of_max"),
    "plan_patients_cuda": len(plans),
    "plan_seconds_per_patient_cuda": round(sum(tot) / len(tot), 2) if tot else None,
    "plan_seconds_max_cuda": round(max(tot), 2) if tot else None,
    "plan_min_ptv70_d99_gy_cuda": min((p["ptv70_d99_gy"] for p in plans), default=None),
    "plan_cpu_cuda_max_dose_diff_percent": max((p["max_dose_diff_percent"] for p in cmp), default=None),
    "contour_network_seconds_128_cuda": (n.get("seconds") or {}).get("cuda"),
    "contour_network_seconds_128_cpu_same_host": (n.get("seconds") or {}).get("cpu"),
    "cpu_cores": open(os.path.join(out, "nproc.txt")).read().strip(),
    "gpu": open(os.path.join(out, "nvidia-smi.txt")).read().splitlines()[:12],
}
json.dump(res, open(os.path.join(res_dir, "gpu_results.json"), "w"), indent=1)
print(json.dumps({k: v for k, v in res.items() if k != "gpu"}, indent=1))
PY
