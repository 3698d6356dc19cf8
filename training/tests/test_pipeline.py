import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from training import data as qd
from training.evaluate import predict
from training.render import Renderer

REPO = Path(__file__).resolve().parents[2]


def two_class_file(tmp_path: Path, classes=("circle", "square")) -> Path:
    out = tmp_path / "two.ndjson"
    with open(out, "w") as f:
        for line in gzip.open(qd.SHARED / "simplified.ndjson.gz", "rt"):
            if json.loads(line)["word"] in classes:
                f.write(line)
    return out


def test_evaluate_command_on_a_tiny_file(tmp_path):
    src = two_class_file(tmp_path)
    lines = src.read_text().splitlines()[:8]
    tiny = tmp_path / "tiny.ndjson"
    tiny.write_text("\n".join(lines) + "\n")
    model = REPO / "models/quickdraw-345/model.onnx"
    run = subprocess.run([sys.executable, "-m", "training.evaluate", "--model", str(model), str(tiny), "--json",
                          str(tmp_path / "r.json")], cwd=REPO, capture_output=True, text=True, check=True)
    m = re.search(r"drawings: (\d+)\s+top-1: ([\d.]+)%\s+top-3: ([\d.]+)%", run.stdout)
    assert m and int(m.group(1)) == 8
    # Same numbers computed directly.
    cats = qd.load_categories()
    ds = [json.loads(line) for line in lines]
    r = Renderer()
    probs = predict(model, np.stack([r.render(d["drawing"]) for d in ds]))
    labels = np.array([cats.index(d["word"]) for d in ds])
    top1 = float((probs.argmax(1) == labels).mean())
    assert abs(float(m.group(2)) - 100 * top1) < 0.01
    table = json.loads((tmp_path / "r.json").read_text())
    assert {row["class"] for row in table["per_class"]} <= {"circle", "square"}
    assert "circle" in run.stdout or "square" in run.stdout


def test_smoke_training_on_two_classes_exports_and_quantizes(tmp_path):
    src = two_class_file(tmp_path)
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "training.train", "--out", str(out), "--source", str(src), "--classes",
                    "circle,square", "--epochs", "4", "--steps-per-epoch", "12", "--batch", "64", "--workers", "0",
                    "--lr", "0.01"], cwd=REPO, check=True, timeout=600)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 4
    assert log[-1]["loss"] < log[0]["loss"]
    assert (out / "model.pt").exists()
    subprocess.run([sys.executable, "-m", "training.export", "--checkpoint", str(out / "model.pt"), "--out",
                    str(out / "float.onnx")], cwd=REPO, check=True, timeout=120)
    m = onnx.load(str(out / "float.onnx"))
    assert [o.name for o in m.graph.output] == ["logits", "probabilities"]
    sess = ort.InferenceSession(str(out / "float.onnx"), providers=["CPUExecutionProvider"])
    p = sess.run(["probabilities"], {"image": np.zeros((2, 1, 28, 28), np.float32)})[0]
    assert p.shape == (2, 345) and np.allclose(p.sum(1), 1, atol=1e-4)
    # --reduce-range keeps every weight within [-64, 64] (what the AVX2 path's fast form needs); the default does not.
    from onnx import numpy_helper
    for flag, widest in (([], 127), (["--reduce-range"], 64)):
        subprocess.run([sys.executable, "-m", "training.quantize", "--float", str(out / "float.onnx"), "--out",
                        str(out / "int8.onnx"), "--calibration-images", "64", *flag], cwd=REPO, check=True, timeout=300)
        weights = [numpy_helper.to_array(t) for t in onnx.load(str(out / "int8.onnx")).graph.initializer]
        assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights if w.dtype == np.int8) == widest


def test_distillation_from_a_wider_teacher(tmp_path):
    """A teacher of another width trains, then a student learns from it and the labels; the student's checkpoint
    records its teacher and the teacher's architecture is read back from its own checkpoint."""
    src = two_class_file(tmp_path)
    common = ["--source", str(src), "--classes", "circle,square", "--steps-per-epoch", "12", "--batch", "64",
              "--workers", "0", "--lr", "0.01", "--threads", "1"]
    teacher = tmp_path / "teacher"
    subprocess.run([sys.executable, "-m", "training.train", "--out", str(teacher), "--epochs", "4", "--widths",
                    "16,24,48", "--hidden", "64", *common], cwd=REPO, check=True, timeout=600)
    student = tmp_path / "student"
    run = subprocess.run([sys.executable, "-m", "training.train", "--out", str(student), "--epochs", "3",
                          "--teacher", str(teacher / "model.pt"), "--teacher-flip", "--mixup", "0.4", *common],
                         cwd=REPO, check=True, timeout=600, capture_output=True, text=True)
    assert re.search(r"teachers \(1, mirrored\): validation top-1 [\d.]+", run.stdout)
    log = [json.loads(line) for line in (student / "log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and log[-1]["loss"] < log[0]["loss"]
    import torch

    from training.model import load_checkpoint
    state = torch.load(student / "model.pt", weights_only=False)
    assert state["args"]["teacher"] == [str(teacher / "model.pt")]
    import hashlib

    from training.model_card import distillation_clause
    digest = hashlib.sha256((teacher / "model.pt").read_bytes()).hexdigest()
    assert state["args"]["teacher_sha256"] == [digest]
    assert f"(sha256 {digest[:16]}...)" in distillation_clause(state["args"])
    # Resuming with other teacher bytes than the run started with is refused (a shipped model.onnx teacher changes
    # when a model ships).
    other = subprocess.run([sys.executable, "-m", "training.train", "--out", str(student), "--epochs", "4", "--resume",
                            "--teacher", str(teacher / "last.pt"), "--teacher-flip", *common], cwd=REPO,
                           timeout=600, capture_output=True, text=True)
    assert other.returncode != 0 and "the teachers are not the files this run started with" in other.stderr
    assert tuple(state["args"]["widths"]) == (32, 40, 96)
    # training.evaluate scores a checkpoint in float as the teacher runs it (temperature 1, mirrored).
    from training.evaluate import predict_ensemble
    from training.train import Teacher, to_input
    images = np.fromfile(REPO / "Tests/DoodleEngineTests/Fixtures/quickdraw-345/images.u8", np.uint8)[: 16 * 784]
    images = images.reshape(16, 784)
    as_teacher = Teacher([teacher / "model.pt"], 1.0, True, torch.device("cpu")).probabilities(
        to_input(torch.from_numpy(images.copy())))
    assert np.allclose(predict_ensemble([teacher / "model.pt"], images, mirror=True), as_teacher.numpy(), atol=1e-5)
    assert load_checkpoint(teacher / "model.pt")[0].features[0].out_channels == 16
    # --init starts from the teacher's weights: with a learning rate of 0 its parameters come out unchanged (only
    # BatchNorm's running statistics move), and the checkpoint says where it started.
    tuned = tmp_path / "tuned"
    subprocess.run([sys.executable, "-m", "training.train", "--out", str(tuned), "--epochs", "1", "--widths",
                    "16,24,48", "--hidden", "64", "--init", str(teacher / "model.pt"), *common, "--lr", "0"],
                   cwd=REPO, check=True, timeout=600)
    start, end = load_checkpoint(teacher / "model.pt")[0], load_checkpoint(tuned / "last.pt")[0]
    for (name, a), b in zip(start.named_parameters(), end.parameters()):
        assert torch.equal(a, b), name
    assert torch.load(tuned / "last.pt", weights_only=False)["args"]["init"] == str(teacher / "model.pt")


def test_a_trial_ship_leaves_the_shipped_goldens_alone(tmp_path):
    from training.ship import SHIPPED_GOLDENS, goldens_dir
    assert goldens_dir(REPO / "models/quickdraw-345") == SHIPPED_GOLDENS
    assert goldens_dir(REPO / "models" / ".." / "models/quickdraw-345") == SHIPPED_GOLDENS
    assert goldens_dir(tmp_path / "v6") == tmp_path / "v6" / "goldens"


def test_mixup_blends_each_image_with_another_and_keeps_its_label():
    import torch

    from training.train import mix
    torch.manual_seed(0)
    x = torch.arange(8, dtype=torch.float32).reshape(8, 1, 1, 1).expand(8, 1, 28, 28)
    y = torch.arange(8) + 100
    mixed, y_other, w = mix(x, y, 0.4)
    assert 0.0 <= w <= 1.0 and mixed.shape == x.shape
    other = y_other - 100  # which image each one was blended with
    assert sorted(other.tolist()) == list(range(8))  # a permutation of the batch
    expected = w * torch.arange(8.0) + (1 - w) * other.float()
    assert torch.allclose(mixed[:, 0, 5, 5], expected)
    weights = [mix(x, y, 0.4)[2] for _ in range(200)]
    assert min(weights) < 0.2 and max(weights) > 0.8  # Beta(0.4, 0.4) puts its weight near both ends


def test_distillation_loss_is_zero_only_when_the_student_agrees():
    import torch

    from training.train import distillation_loss
    logits = torch.randn(5, 345)
    for t in (1.0, 2.0):
        teacher_p = torch.softmax(logits / t, dim=1)
        assert float(distillation_loss(logits, teacher_p, t)) < 1e-5
        assert float(distillation_loss(logits.flip(1), teacher_p, t)) > 0.1


def test_teachers_in_bfloat16_give_nearly_the_float_targets():
    """--teacher-bfloat16 runs the teachers' forward passes in bfloat16: the softened targets move, but by far less
    than anything the student could learn from (the shipped model on 256 golden images, mirrored)."""
    import torch

    from training.train import Teacher, to_input
    images = np.fromfile(REPO / "Tests/DoodleEngineTests/Fixtures/quickdraw-345/images.u8", np.uint8)[: 256 * 784]
    x = to_input(torch.from_numpy(images.reshape(256, 784).copy()))
    model = REPO / "models/quickdraw-345/model.onnx"
    exact = Teacher([model], 2.0, True, torch.device("cpu")).probabilities(x)
    fast = Teacher([model], 2.0, True, torch.device("cpu"), bfloat16=True).probabilities(x)
    assert not torch.equal(exact, fast)  # bfloat16 did run
    kl = torch.nn.functional.kl_div(fast.log(), exact, reduction="batchmean")
    assert float(kl) < 1e-3
    assert float((exact.argmax(1) == fast.argmax(1)).float().mean()) > 0.97
    # Mirrored: the mean over each image and its mirror image.
    plain = Teacher([model], 2.0, False, torch.device("cpu"))
    assert torch.allclose(exact, (plain.probabilities(x) + plain.probabilities(x.flip(3))) / 2, atol=1e-6)
