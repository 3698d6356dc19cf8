"""Score any ONNX model on labelled drawings: top-1, top-3 and a per-class table.

    python -m training.evaluate --model models/quickdraw-345/model.onnx FILE [FILE ...]
    python -m training.evaluate --model a/ema.pt --model b/ema.pt --mirror --validation   # an ensemble

FILE: ndjson(.gz) of simplified or raw drawings (raw ones are normalised first, as the daemon does), or an npz of
bitmaps (``images``, ``labels``). ``--validation`` scores the deterministic validation split of the shared data
instead. ``--json OUT`` writes the numbers; ``--confusion-png OUT`` draws the confusion matrix.

An int8 (QDQ) model is scored with ``training.int8_reference``: exact integer arithmetic, the bits doodled's engine
computes, the same on any CPU. ``--onnxruntime`` runs it on onnxruntime with graph optimisations off instead (its
QuantizeLinear, DequantizeLinear and float operators as written: CPU-independent up to float rounding), and
``--fused-int8`` on onnxruntime's fused int8 kernels, whose AVX2 form (``vpmaddubsw``) saturates, so figures taken
with them depend on the CPU (about 2 points of top-1 lower on an AVX2-only machine). A float model always runs on
onnxruntime, and a training checkpoint (``.pt``) in float on torch. ``--model`` given more than once scores the
ensemble (the mean of the models' probabilities, as ``train --teacher`` averages teachers); ``--mirror`` averages each
image with its mirror image (test-time augmentation, as ``train --teacher-flip`` does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

from . import data as qd
from .train import render_all, split


def is_quantized(model: Path) -> bool:
    """Whether the model is a QDQ int8 model (it has a QuantizeLinear)."""
    import onnx

    return any(n.op_type == "QuantizeLinear" for n in onnx.load(str(model)).graph.node)


def predictor(model: Path, threads: int = 2, fused_int8: bool = False,
              onnxruntime: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """Load ``model`` once and return a function from N x 784 uint8 images to probabilities (N x classes).

    A checkpoint (.pt) runs in float on torch. An int8 model runs on the exact-integer reference unless
    ``onnxruntime`` (its operators as written) or ``fused_int8`` (onnxruntime's int8 kernels: CPU-dependent, see the
    module doc); a float model runs on onnxruntime."""
    if Path(model).suffix == ".pt":
        import torch

        from .model import load_model
        from .train import CHANNELS_LAST, evaluate_logits

        torch.set_num_threads(threads)
        net = load_model(model).to(memory_format=CHANNELS_LAST)
        return lambda images: torch.softmax(torch.from_numpy(evaluate_logits(net, images)), dim=1).numpy()
    if not (fused_int8 or onnxruntime) and is_quantized(model):
        from .int8_reference import Int8Reference

        return Int8Reference(model).probabilities
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    if not fused_int8:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    out_name = "probabilities" if any(o.name == "probabilities" for o in sess.get_outputs()) else sess.get_outputs()[0].name

    def run(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
        return np.concatenate([sess.run([out_name], {"image": x[i : i + 512]})[0] for i in range(0, len(x), 512)])

    return run


def predict(model: Path, images: np.ndarray, **engine) -> np.ndarray:
    """Probabilities (N x classes) of ``model`` for N x 784 uint8 images (``engine``: ``predictor``'s options)."""
    return predictor(model, **engine)(images)


def mirrored(images: np.ndarray) -> np.ndarray:
    """Each N x 784 image flipped left to right."""
    return np.ascontiguousarray(images.reshape(-1, 28, 28)[:, :, ::-1]).reshape(len(images), -1)


def predict_ensemble(models: list[Path], images: np.ndarray, mirror: bool = False, **engine) -> np.ndarray:
    """The mean probabilities of ``models`` (each loaded once by ``predictor``), over each image and, with
    ``mirror``, its mirror image."""
    views = [images, mirrored(images)] if mirror else [images]
    runs = []
    for model in models:
        run = predictor(model, **engine)
        runs += [run(view) for view in views]
    return sum(runs) / len(runs)


def first_strokes(drawings: list, fraction: float) -> list:
    """Each drawing cut to its first ``ceil(fraction * strokes)`` strokes: the drawing part-way through, as a game
    that asks early sees it."""
    import math

    return [d[: max(1, math.ceil(fraction * len(d)))] for d in drawings]


def load_labelled(files: list[str], categories: list[str]) -> tuple[np.ndarray, np.ndarray]:
    ds = qd.load(files, categories)
    images = render_all(ds.strokes)
    labels = np.array(ds.stroke_labels, dtype=np.int64)
    if len(ds.bitmaps):
        images = np.concatenate([images, ds.bitmaps]) if len(images) else ds.bitmaps
        labels = np.concatenate([labels, ds.bitmap_labels])
    return images, labels


def report(probs: np.ndarray, labels: np.ndarray, categories: list[str]) -> dict:
    order = np.argsort(-probs, axis=1, kind="stable")  # ties: the lower class index first, as doodled ranks
    top1 = order[:, 0] == labels
    top3 = (order[:, :3] == labels[:, None]).any(axis=1)
    per_class = []
    for c in range(len(categories)):
        sel = labels == c
        if sel.any():
            per_class.append({"class": categories[c], "index": c, "n": int(sel.sum()), "top1": float(top1[sel].mean()),
                              "top3": float(top3[sel].mean())})
    confusion = np.zeros((len(categories), len(categories)), np.int64)
    np.add.at(confusion, (labels, order[:, 0]), 1)
    pairs = [(int(confusion[i, j]), categories[i], categories[j]) for i, j in zip(*np.nonzero(confusion)) if i != j]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    # Class-balanced: every class weighs the same however many drawings it has here (an evaluation set with the same
    # number of drawings per class, like the separate held-out set's 4 per class, measures this).
    balanced_top1 = float(np.mean([c["top1"] for c in per_class])) if per_class else 0.0
    balanced_top3 = float(np.mean([c["top3"] for c in per_class])) if per_class else 0.0
    return {"n": int(len(labels)), "top1": float(top1.mean()), "top3": float(top3.mean()),
            "balanced_top1": balanced_top1, "balanced_top3": balanced_top3, "per_class": per_class,
            "confused_pairs": [{"true": t, "predicted": p, "count": n} for n, t, p in pairs[:50]],
            "confusion": confusion}


def draw_confusion(confusion: np.ndarray, path: Path, cell: int = 2) -> None:
    """Row-normalised confusion matrix as a PNG (true class down, predicted across), drawn with cairo."""
    import cairo

    n = confusion.shape[0]
    rows = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    surface = cairo.ImageSurface(cairo.FORMAT_RGB24, n * cell, n * cell)
    ctx = cairo.Context(surface)
    ctx.set_source_rgb(1, 1, 1)
    ctx.paint()
    for i, j in zip(*np.nonzero(rows)):
        v = float(rows[i, j]) ** 0.5
        ctx.set_source_rgb(1 - v, 1 - v, 1 - 0.4 * v)
        ctx.rectangle(j * cell, i * cell, cell, cell)
        ctx.fill()
    surface.write_to_png(str(path))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, action="append",
                    help="ONNX model or training checkpoint (.pt); repeat it to score the ensemble's mean probabilities")
    ap.add_argument("--mirror", action="store_true", help="average each drawing with its mirror image")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--validation", action="store_true", help="score the validation split of the shared data")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--confusion-png", type=Path)
    ap.add_argument("--quiet", action="store_true", help="no per-class table")
    ap.add_argument("--first-strokes", type=float, metavar="FRACTION",
                    help="score each drawing cut to its first FRACTION of strokes (rounded up; an unfinished drawing)")
    ap.add_argument("--onnxruntime", action="store_true",
                    help="run an int8 model on onnxruntime with graph optimisations off, not the exact reference")
    ap.add_argument("--fused-int8", action="store_true",
                    help="use onnxruntime's fused int8 kernels (their AVX2 form saturates: figures depend on the CPU)")
    args = ap.parse_args(argv)
    categories = qd.load_categories()
    if args.validation:
        _, _, va_s, va_l, _, _ = split(qd.load(qd.default_sources(), categories), 20)
        if args.first_strokes:
            va_s = first_strokes(va_s, args.first_strokes)
        images, labels = render_all(va_s), np.asarray(va_l)
    elif args.files:
        if args.first_strokes:
            ap.error("--first-strokes works with --validation")
        images, labels = load_labelled(args.files, categories)
    else:
        ap.error("give FILE(s) or --validation")
    probs = predict_ensemble(args.model, images, args.mirror, fused_int8=args.fused_int8, onnxruntime=args.onnxruntime)
    r = report(probs, labels, categories)
    if not args.quiet:
        print(f"{'class':<28}{'n':>6}{'top-1':>8}{'top-3':>8}")
        for row in sorted(r["per_class"], key=lambda x: (-x["top1"], x["class"])):
            print(f"{row['class']:<28}{row['n']:>6}{100 * row['top1']:>7.1f}%{100 * row['top3']:>7.1f}%")
    print(f"drawings: {r['n']}  top-1: {100 * r['top1']:.2f}%  top-3: {100 * r['top3']:.2f}%  class-balanced top-1: "
          f"{100 * r['balanced_top1']:.2f}%  top-3: {100 * r['balanced_top3']:.2f}%")
    if args.confusion_png:
        draw_confusion(r["confusion"], args.confusion_png)
    if args.json:
        out = {k: v for k, v in r.items() if k != "confusion"}
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
