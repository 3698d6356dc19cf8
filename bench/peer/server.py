"""The peer a team would otherwise deploy: a Python gRPC server (grpcio) serving the same int8 ONNX model with
onnxruntime and the same preprocessing (pycairo renderer and normaliser from training/), as the best-known
tutorials build it: a thread-pool grpcio server, one InferenceSession, one image per run.

    python3 bench/peer/server.py --port 7532 [--model models/quickdraw-345/model.onnx] [--workers 8]

It speaks doodle.v1.Classifier (Predict, PredictStream, GetModelInfo), so doodle-load --protocol grpc drives
it exactly as it drives doodled. Errors use the same gRPC codes. With --metrics-port it serves its answer counts
(`peer_requests_total{code="OK"}`, and `INVALID_ARGUMENT`) at http://127.0.0.1:PORT/metrics, so that a load
generator's successes can be checked against the server's own count.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections import Counter
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "clients" / "python"))
from doodle_proto import load  # noqa: E402
from training.normalize import looks_simplified, normalize  # noqa: E402
from training.render import Renderer  # noqa: E402

pb, pb_grpc = load()


class Classifier(pb_grpc.ClassifierServicer):
    def __init__(self, model: Path, threads: int) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.labels = meta["doodle.labels"].split("\n")
        self.name, self.version = meta.get("doodle.model_name", model.stem), meta.get("doodle.model_version", "")
        self.quantization = meta.get("doodle.quantization", "")
        self.local = threading.local()
        self.answers: Counter[str] = Counter()
        self.answers_lock = threading.Lock()

    def _count(self, code: str) -> None:
        with self.answers_lock:
            self.answers[code] += 1

    def _renderer(self) -> Renderer:
        if not hasattr(self.local, "renderer"):
            self.local.renderer = Renderer()
        return self.local.renderer

    def _image(self, request) -> np.ndarray:
        kind = request.WhichOneof("input")
        if kind == "bitmap":
            if len(request.bitmap) != 784:
                raise ValueError(f"bitmap has {len(request.bitmap)} bytes; it must be exactly 784 (28 x 28)")
            return np.frombuffer(request.bitmap, dtype=np.uint8)
        if kind == "strokes":
            strokes = [[list(s.x), list(s.y)] for s in request.strokes.strokes]
            if not strokes or any(len(x) != len(y) or not x for x, y in strokes):
                raise ValueError("every stroke needs as many x as y values, at least one")
            fmt = request.strokes.format
            raw = fmt == pb.STROKE_FORMAT_RAW or (fmt == pb.STROKE_FORMAT_AUTO and not looks_simplified(strokes))
            return self._renderer().render(normalize(strokes) if raw else strokes)
        raise ValueError("the request has no input: set strokes or bitmap")

    def _predict(self, request):
        image = self._image(request)
        x = image.astype(np.float32).reshape(1, 1, 28, 28) / 255.0
        probs = self.session.run(["probabilities"], {"image": x})[0][0]
        k = min(request.top_k or 5, len(self.labels))
        top = np.argsort(-probs)[:k]
        return pb.PredictResponse(
            request_id=request.request_id, model_name=self.name, model_version=self.version,
            predictions=[pb.Prediction(class_index=int(i), label=self.labels[i], score=float(probs[i])) for i in top])

    def Predict(self, request, context):
        try:
            response = self._predict(request)
        except ValueError as e:
            self._count("INVALID_ARGUMENT")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        self._count("OK")
        return response

    def PredictStream(self, request_iterator, context):
        for request in request_iterator:
            try:
                response = self._predict(request)
                self._count("OK")
                yield response
            except ValueError as e:
                self._count("INVALID_ARGUMENT")
                yield pb.PredictResponse(request_id=request.request_id,
                                         status=pb.Status(code=pb.INVALID_ARGUMENT, message=str(e)))

    def GetModelInfo(self, request, context):
        return pb.ModelInfoResponse(request_id=request.request_id, model_name=self.name, model_version=self.version,
                                    labels=self.labels, input_channels=1, input_height=28, input_width=28,
                                    quantization=self.quantization)


def serve_metrics(classifier: Classifier, port: int) -> None:
    """Answer counts in Prometheus' text form, on a thread of their own."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with classifier.answers_lock:
                counts = dict(classifier.answers)
            body = "".join(f'peer_requests_total{{code="{code}"}} {counts.get(code, 0)}\n'
                           for code in ("OK", "INVALID_ARGUMENT")).encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain; version=0.0.4")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7532)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "quickdraw-345" / "model.onnx")
    ap.add_argument("--workers", type=int, default=8, help="grpcio thread-pool size")
    ap.add_argument("--ort-threads", type=int, default=1, help="onnxruntime intra-op threads per run")
    ap.add_argument("--metrics-port", type=int, help="serve answer counts at http://127.0.0.1:PORT/metrics")
    args = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers))
    classifier = Classifier(args.model, args.ort_threads)
    pb_grpc.add_ClassifierServicer_to_server(classifier, server)
    if args.metrics_port:
        serve_metrics(classifier, args.metrics_port)
    health_servicer = health.HealthServicer()
    for service in ("", "doodle.v1.Classifier"):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    print(f"peer serving on {args.host}:{args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
