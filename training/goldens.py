"""Golden outputs from the exact-integer reference (``training.int8_reference``), so the Swift engine's tests need
no Python and hold every kernel path to the same bits on any CPU.

    python -m training.goldens --model models/quickdraw-345/model.onnx --out Tests/DoodleEngineTests/Fixtures/quickdraw-345

Writes ``images.u8`` (count x 784 bytes, real validation drawings rendered exactly as the daemon renders them),
``logits.u8`` (count x classes: the model's quantised logits, computed with exact integer arithmetic) and
``golden.json`` (counts, the logits' scale and zero point, what computed them). onnxruntime's fused int8 kernels
give the same bits only on a CPU with VNNI (their AVX2 form saturates), so they are not used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx

from . import data as qd
from .int8_reference import Int8Reference
from .train import render_all, split


def logits_quantization(model_path: Path) -> tuple[float, int]:
    """Scale and zero point of the DequantizeLinear that produces the ``logits`` output."""
    m = onnx.load(str(model_path))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and n.output[0] == "logits":
            return float(inits[n.input[1]]), int(inits[n.input[2]])
    raise ValueError("no DequantizeLinear produces 'logits'")


def shown_path(path: Path) -> str:
    """The path relative to the repository when it lies inside it (no machine's directory in committed files)."""
    try:
        return str(Path(path).resolve().relative_to(qd.REPO))
    except ValueError:
        return str(path)


def write_goldens(model_path: Path, images: np.ndarray, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    logits = Int8Reference(model_path).logit_codes(images)
    scale, zp = logits_quantization(model_path)
    images.astype(np.uint8).tofile(out / "images.u8")
    logits.tofile(out / "logits.u8")
    meta = {"count": int(len(images)), "classes": int(logits.shape[1]), "logits_scale": scale, "logits_zero_point": zp,
            "computed_by": "training.int8_reference (exact integer arithmetic)", "model": shown_path(model_path)}
    (out / "golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(images)} goldens to {out}")


def validation_images(count: int) -> np.ndarray:
    categories = qd.load_categories()
    _, _, va_s, _, _, _ = split(qd.load(qd.default_sources(), categories), 20)
    return render_all(va_s[:count])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--count", type=int, default=2000)
    args = ap.parse_args(argv)
    write_goldens(args.model, validation_images(args.count), args.out)


if __name__ == "__main__":
    main()
