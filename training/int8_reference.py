"""An exact-integer reference for quantised (QDQ) doodle models, in numpy: the arithmetic doodled's engine runs,
the same result on every CPU.

    python -m training.int8_reference --model models/quickdraw-345/model.onnx [--check-goldens DIR]

It reads the QDQ graph that ``training.quantize`` writes (uint8 activations, int8 symmetric weights per output
channel, int32 biases) and computes each layer as the engine does:

- the image: ``q = clamp(nearbyint((p / 255) / scale) + zp)`` in float32;
- Conv and Gemm: an exact integer sum of ``(q_a - zp_a) * q_w`` plus the int32 bias (padding contributes zero),
  then ``v = float32(acc) * float32(float32(s_a * s_w) / s_out)``, clamped to the output's range and rounded half
  to even, plus the output's zero point; a Relu clamps at the zero point;
- MaxPool and Flatten on the uint8 codes (their quantisation is their input's);
- Softmax on the dequantised logits.

The integer sums are done in float64, which is exact for these sizes (|sum| < 2^53), so BLAS may add them in any
order. Nothing here depends on onnxruntime's kernels, whose AVX2 form saturates (see training/evaluate.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper


@dataclass
class _Quantized:
    codes: np.ndarray  # uint8, NCHW or N x features
    scale: np.float32
    zero_point: int


@dataclass
class _Constant:
    values: np.ndarray
    scales: np.ndarray  # float32, per tensor (1) or per output channel
    zero_points: np.ndarray


@dataclass
class _Pending:
    op: str  # "conv", "gemm", "maxpool", "flatten", "relu", "add", "add_constant"
    node: onnx.NodeProto
    x: _Quantized
    w: _Constant | None = None  # conv/gemm weights; add_constant: the constant
    b: _Constant | None = None
    relu: bool = False
    trans_b: bool = True
    y: _Quantized | None = None  # add: the second activation


class Int8Reference:
    """A QDQ model run with exact integer arithmetic. ``logit_codes`` gives the uint8 logits the engine computes;
    ``probabilities`` their softmax."""

    def __init__(self, model_path: Path | str) -> None:
        self.model = onnx.load(str(model_path))
        self.init = {t.name: numpy_helper.to_array(t) for t in self.model.graph.initializer}
        self.input_name = self.model.graph.input[0].name
        self.output_names = [o.name for o in self.model.graph.output]

    # -- public API ---------------------------------------------------------------------------------------------

    def run(self, images: np.ndarray) -> tuple[_Quantized, dict[str, np.ndarray]]:
        """Runs N x 784 uint8 images; returns the logits' quantised tensor and every graph output by name."""
        env: dict[str, object] = {self.input_name: ("image", np.asarray(images, np.uint8).reshape(-1, 1, 28, 28))}
        logits: _Quantized | None = None
        outputs: dict[str, np.ndarray] = {}
        for node in self.model.graph.node:
            op = node.op_type
            if op == "DequantizeLinear" and node.input[0] in self.init:
                env[node.output[0]] = self._constant(node)
            elif op == "QuantizeLinear":
                scale, zp = self._params(node)
                src = env[node.input[0]]
                if isinstance(src, tuple) and src[0] == "image":
                    x = src[1].astype(np.float32) / np.float32(255)
                    q = np.rint(x / scale) + np.float32(zp)
                    env[node.output[0]] = _Quantized(np.clip(q, 0, 255).astype(np.uint8), scale, zp)
                elif isinstance(src, _Pending):
                    env[node.output[0]] = self._emit(src, scale, zp)
                else:
                    raise ValueError(f"{node.name}: QuantizeLinear of an unsupported value")
            elif op == "DequantizeLinear":
                q = env[node.input[0]]
                scale, zp = self._params(node)
                if not isinstance(q, _Quantized) or q.scale != scale or q.zero_point != zp:
                    raise ValueError(f"{node.name}: DequantizeLinear must undo its QuantizeLinear")
                env[node.output[0]] = q
                if node.output[0] in self.output_names:
                    logits = q
                    outputs[node.output[0]] = (q.codes.astype(np.float32) - np.float32(zp)) * scale
            elif op in ("Conv", "Gemm", "MatMul"):
                if op == "Gemm" and (self._attr(node, "transA", 0) != 0 or self._attr(node, "alpha", 1.0) != 1.0
                                     or self._attr(node, "beta", 1.0) != 1.0):
                    raise ValueError(f"{node.name}: only Gemm with transA=0, alpha=beta=1")
                b = env[node.input[2]] if len(node.input) > 2 and node.input[2] else None
                env[node.output[0]] = _Pending("conv" if op == "Conv" else "gemm", node, env[node.input[0]],
                                               env[node.input[1]], b,
                                               trans_b=op == "Conv" or self._attr(node, "transB", 0) == 1)
            elif op == "Add":
                a, c = env[node.input[0]], env[node.input[1]]
                if isinstance(a, _Pending) and a.op == "gemm" and a.b is None and isinstance(c, _Constant):
                    env[node.output[0]] = _Pending("gemm", a.node, a.x, a.w, c, trans_b=a.trans_b)
                elif isinstance(a, _Quantized) and isinstance(c, _Constant):
                    env[node.output[0]] = _Pending("add_constant", node, a, c)
                elif isinstance(a, _Constant) and isinstance(c, _Quantized):
                    env[node.output[0]] = _Pending("add_constant", node, c, a)
                elif isinstance(a, _Quantized) and isinstance(c, _Quantized):
                    env[node.output[0]] = _Pending("add", node, a, y=c)
                else:
                    raise ValueError(f"{node.name}: unsupported Add")
            elif op == "Relu":
                p = env[node.input[0]]
                if isinstance(p, _Quantized):
                    env[node.output[0]] = _Pending("relu", node, p)
                elif isinstance(p, _Pending) and p.op in ("conv", "gemm", "add", "add_constant"):
                    env[node.output[0]] = _Pending(p.op, p.node, p.x, p.w, p.b, True, p.trans_b, p.y)
                else:
                    raise ValueError(f"{node.name}: unsupported Relu")
            elif op in ("MaxPool", "Flatten"):
                env[node.output[0]] = _Pending(op.lower(), node, env[node.input[0]])
            elif op == "Softmax":
                logit = outputs[node.input[0]].astype(np.float64)
                e = np.exp(logit - logit.max(axis=1, keepdims=True))
                outputs[node.output[0]] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            else:
                raise ValueError(f"{node.name}: operator {op} is not supported")
        if logits is None:
            raise ValueError("no dequantised output")
        return logits, outputs

    def logit_codes(self, images: np.ndarray, batch: int = 512) -> np.ndarray:
        """The model's uint8 logits (N x classes), exactly as doodled's engine computes them."""
        return self._batched(images, batch, lambda logits, _: logits.codes)

    def logits(self, images: np.ndarray, batch: int = 512) -> np.ndarray:
        """The dequantised logits (N x classes)."""
        return self._batched(images, batch, lambda logits, _: (logits.codes.astype(np.float32)
                                                               - np.float32(logits.zero_point)) * logits.scale)

    def probabilities(self, images: np.ndarray, batch: int = 512) -> np.ndarray:
        """Softmax of the dequantised logits (N x classes)."""
        name = "probabilities" if "probabilities" in self.output_names else self.output_names[0]
        return self._batched(images, batch, lambda _, outputs: outputs[name])

    def _batched(self, images: np.ndarray, batch: int, pick) -> np.ndarray:
        return np.concatenate([pick(*self.run(images[i : i + batch])) for i in range(0, len(images), batch)])

    # -- layers -------------------------------------------------------------------------------------------------

    def _emit(self, p: _Pending, scale: np.float32, zp: int) -> _Quantized:
        x = p.x
        if p.op in ("maxpool", "flatten"):
            if x.scale != scale or x.zero_point != zp:
                raise ValueError(f"{p.node.name}: {p.op} must keep its input's quantisation")
            if p.op == "flatten":
                return _Quantized(x.codes.reshape(len(x.codes), -1), scale, zp)
            kh, kw = self._attr(p.node, "kernel_shape")
            sh, sw = self._attr(p.node, "strides", [kh, kw])
            if any(self._attr(p.node, "pads", [0, 0, 0, 0])) or self._attr(p.node, "ceil_mode", 0):
                raise ValueError(f"{p.node.name}: MaxPool with padding or ceil_mode is not supported")
            n, c, h, w = x.codes.shape
            oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
            out = np.zeros((n, c, oh, ow), np.uint8)
            for ky in range(kh):
                for kx in range(kw):
                    np.maximum(out, x.codes[:, :, ky : ky + sh * oh : sh, kx : kx + sw * ow : sw], out=out)
            return _Quantized(out, scale, zp)
        if p.op in ("relu", "add", "add_constant"):
            return self._elementwise(p, scale, zp)
        w, b = p.w, p.b
        if not p.trans_b:
            w = _Constant(np.ascontiguousarray(w.values.T), w.scales, w.zero_points)
        if w.values.dtype != np.int8 or np.any(w.zero_points != 0):
            raise ValueError(f"{p.node.name}: weights must be int8 and symmetric")
        cout = w.values.shape[0]
        w_scales = np.broadcast_to(w.scales, (cout,)).astype(np.float32)
        acc_scales = (np.float32(x.scale) * w_scales).astype(np.float32)
        centred = x.codes.astype(np.float64) - x.zero_point
        if p.op == "conv":
            cols, oh, ow = self._im2col(p.node, centred, w.values.shape)
            acc = cols @ w.values.reshape(cout, -1).T.astype(np.float64)  # (N*oh*ow) x cout
        else:
            acc = centred @ w.values.T.astype(np.float64)  # N x cout
        acc = acc + self._bias(p.node, b, cout, acc_scales)
        if np.abs(acc).max(initial=0) >= 2**31:
            raise ValueError(f"{p.node.name}: accumulator overflows int32")
        multipliers = (acc_scales / np.float32(scale)).astype(np.float32)
        lo = max(0, zp) if p.relu else 0
        v = acc.astype(np.int32).astype(np.float32) * multipliers
        v = np.minimum(np.maximum(v, np.float32(lo - zp)), np.float32(255 - zp))
        q = (np.rint(v).astype(np.int32) + zp).astype(np.uint8)
        if p.op == "conv":
            q = q.reshape(len(x.codes), oh, ow, cout).transpose(0, 3, 1, 2)
        return _Quantized(np.ascontiguousarray(q), scale, zp)

    def _elementwise(self, p: _Pending, scale: np.float32, zp: int) -> _Quantized:
        """Add (two activations, or an activation and a per-channel constant) and a stand-alone Relu:
        ``v = float32(a - za) * (sa / so) + float32(b - zb) * (sb / so)`` (or ``+ (c / so)``), clamped, rounded half
        to even."""
        x = p.x
        a = (x.codes.astype(np.int32) - x.zero_point).astype(np.float32)
        if p.op == "relu":
            if x.scale != scale or x.zero_point != zp:
                raise ValueError(f"{p.node.name}: a separate Relu must keep its input's quantisation")
            v = a * np.float32(1) + a * np.float32(0)
        elif p.op == "add":
            y = p.y
            b = (y.codes.astype(np.int32) - y.zero_point).astype(np.float32)
            v = a * np.float32(x.scale / scale) + b * np.float32(y.scale / scale)
        else:
            c = p.w
            real = ((c.values.astype(np.int64) - c.zero_points).astype(np.float32) * c.scales / np.float32(scale))
            real = real.astype(np.float32).reshape(-1)
            shape = (1, -1) + (1,) * (a.ndim - 2) if len(real) > 1 else (1,)
            v = a * np.float32(x.scale / scale) + real.reshape(shape)
        lo = zp if (p.relu or p.op == "relu") else 0
        v = np.minimum(np.maximum(v.astype(np.float32), np.float32(lo - zp)), np.float32(255 - zp))
        return _Quantized((np.rint(v).astype(np.int32) + zp).astype(np.uint8), scale, zp)

    def _im2col(self, node, x: np.ndarray, wshape) -> tuple[np.ndarray, int, int]:
        _, cin, kh, kw = wshape
        if self._attr(node, "group", 1) != 1 or any(d != 1 for d in self._attr(node, "dilations", [1, 1])):
            raise ValueError(f"{node.name}: grouped or dilated convolution is not supported")
        sh, sw = self._attr(node, "strides", [1, 1])
        pt, pl, pb, pr = self._attr(node, "pads", [0, 0, 0, 0])
        n, c, h, w = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))  # centred codes: padding contributes 0
        oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
        cols = np.empty((n, oh, ow, c, kh, kw), np.float64)
        for ky in range(kh):
            for kx in range(kw):
                cols[:, :, :, :, ky, kx] = xp[:, :, ky : ky + sh * oh : sh, kx : kx + sw * ow : sw].transpose(0, 2, 3, 1)
        return cols.reshape(n * oh * ow, c * kh * kw), oh, ow

    def _bias(self, node, b: _Constant | None, n: int, acc_scales: np.ndarray) -> np.ndarray:
        """The int32 bias in the accumulator's scale, as the engine takes it (stored int32 values when their scale
        is the accumulator's, else rounded from the real value)."""
        if b is None:
            return np.zeros(n)
        scales = np.broadcast_to(b.scales, (n,)).astype(np.float32)
        zps = np.broadcast_to(b.zero_points, (n,)).astype(np.int64)
        if b.values.dtype == np.int32 and not zps.any() and np.all(np.abs(scales - acc_scales) <= 1e-6 * acc_scales):
            return b.values.astype(np.float64)
        real = (b.values.astype(np.int64) - zps).astype(np.float32) * scales
        return np.rint(real / acc_scales).astype(np.float64)

    # -- graph helpers ------------------------------------------------------------------------------------------

    def _constant(self, node) -> _Constant:
        values = self.init[node.input[0]]
        scales = np.atleast_1d(self.init[node.input[1]]).astype(np.float32)
        zps = np.atleast_1d(self.init[node.input[2]]) if len(node.input) > 2 and node.input[2] else np.zeros(1)
        return _Constant(values, scales, zps.astype(np.int64))

    def _params(self, node) -> tuple[np.float32, int]:
        scale = np.float32(self.init[node.input[1]])
        if len(node.input) < 3 or self.init[node.input[2]].dtype != np.uint8:
            raise ValueError(f"{node.name}: activations must be uint8 with a zero point")
        return scale, int(self.init[node.input[2]])

    @staticmethod
    def _attr(node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--check-goldens", type=Path, help="a goldens directory (images.u8, logits.u8) to compare with")
    args = ap.parse_args(argv)
    ref = Int8Reference(args.model)
    if args.check_goldens:
        images = np.fromfile(args.check_goldens / "images.u8", np.uint8).reshape(-1, 784)
        want = np.fromfile(args.check_goldens / "logits.u8", np.uint8).reshape(len(images), -1)
        got = ref.logit_codes(images)
        diff = got.astype(np.int32) - want
        print(f"{len(images)} images: {int((diff != 0).sum())} of {diff.size} logits differ "
              f"(largest difference {int(np.abs(diff).max())})")
        raise SystemExit(1 if diff.any() else 0)


if __name__ == "__main__":
    main()
