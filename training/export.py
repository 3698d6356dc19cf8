"""Export a trained checkpoint to a float ONNX model: BatchNorm folded, Softmax appended, labels in metadata.

    python -m training.export --checkpoint training/runs/main/model.pt --out training/runs/main/model-float.onnx

Input ``image``: float32 N x 1 x 28 x 28, pixel / 255. Outputs ``logits`` and ``probabilities`` (N x classes).
``--temperature T`` divides the last layer's weights and bias by T, so the softmax is temperature-scaled
(``training.calibrate`` fits T); the ranking is unchanged and the model keeps the same operators.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
import torch
from torch import nn

from .model import fold_batchnorm, load_checkpoint

MODEL_NAME = "quickdraw-345"


class _WithSoftmax(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        logits = self.body(x)
        return logits, torch.softmax(logits, dim=1)


def set_metadata(model: onnx.ModelProto, categories: list[str], version: str, extra: dict[str, str] | None = None):
    """Labels (one per line, index = class index) and name/version into the model's metadata_props."""
    props = {"doodle.model_name": MODEL_NAME, "doodle.model_version": version, "doodle.labels": "\n".join(categories),
             "doodle.input": "image: float32 [N,1,28,28] = pixel/255, 0 = background"}
    props.update(extra or {})
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)


def export(checkpoint: Path, out: Path, version: str, temperature: float = 1.0) -> None:
    model, state = load_checkpoint(checkpoint)
    body = fold_batchnorm(model)
    if temperature != 1.0:
        last = [m for m in body if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():
            last.weight.div_(temperature)
            last.bias.div_(temperature)
    net = _WithSoftmax(body).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, (torch.zeros(1, 1, 28, 28),), str(out), input_names=["image"],
                      output_names=["logits", "probabilities"], opset_version=17, dynamo=False,
                      dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}, "probabilities": {0: "N"}})
    m = onnx.load(str(out))
    set_metadata(m, state["categories"], version, {"doodle.temperature": f"{temperature:.4f}"})
    onnx.checker.check_model(m)
    onnx.save(m, str(out))
    print(f"wrote {out} (epoch {state['epoch']}, val top-1 {state['val_top1']:.4f})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--version", default="1")
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args(argv)
    export(args.checkpoint, args.out, args.version, args.temperature)


if __name__ == "__main__":
    main()
