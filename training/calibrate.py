"""How far a model's scores can be trusted: expected calibration error (ECE), reliability per score band, and a
softmax temperature fitted to the validation split.

    python -m training.calibrate --model models/quickdraw-345/model.onnx

A game that acts on "score > 0.8" needs a score of 0.8 to be right about 80 % of the time. ECE is the mean gap
between confidence (the top score) and accuracy over 15 equal-width confidence bins, weighted by how many answers
fall in each. A temperature T divides the logits before the softmax; it never changes the ranking, only how
sure the scores look. It is fitted by minimising the negative log-likelihood; the ECE it buys is measured
cross-fitted (T fitted on one half of the validation drawings, scored on the other, and the other way round), so
the figure is not flattered by fitting and scoring on the same drawings. ``training.ship --calibrate`` bakes the
temperature fitted on all of them into the model's last layer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import data as qd
from .train import render_all, split

BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Top-1 ECE over ``bins`` equal-width confidence bins."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(conf[sel].mean() - right[sel].mean())
    return float(total / len(labels))


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(p, 1e-12)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.2, hi: float = 5.0) -> float:
    """The temperature minimising the NLL, by golden-section search on log T (the NLL is unimodal in it)."""
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = negative_log_likelihood(logits, labels, np.exp(c)), negative_log_likelihood(logits, labels, np.exp(d))
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = negative_log_likelihood(logits, labels, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = negative_log_likelihood(logits, labels, np.exp(d))
    return float(np.exp((a + b) / 2))


def score_bands(probs: np.ndarray, labels: np.ndarray, thresholds=(0.5, 0.8, 0.9)) -> list[dict]:
    """For each threshold: the share of answers whose top score exceeds it, and how often those are right."""
    conf, right = probs.max(axis=1), probs.argmax(axis=1) == labels
    out = []
    for t in thresholds:
        sel = conf > t
        out.append({"threshold": t, "share": float(sel.mean()),
                    "accuracy": float(right[sel].mean()) if sel.any() else float("nan")})
    return out


def analyse(logits: np.ndarray, labels: np.ndarray) -> dict:
    """ECE as the model stands, the temperature fitted on all drawings, and the cross-fitted ECE with it."""
    halves = [np.arange(len(labels)) % 2 == 0, np.arange(len(labels)) % 2 == 1]
    held_out = np.zeros((len(labels), logits.shape[1]))
    for fit, score in (halves, halves[::-1]):
        held_out[score] = softmax(logits[score], fit_temperature(logits[fit], labels[fit]))
    t = fit_temperature(logits, labels)
    return {"ece": expected_calibration_error(softmax(logits), labels),
            "nll": negative_log_likelihood(logits, labels, 1.0),
            "temperature": t,
            "ece_with_temperature_cross_fitted": expected_calibration_error(held_out, labels),
            "nll_with_temperature": negative_log_likelihood(logits, labels, t),
            "bands": score_bands(softmax(logits), labels),
            "bands_with_temperature": score_bands(softmax(logits, t), labels)}


def model_logits(model: Path, images: np.ndarray) -> np.ndarray:
    """The model's logits: exact integer arithmetic for an int8 model, onnxruntime for a float one."""
    from .evaluate import is_quantized

    if is_quantized(model):
        from .int8_reference import Int8Reference

        return Int8Reference(model).logits(images)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = images.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
    return np.concatenate([sess.run(["logits"], {"image": x[i : i + 512]})[0] for i in range(0, len(x), 512)])


def validation_logits(model: Path) -> tuple[np.ndarray, np.ndarray]:
    categories = qd.load_categories()
    _, _, va_s, va_l, _, _ = split(qd.load(qd.default_sources(), categories), 20)
    return model_logits(model, render_all(va_s)), np.asarray(va_l)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    r = analyse(*validation_logits(args.model))
    print(f"ECE {100 * r['ece']:.2f} %  NLL {r['nll']:.3f}; fitted temperature {r['temperature']:.3f}: "
          f"ECE {100 * r['ece_with_temperature_cross_fitted']:.2f} % (cross-fitted)  NLL {r['nll_with_temperature']:.3f}")
    for name in ("bands", "bands_with_temperature"):
        print(name + ": " + ", ".join(f"score > {b['threshold']}: {100 * b['share']:.1f} % of answers, "
                                      f"{100 * b['accuracy']:.1f} % right" for b in r[name]))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()
