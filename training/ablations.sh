#!/usr/bin/env bash
# What each training measure buys: the recipe at a short, equal budget, with one measure removed at a time.
# Each run writes training/runs/ablation-<name>/log.jsonl; its last line holds the validation top-1/top-3 of the
# weights and of their moving average (EMA), so the EMA's effect is read from every run.
#   [THREADS=2] training/ablations.sh [EPOCHS] [NAME ...]   (default 50 epochs x 80 steps, ~12 minutes a run on 2 idle cores;
#                                                 names: full no-partial no-traced-pictures no-augmentation
#                                                 no-label-smoothing no-bitmaps; default all)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-50}
shift || true
recipe=(--p-flip 0.5 --ema 0.999 --p-partial 0.2)  # the shipped (v3) recipe
run() {
  local name=$1; shift
  python3 -m training.train --out "training/runs/ablation-$name" --epochs "$epochs" --steps-per-epoch 80 --threads "${THREADS:-2}" \
    "${recipe[@]}" "$@" > "training/runs/ablation-$name.log" 2>&1
  tail -1 "training/runs/ablation-$name/log.jsonl" | python3 -c "
import json, sys; r = json.loads(sys.stdin.read())
print(f\"$name: top-1 {100 * r['val_top1']:.1f} %  top-3 {100 * r['val_top3']:.1f} %;\"
      f\" EMA top-1 {100 * r['ema_top1']:.1f} %  top-3 {100 * r['ema_top3']:.1f} %  ({r['seconds']:.0f} s)\")"
}
without_traced=()
for s in $(python3 -c "from training import data as qd; print(' '.join(s for s in qd.default_sources() if 'traced' not in s))"); do
  without_traced+=(--source "$s")
done
mkdir -p training/runs
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(full no-partial no-traced-pictures no-augmentation no-label-smoothing no-bitmaps)
for name in "${names[@]}"; do
  case $name in
    full) run full ;;
    no-partial) run no-partial --p-partial 0 ;;
    no-traced-pictures) run no-traced-pictures "${without_traced[@]}" ;;
    no-augmentation) run no-augmentation --p-augment 0 ;;
    no-label-smoothing) run no-label-smoothing --label-smoothing 0 ;;
    no-bitmaps) run no-bitmaps --p-bitmap 0 ;;
    *) echo "unknown ablation $name" >&2; exit 2 ;;
  esac
done
