#!/bin/bash
# Trains the shipped head-and-neck contouring model from scratch, in one command, with the
# fixed seeds and schedules of the three stages it was trained in (CPU, one thread each;
# about 2.5 CPU-hours on a 2-core machine, much less on a GPU host with PyTorch).
#   bash contouring/train/recipe.sh /work/cache/recipe     # OUT directory for checkpoints
# Then export and validate (see docs/contouring.md):
#   /usr/bin/python3 contouring/train/export.py --ckpt OUT/stage3/best.pt --out contouring/models/hn_oar_ptv_2p5d.pt
set -euo pipefail
OUT=${1:?usage: recipe.sh OUT_DIR [DATA_DIR]}
DATA=${2:-$(dirname "$0")/../../../shared/data/openkbp}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
CACHE=$OUT/openkbp_model_grid.npz
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
[ -f "$CACHE" ] || $PY "$HERE/preprocess.py" --data "$DATA" --out "$CACHE"
common=(--cache "$CACHE" --batch 8 --threads 1)
# stage 1: from scratch
$PY "$HERE/train.py" "${common[@]}" --seed 0 --out "$OUT/stage1" --iters 1700 --val-every 250 --dice-on-absent
# stage 2: Esophagus/Larynx output channels re-initialised (their sigmoids had saturated),
# Dice only on structures present in the batch; stopped at 2500 of a 4000-iteration schedule
$PY "$HERE/train.py" "${common[@]}" --seed 1 --out "$OUT/stage2" --init "$OUT/stage1/best.pt" \
    --reinit-head Esophagus,Larynx --lr 1e-3 --iters 4000 --stop-after 2500 --val-every 250
# stage 3: half of the stacks centred on a slice of a randomly chosen delineated structure
$PY "$HERE/train.py" "${common[@]}" --seed 2 --out "$OUT/stage3" --init "$OUT/stage2/best.pt" \
    --lr 1e-3 --iters 11000 --val-every 500 --fg-frac 0.5
echo "best checkpoint: $OUT/stage3/best.pt"
