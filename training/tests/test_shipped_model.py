import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from training import data as qd
from training.render import Renderer

MODEL = Path(__file__).resolve().parents[2] / "models/quickdraw-345"


def test_loads_with_expected_shapes_and_labels():
    sess = ort.InferenceSession(str(MODEL / "model.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "image" and inp.shape[1:] == [1, 28, 28]
    assert [o.name for o in sess.get_outputs()] == ["logits", "probabilities"]
    meta = {p.key: p.value for p in onnx.load(str(MODEL / "model.onnx")).metadata_props}
    categories = (qd.SHARED / "categories.txt").read_text().split("\n")[:345]
    assert meta["doodle.labels"].split("\n") == categories
    assert (MODEL / "labels.txt").read_text().split("\n")[:345] == categories
    out = sess.run(["probabilities"], {"image": np.zeros((3, 1, 28, 28), np.float32)})[0]
    assert out.shape == (3, 345)


def test_is_int8_quantized():
    m = onnx.load(str(MODEL / "model.onnx"))
    ops = {n.op_type for n in m.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    weights = [t for t in m.graph.initializer if t.name.endswith("weight_quantized")]
    assert weights and all(t.data_type == onnx.TensorProto.INT8 for t in weights)


def test_scores_a_fixed_handful_of_drawings_correctly():
    drawings = [json.loads(line) for line in (Path(__file__).parent / "fixed_drawings.ndjson").read_text().splitlines()]
    categories = qd.load_categories()
    r = Renderer()
    x = np.stack([r.render(d["drawing"]) for d in drawings]).astype(np.float32).reshape(-1, 1, 28, 28) / 255
    # Graph optimisations off: onnxruntime runs QuantizeLinear/DequantizeLinear and float operators, the model's
    # own arithmetic on any CPU. Optimised, it fuses them into int8 kernels whose AVX2 form (vpmaddubsw) saturates,
    # so its answers would depend on the CPU the test runs on.
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(MODEL / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    probs = sess.run(["probabilities"], {"image": x})[0]
    assert [categories[i] for i in probs.argmax(1)] == [d["word"] for d in drawings]


def test_model_card_figures_reproduce_with_its_own_command():
    """MODEL.md's int8 top-1 / top-3 (overall and class-balanced) come out of `python -m training.evaluate --validation` to 0.1 point, on any CPU
    (the evaluation runs the model's own operators, not onnxruntime's CPU-dependent fused int8 kernels)."""
    import re

    from training.evaluate import predict, report
    from training.train import render_all, split

    card = (MODEL / "MODEL.md").read_text()
    top1, top3 = map(float, re.search(r"\*\*int8 \(shipped\)\*\* \| \*\*([\d.]+) %\*\* \| \*\*([\d.]+) %\*\*", card).groups())
    categories = qd.load_categories()
    _, _, va_s, va_l, _, _ = split(qd.load(qd.default_sources(), categories), 20)
    r = report(predict(MODEL / "model.onnx", render_all(va_s)), np.asarray(va_l), categories)
    assert abs(100 * r["top1"] - top1) <= 0.1 and abs(100 * r["top3"] - top3) <= 0.1, (r["top1"], r["top3"], top1, top3)
    b1, b3 = map(float, re.search(r"\| int8, class-balanced \| ([\d.]+) % \| ([\d.]+) % \|", card).groups())
    assert abs(100 * r["balanced_top1"] - b1) <= 0.1 and abs(100 * r["balanced_top3"] - b3) <= 0.1, (r, b1, b3)


def test_shipped_model_loads_back_as_a_float_teacher():
    """`load_shipped_model` (distilling from a shipped model whose checkpoint is gone) reads back the trained
    network: its float logits, tempered as shipped, follow the exact int8 logits and pick the same class almost
    always. A layer loaded wrongly (a transposed weight, a lost bias or zero point) breaks both."""
    import torch

    from training.int8_reference import Int8Reference
    from training.model import load_shipped_model
    from training.train import render_all, split

    categories = qd.load_categories()
    _, _, va_s, _, _, _ = split(qd.load(qd.default_sources(), categories), 20)
    images = render_all(va_s[:400])
    meta = {p.key: p.value for p in onnx.load(str(MODEL / "model.onnx")).metadata_props}
    temperature = float(meta["doodle.temperature"])
    exact = Int8Reference(MODEL / "model.onnx").logits(images)
    with torch.no_grad():
        teacher = load_shipped_model(MODEL / "model.onnx")
        tempered = teacher(torch.from_numpy(images).float().div(255).reshape(-1, 1, 28, 28)).numpy() / temperature
    assert (tempered.argmax(1) == exact.argmax(1)).mean() >= 0.95
    assert np.abs(tempered - exact).mean() <= 0.05 * exact.std()
