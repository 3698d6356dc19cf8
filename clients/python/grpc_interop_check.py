"""Checks a running doodled over gRPC with Python's grpcio (a client nobody on this project wrote).

    python3 clients/python/grpc_interop_check.py --target 127.0.0.1:7432 --drawings ../shared/data/quickdraw/simplified.ndjson.gz

Calls Predict (strokes and bitmap), an invalid Predict (expects INVALID_ARGUMENT), PredictStream with many
drawings, GetModelInfo, Health.Check (overall, the Classifier, an unknown service) and Health.Watch.
Prints one JSON line of what it saw; exits non-zero on the first failed expectation.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doodle_proto import load  # noqa: E402

pb, pb_grpc = load()


def expect(cond: bool, what: str) -> None:
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def drawing_request(pb, record: dict, request_id: int):
    req = pb.PredictRequest(request_id=request_id, top_k=3)
    req.strokes.format = pb.STROKE_FORMAT_SIMPLIFIED
    for stroke in record["drawing"]:
        req.strokes.strokes.add(x=stroke[0], y=stroke[1])
    return req


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--drawings", required=True, type=Path)
    ap.add_argument("--stream", type=int, default=200, help="drawings sent on one PredictStream")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds each call may take")
    args = ap.parse_args()

    records = []
    with gzip.open(args.drawings, "rt") as f:
        for line in f:
            records.append(json.loads(line))
            if len(records) >= args.stream:
                break

    seen: dict = {}
    with grpc.insecure_channel(args.target) as channel:
        grpc.channel_ready_future(channel).result(timeout=args.timeout)
        stub = pb_grpc.ClassifierStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        info = stub.GetModelInfo(pb.ModelInfoRequest(request_id=7), timeout=args.timeout)
        expect(info.request_id == 7, "GetModelInfo echoes request_id")
        expect(len(info.labels) == 345 and info.input_height == 28 and info.input_width == 28, "model info shape")
        seen["labels"] = len(info.labels)
        seen["model"] = f"{info.model_name} {info.model_version} {info.quantization}"

        r = stub.Predict(drawing_request(pb, records[0], 1), timeout=args.timeout)
        expect(r.request_id == 1 and len(r.predictions) == 3, "Predict answers top-3")
        expect(r.status.code == pb.OK, "Predict status OK")
        expect(r.predictions[0].label == info.labels[r.predictions[0].class_index], "label matches index")
        seen["predict_top1"] = r.predictions[0].label
        seen["predict_truth"] = records[0]["word"]

        bitmap = stub.Predict(pb.PredictRequest(request_id=2, bitmap=bytes(784), top_k=5), timeout=args.timeout)
        expect(len(bitmap.predictions) == 5, "bitmap Predict answers top-5")

        try:
            stub.Predict(pb.PredictRequest(request_id=3, bitmap=bytes(100)), timeout=args.timeout)
            expect(False, "a 100-byte bitmap must fail")
        except grpc.RpcError as e:
            expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"bad bitmap -> INVALID_ARGUMENT, got {e.code()}")
            seen["invalid_argument"] = e.details()

        requests = [drawing_request(pb, rec, 1000 + i) for i, rec in enumerate(records)]
        answers = list(stub.PredictStream(iter(requests), timeout=30))
        expect(len(answers) == len(requests), f"PredictStream answers every request ({len(answers)}/{len(requests)})")
        expect(sorted(a.request_id for a in answers) == [q.request_id for q in requests], "stream request ids")
        expect(all(a.status.code == pb.OK and len(a.predictions) == 3 for a in answers), "stream answers OK")
        by_id = {a.request_id: a for a in answers}
        correct = sum(by_id[1000 + i].predictions[0].label == rec["word"] for i, rec in enumerate(records))
        seen["stream_answers"] = len(answers)
        seen["stream_top1"] = round(correct / len(records), 3)

        for service in ("", "doodle.v1.Classifier"):
            h = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=args.timeout)
            expect(h.status == health_pb2.HealthCheckResponse.SERVING, f"health '{service}' SERVING")
        try:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=args.timeout)
            expect(False, "unknown service must fail")
        except grpc.RpcError as e:
            expect(e.code() == grpc.StatusCode.NOT_FOUND, "unknown service -> NOT_FOUND")
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
        first = next(watch)
        expect(first.status == health_pb2.HealthCheckResponse.SERVING, "Watch starts with SERVING")
        watch.cancel()
        seen["health"] = "SERVING"
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
