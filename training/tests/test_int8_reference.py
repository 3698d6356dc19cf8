"""The exact-integer reference, calibration, and resumable training."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.augment import partial
from training.calibrate import expected_calibration_error, fit_temperature, softmax
from training.int8_reference import Int8Reference

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "Tests/DoodleEngineTests/Fixtures"


@pytest.mark.parametrize("name,model", [("quickdraw-345", "models/quickdraw-345/model.onnx"),
                                        ("tiny", "Tests/DoodleEngineTests/Fixtures/tiny/tiny.onnx")])
def test_reference_gives_the_engines_golden_bits(name, model):
    """The goldens the Swift engine is held to (every kernel path) are the reference's bits, on any CPU."""
    d = FIXTURES / name
    images = np.fromfile(d / "images.u8", np.uint8).reshape(-1, 784)
    want = np.fromfile(d / "logits.u8", np.uint8).reshape(len(images), -1)
    got = Int8Reference(REPO / model).logit_codes(images)
    assert got.shape == want.shape
    assert np.array_equal(got, want), f"{int((got != want).sum())} logits differ"


def test_reference_detects_a_changed_weight(tmp_path):
    """A one-step change in one weight of the last layer changes the reference's logits: it reads the model."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(REPO / "models/quickdraw-345/model.onnx"))
    init = next(t for t in m.graph.initializer if t.name == "body.12.weight_quantized")
    w = numpy_helper.to_array(init).copy()
    w[0] = np.clip(w[0].astype(np.int16) + 40, -127, 127).astype(np.int8)
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(m, str(tmp_path / "changed.onnx"))
    images = np.fromfile(FIXTURES / "quickdraw-345/images.u8", np.uint8).reshape(-1, 784)[:64]
    before = Int8Reference(REPO / "models/quickdraw-345/model.onnx").logit_codes(images)
    after = Int8Reference(tmp_path / "changed.onnx").logit_codes(images)
    assert (before[:, 0] != after[:, 0]).any() and np.array_equal(before[:, 1:], after[:, 1:])


def test_temperature_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 3, size=(4000, 20))
    true_t = 1.7
    p = softmax(logits, true_t)
    labels = np.array([rng.choice(20, p=row) for row in p])
    assert abs(fit_temperature(logits, labels) - true_t) < 0.1
    # Scores drawn from their own probabilities are calibrated; the untempered ones are over-confident.
    assert expected_calibration_error(softmax(logits, true_t), labels) < 0.03
    assert expected_calibration_error(softmax(logits), labels) > 0.05


def test_partial_drawing_is_a_strict_prefix():
    rng = np.random.default_rng(1)
    strokes = [[[i, i + 1], [i, i + 2]] for i in range(6)]
    for _ in range(50):
        cut = partial(strokes, rng)
        assert 3 <= len(cut) < 6 and cut == strokes[: len(cut)]
    assert partial(strokes[:1], rng) == strokes[:1]


def test_training_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    base = [sys.executable, "-m", "training.train", "--out", str(out), "--source",
            str(REPO.parent / "shared/data/quickdraw/simplified.ndjson.gz"), "--classes", "circle,square",
            "--steps-per-epoch", "4", "--batch", "32", "--workers", "0", "--ema", "0.9"]
    subprocess.run(base + ["--epochs", "2"], cwd=REPO, check=True, timeout=600, capture_output=True)
    run = subprocess.run(base + ["--epochs", "3", "--resume"], cwd=REPO, check=True, timeout=600,
                         capture_output=True, text=True)
    assert "resuming after epoch 2" in run.stdout
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3] and all("ema_top1" in r for r in log)
    import torch

    assert torch.load(out / "last.pt", weights_only=False)["epoch"] == 3
    assert torch.load(out / "ema.pt", weights_only=False)["ema"] == 0.9


def test_reference_gives_the_same_bits_on_an_emulated_avx2_only_cpu():
    """numpy picks its kernels by CPU; on an AMD Zen 3 (AVX2, no AVX-512, emulated by qemu) the reference must still
    give the goldens' bits, so the model card reproduces on either kind of CPU. scripts/test installs qemu-user."""
    import platform
    import shutil

    qemu = shutil.which("qemu-x86_64")
    if platform.machine() != "x86_64" or qemu is None:
        pytest.skip("needs an x86-64 host with qemu-user")
    script = """
import numpy as np
from numpy._core._multiarray_umath import __cpu_features__ as cpu
from training.int8_reference import Int8Reference
assert cpu["AVX2"] and not cpu["AVX512F"], cpu
d = "Tests/DoodleEngineTests/Fixtures/quickdraw-345"
images = np.fromfile(d + "/images.u8", np.uint8).reshape(-1, 784)[:100]
want = np.fromfile(d + "/logits.u8", np.uint8).reshape(-1, 345)[:100]
got = Int8Reference("models/quickdraw-345/model.onnx").logit_codes(images)
print("differ", int((got != want).sum()))
"""
    run = subprocess.run([qemu, "-cpu", "EPYC-Milan", sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "differ 0" in run.stdout, run.stdout
