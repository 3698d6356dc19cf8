"""A tiny quantised fixture model covering the op forms the shipped model does not use (strided conv, residual
Add, MatMul + Add bias, a stand-alone Relu), with onnxruntime goldens, for the engine's tests.

    python -m training.fixtures --out Tests/DoodleEngineTests/Fixtures/tiny
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from torch import nn

from .export import set_metadata
from .goldens import write_goldens
from .quantize import ImageReader


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)  # 28 -> 14
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 12, 2, stride=2)  # 14 -> 7, no padding
        self.w = nn.Parameter(torch.randn(12 * 3 * 3, 10) * 0.2)
        self.b = nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        h = torch.relu(self.c2(a) + a)  # residual Add, then a stand-alone Relu
        h = torch.relu(self.c3(h))
        h = nn.functional.max_pool2d(h, 2)  # 7 -> 3
        logits = torch.matmul(torch.flatten(h, 1), self.w) + self.b
        return logits, torch.softmax(logits, dim=1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    # Blobby images: random strokes of ink, so activations look like real drawings.
    images = np.zeros((96, 28, 28), np.uint8)
    for img in images:
        for _ in range(rng.integers(2, 6)):
            y, x = rng.integers(2, 26, size=2)
            img[max(0, y - 2) : y + 2, max(0, x - 6) : x + 6] = rng.integers(120, 256)
    images = images.reshape(-1, 784)
    model = Tiny().eval()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "float.onnx"
        torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), str(f), input_names=["image"],
                          output_names=["logits", "probabilities"], opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}, "probabilities": {0: "N"}})
        softmax = [n.name for n in onnx.load(str(f)).graph.node if n.op_type == "Softmax"]
        q = args.out / "tiny.onnx"
        quantize_static(str(f), str(q), ImageReader(images[:64]), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=softmax)
    m = onnx.load(str(q))
    set_metadata(m, [f"digit{i}" for i in range(10)], "fixture")
    onnx.save(m, str(q))
    print(sorted({n.op_type for n in m.graph.node}))
    write_goldens(q, images, args.out)


if __name__ == "__main__":
    main()
