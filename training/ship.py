"""Turn a trained checkpoint into the shipped model directory, in one reproducible step.

    python -m training.ship --checkpoint training/runs/main/model.pt --out models/quickdraw-345

Runs export (float ONNX), quantize (int8 QDQ), fits a softmax temperature on the validation split and bakes it
into the model (``training.calibrate``; ``--no-calibrate`` skips it), writes labels.txt and validation.ndjson.gz
(the held-out split), the model card (MODEL.md, evaluation.json, calibration.json, confusion.png) and the engine's
golden outputs from the exact-integer reference (Tests/DoodleEngineTests/Fixtures/quickdraw-345 when shipping to
models/quickdraw-345; OUT/goldens when ``--out`` is elsewhere, so a trial in a scratch directory leaves the shipped
model's goldens alone).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tempfile
from pathlib import Path

from . import calibrate
from . import data as qd
from . import model_card
from .export import export
from .goldens import validation_images, write_goldens
from .quantize import calibration_images, quantize

SHIPPED = qd.REPO / "models/quickdraw-345"
SHIPPED_GOLDENS = qd.REPO / "Tests/DoodleEngineTests/Fixtures/quickdraw-345"


def goldens_dir(out: Path) -> Path:
    """Where shipping to ``out`` writes the engine's goldens: the Swift tests' fixtures for the shipped model, beside
    the model for any other directory."""
    return SHIPPED_GOLDENS if out.resolve() == SHIPPED.resolve() else out / "goldens"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=SHIPPED)
    ap.add_argument("--version", default="1")
    ap.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                    help="ship the softmax as trained (temperature 1)")
    ap.add_argument("--reduce-range", action="store_true",
                    help="7-bit weights (training.quantize): faster on AVX2-only CPUs, slightly less accurate")
    ap.add_argument("--goldens", type=Path, help="where the engine's goldens go (default: see above)")
    args = ap.parse_args(argv)
    args.goldens = args.goldens or goldens_dir(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "model-float.onnx"
        export(args.checkpoint, float_path, args.version)
        images = calibration_images(2000)
        quantize(float_path, args.out / "model.onnx", images, args.reduce_range)
        card_extra = []
        if args.calibrate:
            before = calibrate.analyse(*calibrate.validation_logits(args.out / "model.onnx"))
            t = round(before["temperature"], 4)
            export(args.checkpoint, float_path, args.version, temperature=t)
            quantize(float_path, args.out / "model.onnx", images, args.reduce_range)
            shipped = calibrate.analyse(*calibrate.validation_logits(args.out / "model.onnx"))
            (args.out / "calibration.json").write_text(
                json.dumps({"temperature": t, "untempered": before, "shipped": shipped}, indent=1) + "\n")
            card_extra = ["--calibration", str(args.out / "calibration.json")]
            print(f"temperature {t}: ECE {before['ece']:.4f} -> {shipped['ece']:.4f}")
        categories = qd.load_categories(qd.SHARED / "categories.txt")
        (args.out / "labels.txt").write_text("\n".join(categories) + "\n")
        ds = qd.load(qd.default_sources(), categories)
        val = qd.validation_keys(ds.stroke_keys, ds.stroke_labels, 20)
        # mtime=0: the same split gives the same bytes (no churn in git when a model is re-shipped).
        with gzip.GzipFile(args.out / "validation.ndjson.gz", "wb", mtime=0) as raw, \
                io.TextIOWrapper(raw, encoding="utf-8") as f:
            for strokes, label, key in zip(ds.strokes, ds.stroke_labels, ds.stroke_keys):
                if key in val:
                    f.write(json.dumps({"word": categories[label], "key_id": key, "drawing": strokes},
                                       separators=(",", ":")) + "\n")
        model_card.main(["--checkpoint", str(args.checkpoint), "--float", str(float_path), "--int8",
                         str(args.out / "model.onnx"), "--out", str(args.out)] + card_extra)
    write_goldens(args.out / "model.onnx", validation_images(2000), args.goldens)


if __name__ == "__main__":
    main()
