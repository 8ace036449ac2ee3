#!/bin/bash
# Trains the shipped head-and-neck contouring network (card 2.x) in one command, with the seeds
# and learning-rate schedules of the two GPU runs it came from (their logs are in logs/; each
# ran with --time-limit, and --lr-trace replays the schedule and length they reached).
#   bash contouring/train/recipe_gpu.sh OUT_DIR [CACHE]      # about 11 minutes on one H200
# CACHE: the model-grid training cache (preprocess.py) or its 8-bit pack (pack_for_gpu.py).
# DEVICE=cpu runs the same schedule on the CPU (many hours on 2 cores; recipe.sh trains the
# smaller 1.2 network on the CPU in about 3.5 hours). The batches come from 7 sampling processes,
# as in the logged runs (the data order depends on their number), so data order and learning
# rates are the logged runs'; a GPU's arithmetic may differ in the last bits from run to run.
# Then export (docs/contouring.md):
#   /usr/bin/python3 contouring/train/export.py --ckpt OUT/stage2/best_state.npz --out contouring/models/hn_oar_ptv_2p5d.pt ...
set -euo pipefail
OUT=${1:?usage: recipe_gpu.sh OUT_DIR [CACHE]}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${2:-/work/cache/openkbp_model_grid.npz}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}   # a PyTorch with CUDA on a GPU host; /usr/bin/python3 here
AMP=""; [ "$DEVICE" = cuda ] && AMP=--amp
common=(--cache "$CACHE" --device "$DEVICE" $AMP --workers 7 --threads 2 --fg-frac 0.5 --batch 32
        --seed 10 --feats 16,32,64,128,192 --val-every 1000000)
# stage 1: from scratch, 5 input slices; the checkpoint kept was the last (12401 iterations)
$PY "$HERE/train.py" "${common[@]}" --lr 2e-3 --lr-trace "$HERE/logs/gpu_stage1.log" --out "$OUT/stage1"
# stage 2: 9 input slices (the first convolution widened around stage 1's), learning rate
# restarted at 1e-3; the checkpoint kept was the validation at iteration 6342 of 7328
$PY "$HERE/train.py" "${common[@]}" --context 4 --init "$OUT/stage1/best_state.npz" --lr 1e-3 \
    --lr-trace "$HERE/logs/gpu_stage2.log" --stop-after 6342 --out "$OUT/stage2"
echo "best checkpoint: $OUT/stage2/best_state.npz"
