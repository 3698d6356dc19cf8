#!/usr/bin/env bash
# What each training measure buys: the recipe at a short, equal budget, with one measure removed at a time.
# Each run writes training/runs/ablation-<name>/log.jsonl; the last line holds its validation top-1/top-3.
#   training/ablations.sh [EPOCHS]     (default 50 epochs x 80 steps each, ~7.5 minutes a run on 2 idle cores)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-50}
run() {
  local name=$1; shift
  python3 -m training.train --out "training/runs/ablation-$name" --epochs "$epochs" --steps-per-epoch 80 "$@" \
    > "training/runs/ablation-$name.log" 2>&1
  tail -1 "training/runs/ablation-$name/log.jsonl" | python3 -c "
import json, sys; r = json.loads(sys.stdin.read())
print(f\"$name: top-1 {100 * r['val_top1']:.1f} %  top-3 {100 * r['val_top3']:.1f} %  ({r['seconds']:.0f} s)\")"
}
mkdir -p training/runs
run full
run no-augmentation --p-augment 0
run no-label-smoothing --label-smoothing 0
run no-bitmaps --p-bitmap 0
