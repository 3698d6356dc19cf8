"""Top-1 accuracy of a server on the same 200 real drawings (the first 200 of the shipped model's validation
split, rendered to 28 x 28 bitmaps as the dataset's were), and how often its top-1 agrees with onnxruntime run
directly on the same bitmaps (the check that a peer serves the model correctly before it is timed).

    python3 bench/peer/top1.py prepare OUT.npz               # renders the drawings (needs pycairo)
    python3 bench/peer/top1.py doodle HOST:PORT DATA.npz     # doodled or the Python peer: doodle.v1.Classifier/Predict
    VENV/bin/python bench/peer/top1.py triton HOST:PORT DATA.npz   # Triton: inference.GRPCInferenceService/ModelInfer

Prints one JSON object: {"drawings", "top1", "agreesWithOnnxruntime"}.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "quickdraw-345" / "model.onnx"
COUNT = 200


def prepare(out: str) -> None:
    sys.path.insert(0, str(REPO))
    from training.render import Renderer

    labels = (REPO / "models" / "quickdraw-345" / "labels.txt").read_text().splitlines()
    renderer = Renderer()
    images, classes = [], []
    with gzip.open(REPO / "models" / "quickdraw-345" / "validation.ndjson.gz", "rt") as f:
        for line in f:
            record = json.loads(line)
            images.append(np.asarray(renderer.render(record["drawing"]), dtype=np.uint8).reshape(784))
            classes.append(labels.index(record["word"]))
            if len(images) == COUNT:
                break
    np.savez(out, images=np.stack(images), labels=np.asarray(classes, dtype=np.int64))


def onnxruntime_top1(images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    x = images.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
    return session.run(["probabilities"], {"image": x})[0].argmax(axis=1)


def doodle_top1(target: str, images: np.ndarray) -> list[int]:
    import grpc

    sys.path.insert(0, str(REPO / "clients" / "python"))
    from doodle_proto import load

    pb, pb_grpc = load()
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.ClassifierStub(channel)
        return [stub.Predict(pb.PredictRequest(bitmap=image.tobytes(), top_k=1), timeout=30).predictions[0].class_index
                for image in images]


def triton_top1(target: str, images: np.ndarray) -> list[int]:
    import tritonclient.grpc as triton

    client = triton.InferenceServerClient(url=target)
    answers = []
    for image in images:
        tensor = triton.InferInput("bitmap", [1, 784], "UINT8")
        tensor.set_data_from_numpy(image.reshape(1, 784))
        result = client.infer("quickdraw", [tensor], client_timeout=30)
        answers.append(int(result.as_numpy("probabilities")[0].argmax()))
    client.close()
    return answers


def main() -> None:
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
        return
    kind, target, data = sys.argv[1:4]
    loaded = np.load(data)
    images, labels = loaded["images"], loaded["labels"]
    answers = np.asarray(doodle_top1(target, images) if kind == "doodle" else triton_top1(target, images))
    direct = onnxruntime_top1(images)
    print(json.dumps({"drawings": len(images), "top1": float((answers == labels).mean()),
                      "agreesWithOnnxruntime": float((answers == direct).mean())}))


if __name__ == "__main__":
    main()
