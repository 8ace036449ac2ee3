#!/bin/bash
# Trains the shipped head-and-neck contouring model from scratch, in one command, with the
# fixed seeds and schedules of the four stages it was trained in (CPU; about 3.5 hours on a
# 2-core machine, much less on a GPU host with PyTorch).
#   bash contouring/train/recipe.sh /work/cache/recipe     # OUT directory for checkpoints
# Then export and validate (see docs/contouring.md):
#   /usr/bin/python3 contouring/train/export.py --ckpt OUT/stage4/best.pt --out contouring/models/hn_oar_ptv_2p5d.pt
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
# stage 4: lower learning rate from stage 3's best. It ran 5000 iterations of a 15000-iteration
# schedule on one thread, then was resumed from that checkpoint with a 12000-iteration schedule
# on two threads (the learning rate continues smoothly: 2.0e-4 -> 1.8e-4 at the switch).
$PY "$HERE/train.py" "${common[@]}" --seed 3 --out "$OUT/stage4" --init "$OUT/stage3/best.pt" \
    --lr 3e-4 --iters 15000 --stop-after 5000 --val-every 1000 --fg-frac 0.5
OMP_NUM_THREADS=2 $PY "$HERE/train.py" "${common[@]}" --threads 2 --seed 3 --out "$OUT/stage4" \
    --init "$OUT/stage3/best.pt" --lr 3e-4 --iters 12000 --val-every 1000 --fg-frac 0.5 --resume
echo "best checkpoint: $OUT/stage4/best.pt"
