#!/usr/bin/env bash
# Trains contouring networks on a GPU host in one device call (PyTorch 2.x with CUDA there;
# the weights come back as plain arrays and are exported here with Debian's torch 1.13).
# Several runs train side by side on the one GPU for TIME seconds each; the one best on the
# validation split is exported.
#
# Here:   /usr/bin/python3 contouring/train/pack_for_gpu.py --out bench/work/gpu_train/openkbp_u8.npz
# There:  bash contouring/train/gpu_train.sh      (device tool; carry bench/work/gpu_train; TIME=420)
#         -> $OUT: NAME_best_state.npz per run and logs.tgz (each run's log and history, and
#            nvidia-smi), kept current while it runs
# RUNS: one run per line, "NAME train.py-options" (at most 7 runs: 8 files come back). Default:
# the card 2.0 first stage's two widths,
#   runA --seed 10 --feats 16,32,64,128,192      runB --seed 11 --feats 24,48,96,192,256
# Every run also gets COMMON (cache, device, bfloat16, time limit, learning rate LR, batch BATCH,
# --fg-frac 0.5) and the sampler SAMPLER: "host" (7 sampling processes per run, as card 2.0 was
# trained; keep to two runs) or "device" (the cases held on the GPU: no sampling processes).
# Back here, e.g.:
#   /usr/bin/python3 contouring/train/export.py --ckpt .../runA_best_state.npz \
#       --out contouring/models/hn_oar_ptv_2p5d.pt --version X.Y.Z   (post-processing options chosen
#       on the training split: docs/contouring.md)
# A second round from the first one's weights, e.g. with 9 input slices (the first convolution widened):
#   cp runA_best_state.npz bench/work/gpu_train/   (here), then there
#   TIME=230 LR=1e-3 RUNS="runA --seed 10 --feats 16,32,64,128,192 --context 4 --init bench/work/gpu_train/runA_best_state.npz" \
#       bash contouring/train/gpu_train.sh
# A 3D network (train.py --dims 3; session 9, features 16-32-64-128-256: 22.6 MB of weights, which
# come back as float16, 11.3 MB, since the device returns at most 16 MiB per file):
#   SAMPLER=device TIME=470 RUNS="r3a --seed 10 --dims 3 --feats 16,32,64,128,256 --patch 96,96,64 --batch 4 --cudnn-benchmark" \
#       bash contouring/train/gpu_train.sh
# Smoke test without a GPU: PY=/usr/bin/python3 DEVICE=cpu DATA=small.npz TIME=20 bash contouring/train/gpu_train.sh
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_train_out}
mkdir -p "$OUT"
T=${TIME:-420}
DATA=${DATA:-bench/work/gpu_train/openkbp_u8.npz}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}   # the PyTorch of the GPU host; /usr/bin/python3 here
SAMPLER=${SAMPLER:-host}
RUNS=${RUNS:-"runA --seed 10 --feats 16,32,64,128,192
runB --seed 11 --feats 24,48,96,192,256"}
AMP=""; [ "$DEVICE" = cuda ] && AMP=--amp
W=$(( $(nproc) / 2 - 1 )); [ "$W" -lt 1 ] && W=1
S="--sampler host --workers $W"; [ "$SAMPLER" = device ] && S="--sampler device"
COMMON=${COMMON:-"--cache $DATA --device $DEVICE $AMP --threads 2 --time-limit $T --fg-frac 0.5 --lr ${LR:-2e-3} --batch ${BATCH:-32}"}
R=$(mktemp -d /tmp/gpu_train.XXXX)
names=()
pids=()
while read -r name opts; do
  [ -z "$name" ] && continue
  names+=("$name")
  mkdir -p "$R/$name"
  # shellcheck disable=SC2086
  PYTHONUNBUFFERED=1 $PY contouring/train/train.py $COMMON $S $opts --out "$R/$name" > "$R/$name/train.log" 2>&1 &
  pids+=($!)
done <<< "$RUNS"
# What comes back from $OUT is kept current while training runs (a call stopped at its limit
# still returns the best weights so far); each copy goes through one fixed .part name.
save() {
  nvidia-smi > "$R/nvidia-smi.txt" 2>&1
  for n in "${names[@]}"; do
    f="$R/$n/best_state.npz"
    [ -f "$f" ] || continue
    if [ "$(stat -c %s "$f")" -gt 15000000 ]; then  # 16 MiB per returned file: float16 weights
      $PY -c "import numpy as np, sys; z = np.load(sys.argv[1]); np.savez(sys.argv[2], **{k: z[k].astype(np.float16) if z[k].dtype == np.float32 else z[k] for k in z.files})" "$f" "$OUT/x.part.npz" && mv "$OUT/x.part.npz" "$OUT/${n}_best_state.npz"
    else
      cp "$f" "$OUT/x.part" && mv "$OUT/x.part" "$OUT/${n}_best_state.npz"
    fi
  done
  tar -czf "$OUT/x.part" -C "$R" --exclude='*.pt' --exclude='*.npz' . && mv "$OUT/x.part" "$OUT/logs.tgz"
}
running() { for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do sleep 10; save; done
wait
save
for n in "${names[@]}"; do
  echo "== $n"; grep -E "parameters|time limit|^val|Error" "$R/$n/train.log" | tail -4 | cut -c1-400
done
