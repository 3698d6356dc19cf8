#!/usr/bin/env bash
# A distillation recipe: train an ensemble of larger teachers, then distil it into the shipped size.
#   DEVICE=cuda training/distill.sh OUT_DIR [SOURCE ...]
# Teachers (widths 64,96,192, hidden 768: about 4.5x the student's multiply-adds) train side by side, then the
# student (the shipped DoodleNet) learns from their softened outputs, averaged over the teachers and each image's
# mirror image, plus the labels. Every run writes OUT_DIR/<name>/{ema.pt,last.pt,log.jsonl} and can be continued
# with RESUME=1. SOURCE arguments replace the default data (training.data.default_sources).
# Settings (environment): DEVICE (cpu), STEPS (80 per epoch), TEACHERS (3), TEACHER_EPOCHS (200), EPOCHS (240), WORKERS (data processes
# per teacher; the student gets TEACHERS times as many), EXTRA_TEACHER (a checkpoint added to the ensemble, such as
# the shipped model's), TEACHER_TIMEOUT / STUDENT_TIMEOUT (seconds; 0: none; a run cut short keeps its last epoch
# and RESUME=1 continues it), TEACHER_BFLOAT16=1 (the student's teachers run in bfloat16: about twice as fast on a CPU
# with AVX-512 BF16 or AMX, or a GPU).
# On CPU a teacher takes several hours on 2 cores. Run here end to end only at smoke size (STEPS=2 TEACHERS=2
# TEACHER_EPOCHS=1 EPOCHS=1); the full recipe is meant for a GPU machine (DEVICE=cuda WORKERS=4).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: training/distill.sh OUT_DIR [SOURCE ...]}
shift
sources=()
for s in "$@"; do sources+=(--source "$s"); done
device=${DEVICE:-cpu}
teachers=${TEACHERS:-3}
workers=${WORKERS:-1}
resume=()
[ "${RESUME:-0}" = 1 ] && resume=(--resume)
recipe=(--p-flip 0.5 --ema 0.999 --p-partial 0.2 --steps-per-epoch "${STEPS:-80}" --device "$device" --threads 1 "${resume[@]}"
        "${sources[@]}")
limit() { if [ "${1:-0}" -gt 0 ]; then echo timeout "$1"; fi; }
mkdir -p "$out"
pids=()
for i in $(seq 1 "$teachers"); do
  $(limit "${TEACHER_TIMEOUT:-0}") python3 -m training.train --out "$out/teacher$i" --epochs "${TEACHER_EPOCHS:-200}" \
    --widths 64,96,192 --hidden 768 --seed $((10 + i)) --workers "$workers" "${recipe[@]}" \
    > "$out/teacher$i.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || echo "distill: a teacher ended early (status $?); its last epoch is used" >&2; done
teacher_args=()
for i in $(seq 1 "$teachers"); do teacher_args+=(--teacher "$out/teacher$i/ema.pt"); done
[ -n "${EXTRA_TEACHER:-}" ] && teacher_args+=(--teacher "$EXTRA_TEACHER")
[ "${TEACHER_BFLOAT16:-0}" = 1 ] && teacher_args+=(--teacher-bfloat16)
$(limit "${STUDENT_TIMEOUT:-0}") python3 -m training.train --out "$out/student" --epochs "${EPOCHS:-240}" \
  --workers $((workers * teachers)) "${teacher_args[@]}" --teacher-flip "${recipe[@]}" > "$out/student.log" 2>&1 \
  || echo "distill: the student ended early (status $?); its last epoch is in $out/student" >&2
tail -1 "$out/student/log.jsonl"
