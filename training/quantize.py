"""Static int8 quantisation of the float ONNX model with onnxruntime's ``quantize_static``.

    python -m training.quantize --float training/runs/main/model-float.onnx --out models/quickdraw-345/model.onnx

Format: **QDQ** (QuantizeLinear/DequantizeLinear pairs around Conv and Gemm), activations uint8 (asymmetric,
MinMax-calibrated on training images), weights int8 symmetric **per output channel**, biases int32.
Softmax is left in float (it runs on the dequantised logits). The Swift engine folds each QDQ group into one
fused int8 layer.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from . import data as qd
from .export import set_metadata
from .render import Renderer
from .train import split


class ImageReader(CalibrationDataReader):
    def __init__(self, images: np.ndarray, batch: int = 64) -> None:
        self.images, self.batch, self.pos = images, batch, 0

    def get_next(self):
        if self.pos >= len(self.images):
            return None
        x = self.images[self.pos : self.pos + self.batch].astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
        self.pos += self.batch
        return {"image": x}


def calibration_images(count: int, seed: int = 7) -> np.ndarray:
    """Training images only (never validation): rendered training drawings plus training bitmaps."""
    categories = qd.load_categories()
    tr_s, _, _, _, bm, _ = split(qd.load(qd.default_sources(), categories), 20)
    rng = np.random.default_rng(seed)
    r = Renderer()
    n_strokes = min(len(tr_s), count * 3 // 4)
    picks = rng.choice(len(tr_s), n_strokes, replace=False)
    imgs = [r.render(tr_s[i]) for i in picks]
    if len(bm):
        imgs += list(bm[rng.choice(len(bm), min(len(bm), count - n_strokes), replace=False)])
    return np.stack(imgs)


def quantize(float_path: Path, out: Path, images: np.ndarray, reduce_range: bool = False) -> None:
    """Writes the int8 QDQ model. With `reduce_range`, weights use 7 bits ([-64, 64]): doodled's AVX2 path then
    multiplies without shifting its activations (about 1.4 times as fast), for some accuracy (v3: 59.5 % -> 59.1 %
    top-1 on the validation split, int8, exact)."""
    src = onnx.load(str(float_path))
    softmax = [n.name for n in src.graph.node if n.op_type == "Softmax"]
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(float_path), str(pre), skip_symbolic_shape=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_static(str(pre), str(out), ImageReader(images), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=softmax,
                        reduce_range=reduce_range)
    m = onnx.load(str(out))
    meta = {p.key: p.value for p in src.metadata_props}
    labels = meta.pop("doodle.labels").split("\n")
    set_metadata(m, labels, meta.pop("doodle.model_version", "1"),
                 meta | {"doodle.quantization": "onnxruntime quantize_static QDQ, uint8 activations (MinMax), "
                                               + ("7-bit (reduced range) " if reduce_range else "int8 ")
                                               + "per-channel symmetric weights"})
    onnx.save(m, str(out))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--float", dest="float_path", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--calibration-images", type=int, default=2000)
    ap.add_argument("--reduce-range", action="store_true",
                    help="7-bit weights: faster on AVX2-only CPUs, slightly less accurate")
    args = ap.parse_args(argv)
    quantize(args.float_path, args.out, calibration_images(args.calibration_images), args.reduce_range)


if __name__ == "__main__":
    main()
