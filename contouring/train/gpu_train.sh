#!/usr/bin/env bash
# Trains the contouring network on a GPU host in one device call (PyTorch 2.x with CUDA there;
# the weights come back as plain arrays and are exported here with Debian's torch 1.13).
# Two widths train side by side on the one GPU for TIME seconds each; the better one on the
# validation split is exported.
#
# Here:   /usr/bin/python3 contouring/train/pack_for_gpu.py --out bench/work/gpu_train/openkbp_u8.npz
# There:  bash contouring/train/gpu_train.sh      (device tool; carry bench/work/gpu_train; TIME=420)
#         -> $OUT: runA/runB logs, histories and best_state.npz (6 and 13 MB), kept current while it runs
# Back here, e.g.:
#   /usr/bin/python3 contouring/train/export.py --ckpt .../runA_best_state.npz \
#       --out contouring/models/hn_oar_ptv_2p5d.pt --version X.Y.Z   (post-processing options chosen
#       on the training split: docs/contouring.md)
# A second round from the first one's weights, e.g. with 9 input slices (the first convolution widened):
#   cp runA_best_state.npz runB_best_state.npz bench/work/gpu_train/   (here), then there
#   TIME=230 LR=1e-3 EXTRA_A="--context 4 --init bench/work/gpu_train/runA_best_state.npz" \
#   EXTRA_B="--context 4 --init bench/work/gpu_train/runB_best_state.npz" bash contouring/train/gpu_train.sh
# Smoke test without a GPU: PY=/usr/bin/python3 DEVICE=cpu DATA=small.npz TIME=20 bash contouring/train/gpu_train.sh
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_train_out}
mkdir -p "$OUT"
T=${TIME:-420}
DATA=${DATA:-bench/work/gpu_train/openkbp_u8.npz}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}   # the PyTorch of the GPU host; /usr/bin/python3 here
AMP=""; [ "$DEVICE" = cuda ] && AMP=--amp
W=$(( $(nproc) / 2 - 1 )); [ "$W" -lt 1 ] && W=1
common="--cache $DATA --device $DEVICE $AMP --workers $W --threads 2 --time-limit $T --fg-frac 0.5 --lr ${LR:-2e-3} --batch ${BATCH:-32}"
R=$(mktemp -d /tmp/gpu_train.XXXX)
# What comes back from $OUT is kept current while training runs (so a call stopped at its
# limit still returns the best weights so far): at most 8 files, hence the GPU's description
# goes into runA.log and each copy goes through one fixed .part name.
save() {
  for r in runA runB; do
    for f in best_state.npz history.json; do
      [ -f "$R/$r/$f" ] && cp "$R/$r/$f" "$OUT/$r.part" && mv "$OUT/$r.part" "$OUT/${r}_$f"
    done
  done
}
nvidia-smi > "$OUT/runA.log" 2>&1
PYTHONUNBUFFERED=1 $PY contouring/train/train.py $common --seed 10 --feats 16,32,64,128,192 ${EXTRA_A:-} --out "$R/runA" >> "$OUT/runA.log" 2>&1 &
A=$!
PYTHONUNBUFFERED=1 $PY contouring/train/train.py $common --seed 11 --feats 24,48,96,192,256 ${EXTRA_B:-} --out "$R/runB" > "$OUT/runB.log" 2>&1 &
B=$!
while kill -0 $A 2>/dev/null || kill -0 $B 2>/dev/null; do sleep 10; save; done
wait
save
for r in runA runB; do
  echo "== $r"; grep -E "parameters|time limit|^val" "$OUT/$r.log" | tail -4 | cut -c1-400
done
