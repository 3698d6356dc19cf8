"""Write models/<name>/MODEL.md from measured figures: evaluates the float and int8 models on the validation split.

    python -m training.model_card --checkpoint training/runs/main/model.pt --float training/runs/main/model-float.onnx \
        --int8 models/quickdraw-345/model.onnx --out models/quickdraw-345
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import date
from pathlib import Path

import numpy as np
import torch

from . import data as qd
from .evaluate import draw_confusion, first_strokes, predict, report
from .model import count_macs, load_checkpoint
from .train import render_all, split


def layer_table(model) -> list[str]:
    rows, x = [], torch.zeros(1, 1, 28, 28)
    for m in list(model.features) + list(model.classifier):
        x = m(x)
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.MaxPool2d)):
            params = sum(p.numel() for p in m.parameters())
            rows.append(f"| {m.__class__.__name__} | {tuple(x.shape[1:])} | {params:,} |")
    return rows


def calibration_section(path: Path | None) -> list[str]:
    """The card's section on how far scores can be trusted, from training.ship's calibration.json."""
    if path is None or not path.exists():
        return []
    c = json.loads(path.read_text())
    before, shipped = c["untempered"], c["shipped"]
    pct = lambda v: f"{100 * v:.1f} %"
    return [
        "## Scores and calibration (int8, validation)",
        "",
        "A score is the softmax of the logits. The training's label smoothing leaves them under-confident, so the",
        f"shipped model divides its logits by a temperature of **{c['temperature']:.3f}** (fitted by `python -m",
        "training.calibrate` on the validation drawings, baked into the last layer; the ranking is unchanged).",
        f"Expected calibration error (15 bins): **{pct(before['ece'])}** without it, **{pct(before['ece_with_temperature_cross_fitted'])}**",
        f"with it, cross-fitted (fitted on half the drawings, measured on the other half); {pct(shipped['ece'])} for the shipped",
        "model on all of them.",
        "",
        "| top score | share of answers | of those, right |",
        "|---|---|---|",
        *[f"| > {b['threshold']} | {pct(b['share'])} | {pct(b['accuracy'])} |" for b in shipped["bands"]],
        "",
    ]


def distillation_clause(a: dict) -> str:
    """How the checkpoint was distilled, from its training arguments ("" when it was not)."""
    teachers = a.get("teacher") or []
    if not teachers:
        return ""
    digests = a.get("teacher_sha256") or [None] * len(teachers)

    def name(path: str, digest: str | None) -> str:
        notes = ([f"sha256 {digest[:16]}..."] if digest else []) + \
            (["a shipped int8 model read back as float weights"] if path.endswith(".onnx") else [])
        return f"`{path}`" + (f" ({', '.join(notes)})" if notes else "")

    names = ", ".join(name(t, d) for t, d in zip(teachers, digests))
    views = ", each image averaged with its mirror image" if a.get("teacher_flip") else ""
    return (f" distilled from {len(teachers)} teacher{'s' if len(teachers) > 1 else ''} ({names}): the"
            f" loss is {a.get('kd_weight')} x KL to the teachers' probabilities at temperature"
            f" {a.get('kd_temperature')}{views}, plus {1 - a.get('kd_weight', 0):.1f} x the label-smoothed cross-entropy;")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--float", dest="float_path", required=True, type=Path)
    ap.add_argument("--int8", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--log", type=Path, help="training log.jsonl (default: beside the checkpoint)")
    ap.add_argument("--calibration", type=Path, help="calibration.json from training.ship (scores and temperature)")
    args = ap.parse_args(argv)
    model, state = load_checkpoint(args.checkpoint)
    categories = state["categories"]
    ds = qd.load(qd.default_sources(), categories)
    tr_s, _, va_s, va_l, bm, bl = split(ds, 20)
    bitmap_classes = len(np.unique(bl))
    images, labels = render_all(va_s), np.asarray(va_l)
    rf = report(predict(args.float_path, images), labels, categories)
    rq = report(predict(args.int8, images), labels, categories)
    rh = report(predict(args.int8, render_all(first_strokes(va_s, 0.5))), labels, categories)
    args.out.mkdir(parents=True, exist_ok=True)
    draw_confusion(rq["confusion"], args.out / "confusion.png")
    summary = {k: v for k, v in rq.items() if k != "confusion"}
    summary["float_top1"], summary["float_top3"] = rf["top1"], rf["top3"]
    summary["first_half_top1"], summary["first_half_top3"] = rh["top1"], rh["top3"]
    summary["float_balanced_top1"], summary["float_balanced_top3"] = rf["balanced_top1"], rf["balanced_top3"]
    (args.out / "evaluation.json").write_text(json.dumps(summary, indent=1) + "\n")
    log = [json.loads(l) for l in (args.log or args.checkpoint.parent / "log.jsonl").read_text().splitlines()]
    a = state["args"]
    per = sorted(rq["per_class"], key=lambda r: (r["top1"], r["class"]))
    macs = count_macs(model)
    params = sum(p.numel() for p in model.parameters())
    pct = lambda v: f"{100 * v:.1f} %"
    lines = [
        "# quickdraw-345: model card",
        "",
        f"A compact CNN that classifies 28 x 28 Quick, Draw! doodles into Google's 345 classes, shipped as a static int8",
        f"ONNX model (`model.onnx`, {os.path.getsize(args.int8):,} bytes) with its labels (`labels.txt`, and in the",
        "model's metadata `doodle.labels`; index = line of `categories.txt`). Generated by `python -m training.model_card`",
        f"on {date.today().isoformat()} from the checkpoint of epoch {state['epoch']} of {a['epochs']}.",
        "",
        "## Validation (held-out real drawings, all 345 classes)",
        "",
        f"Stratified split by key_id ({len(va_s):,} drawings, at least 4 per class; `validation.ndjson.gz` here holds them).",
        "",
        "| model | top-1 | top-3 |",
        "|---|---|---|",
        f"| float32 (BatchNorm folded) | {pct(rf['top1'])} | {pct(rf['top3'])} |",
        f"| **int8 (shipped)** | **{pct(rq['top1'])}** | **{pct(rq['top3'])}** |",
        f"| int8 - float | {100 * (rq['top1'] - rf['top1']):+.2f} points | {100 * (rq['top3'] - rf['top3']):+.2f} points |",
        f"| int8, each drawing cut to its first half of strokes | {pct(rh['top1'])} | {pct(rh['top3'])} |",
        f"| float32, class-balanced | {pct(rf['balanced_top1'])} | {pct(rf['balanced_top3'])} |",
        f"| int8, class-balanced | {pct(rq['balanced_top1'])} | {pct(rq['balanced_top3'])} |",
        "",
        "Class-balanced figures weigh every class the same (the mean of the per-class accuracies): here some classes",
        f"have up to {max(r['n'] for r in rq['per_class'])} drawings and most have 4 to 8, and the classes with many drawings (and thousands of",
        "training bitmaps) score higher. An evaluation set with the same number of drawings of every class measures",
        "the class-balanced figure: compare with it, not with the overall one.",
        "",
        "Reproduce: `python -m training.evaluate --model models/quickdraw-345/model.onnx --validation` (or",
        "`doodle eval models/quickdraw-345/validation.ndjson.gz` through a running daemon); add `--first-strokes 0.5`",
        "for the unfinished drawings (a game that asks while the player is drawing sees those).",
        "",
        "The int8 figures are the model's own integer arithmetic, which doodled computes exactly on every kernel path",
        "(reference, AVX2, AVX-512 VNNI, NEON dotprod and i8mm give the same bits). `training.evaluate` computes them",
        "with `training/int8_reference.py`, an exact-integer reference in numpy that gives the engine's bits (its",
        "goldens) on any CPU. onnxruntime's fused int8 kernels (`--fused-int8`) are exact only where the CPU has VNNI:",
        "on an AVX2-only CPU their `vpmaddubsw` pair sums saturate, so figures taken with them there come out lower.",
        "",
        "## Architecture",
        "",
        f"{macs:,} multiply-accumulates per image, {params:,} trainable parameters (BatchNorm included; it is folded",
        "into the convolutions at export).",
        "",
        "| layer | output (C, H, W) | parameters |",
        "|---|---|---|",
        *layer_table(model),
        "",
        "Each Conv2d is followed by BatchNorm and ReLU, each Linear but the last by ReLU; dropout",
        f"{a.get('dropout', 0.3)} before both Linear layers. Input: pixel / 255, 0 = background. Output: logits and softmax.",
        "",
        "## Data",
        "",
        f"Google's Quick, Draw! dataset (https://github.com/googlecreativelab/quickdraw-dataset), **CC BY 4.0**, as",
        f"available here in `shared/data/quickdraw`: simplified and raw strokes of {len(ds.strokes):,} distinct drawings over",
        f"all 345 classes ({len(tr_s) - len(ds.train_only_strokes):,} for training), {len(bm):,} bitmaps of {bitmap_classes} classes (training only; bitmaps",
        f"identical to a validation drawing removed), and {len(ds.train_only_strokes):,} canvas pictures as doodled's image path traces",
        "them (training only; `training/trace_pictures.py`). Raw drawings are normalised with `training/normalize.py`,",
        "all strokes rendered with `training/render.py` (bit-exact with Google's bitmaps).",
        "",
        "## Training",
        "",
        f"Class-balanced sampling; stroke augmentation (stroke dropout, rotation/scale/shear, per-stroke shift, jitter;",
        f"strength {a.get('strength', 1.0)}, applied with probability {a.get('p_augment', 0.9)}; left-right mirroring of",
        f"{a.get('p_flip', 0.0)} of the augmented drawings) re-rendered exactly (`training/render.py`);"
        + (f" {a['p_partial']} of the drawings cut to their first strokes (an unfinished drawing);" if a.get("p_partial") else "")
        + (f" weights averaged (EMA, decay {a['ema']}; the shipped weights are the average);" if state.get("ema") else "")
        + distillation_clause(a),
        f"bitmaps drawn with probability {a.get('p_bitmap', 0.5)} for classes that have them; label smoothing",
        f"{a.get('label_smoothing', 0.1)}; AdamW lr {a.get('lr')} weight decay {a.get('weight_decay')}, warm-up + cosine;",
        f"batch {a.get('batch')}, {a.get('epochs')} x {a.get('steps_per_epoch')} steps, seed {a.get('seed')};",
        f"{log[-1]['seconds'] / 60:.0f} minutes on {'2 CPU cores' if a.get('device', 'cpu') == 'cpu' else 'one ' + a['device'].upper() + ' device'}. Best validation top-1 during training:",
        f"{pct(max(r['val_top1'] for r in log))} (epoch {max(log, key=lambda r: r['val_top1'])['epoch']}).",
        "",
        "## Quantisation",
        "",
        "onnxruntime `quantize_static`, QDQ format, uint8 asymmetric activations (MinMax over 2,000 training images),",
        "int8 symmetric per-channel weights, int32 biases; Softmax left in float.",
        ("No quantisation-aware training was needed: int8 top-1 is within half a point of float (table above)."
         if rf["top1"] - rq["top1"] <= 0.005 else
         f"int8 top-1 is {100 * (rf['top1'] - rq['top1']):.2f} points below float: quantisation-aware training is the next step."),
        "",
        *calibration_section(args.calibration),
        "## Per-class accuracy (int8, validation)",
        "",
        "Worst 20:",
        "",
        "| class | n | top-1 | top-3 |",
        "|---|---|---|---|",
        *[f"| {r['class']} | {r['n']} | {pct(r['top1'])} | {pct(r['top3'])} |" for r in per[:20]],
        "",
        "Best 20:",
        "",
        "| class | n | top-1 | top-3 |",
        "|---|---|---|---|",
        *[f"| {r['class']} | {r['n']} | {pct(r['top1'])} | {pct(r['top3'])} |" for r in per[::-1][:20]],
        "",
        "## Most confused pairs (int8, validation)",
        "",
        "| true | predicted | count |",
        "|---|---|---|",
        *[f"| {p['true']} | {p['predicted']} | {p['count']} |" for p in rq["confused_pairs"][:20]],
        "",
        "Confusion matrix (row-normalised, true class down, predicted across, classes in `categories.txt` order):",
        "",
        "![confusion matrix](confusion.png)",
        "",
        "## Limits",
        "",
        f"About {len(tr_s) // len(categories)} drawings per class were available for training (plus bitmaps for {bitmap_classes} classes), so accuracy varies",
        "widely between classes (tables above); the validation set has 4 to 20 drawings per class, so per-class figures",
        "are coarse. Trained on Google's data only: drawings from other apps may differ in style.",
        "",
    ]
    (args.out / "MODEL.md").write_text("\n".join(lines))
    print(f"float top-1 {rf['top1']:.4f} top-3 {rf['top3']:.4f}; int8 top-1 {rq['top1']:.4f} top-3 {rq['top3']:.4f}")


if __name__ == "__main__":
    main()
