#!/usr/bin/env bash
# The GPU figures of issues #5/#6/#7 in one call on a bare GPU host (CUDA, CMake, PyTorch; no
# Debian libraries): the standalone dose engine built with CUDA (dose/engine), the 9-beam
# OpenKBP case on CPU and CUDA (--compare: timing of both and their maximum difference), the
# influence matrix on both, and the contouring network alone on CPU and CUDA.
#
# Prepare here (writes the inputs under bench/work, about 23 MB):
#   /usr/bin/python3 bench/run.py --build build --only dose        # bench/work/dose/hn9*.{json,f32,u8}
#   /usr/bin/python3 contouring/train/network_timing.py \
#       --ct ../shared/data/openkbp/validation/pt_201/ct.nii.gz --save-npy bench/work/gpu/pt_201_ct.npy
# Run there (the device tool; carry only what is needed, the whole bench/work/dose is > 64 MiB:
#   bench/work/dose/hn9.json, bench/work/dose/hn9.f32, bench/work/dose/hn9i.json,
#   bench/work/dose/hn9i.f32, bench/work/dose/hn9i.u8, bench/work/gpu  -- about 23 MB):
#   bash bench/gpu_session.sh        # results in $OUT (or /tmp/gpu_out): gpu_results.json + logs
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
B=/tmp/isoline-engine-build
{ cmake -S dose/engine -B $B -DCMAKE_BUILD_TYPE=Release -DISOLINE_CUDA=ON &&
  cmake --build $B -j "$(nproc)"; } > "$OUT/build.log" 2>&1 || { echo "engine build failed"; tail -30 "$OUT/build.log"; }
E=$B/isoline-dose-engine
run() {  # name, command...
  local name=$1; shift
  echo "== $name: $*"
  timeout 240 "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"; echo "   rc $? $(cat "$OUT/$name.json")"
}
run dose_hn9 $E bench/work/dose/hn9.json --device cuda --compare --repeat 3
run influence_hn9 $E bench/work/dose/hn9i.json --influence --device cuda --compare
PY=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && PY=/usr/bin/python3
echo "== network timing ($PY)"
timeout 180 $PY contouring/train/network_timing.py --ct bench/work/gpu/pt_201_ct.npy \
  --json "$OUT/network_hn128.json" > "$OUT/network.txt" 2>&1; echo "   rc $? $(cat "$OUT/network.txt")"
$PY - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(n):
    try:
        return json.load(open(os.path.join(out, n)))
    except Exception as e:
        return {"error": str(e)}
d, i, n = load("dose_hn9.json"), load("influence_hn9.json"), load("network_hn128.json")
res = {
    "dose_seconds_hn9_cuda": d.get("dose_seconds"),
    "dose_seconds_hn9_cpu_same_host": d.get("other_device_seconds"),
    "cpu_cuda_max_diff_percent": d.get("max_diff_percent_of_max"),
    "influence_seconds_hn9_cuda": i.get("influence_seconds"),
    "influence_seconds_hn9_cpu_same_host": i.get("influence_other_device_seconds"),
    "influence_cpu_cuda_max_diff_percent": i.get("influence_max_diff_percent_of_max"),
    "contour_network_seconds_128_cuda": (n.get("seconds") or {}).get("cuda"),
    "contour_network_seconds_128_cpu_same_host": (n.get("seconds") or {}).get("cpu"),
    "gpu": open(os.path.join(out, "nvidia-smi.txt")).read().splitlines()[:12],
}
json.dump(res, open(os.path.join(out, "gpu_results.json"), "w"), indent=1)
print(json.dumps({k: v for k, v in res.items() if k != "gpu"}, indent=1))
PY
