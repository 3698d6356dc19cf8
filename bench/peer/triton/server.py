"""The Triton peer: NVIDIA Triton Inference Server (2.51, bundled by PyTriton 0.7.0) serving the same int8 ONNX model
through onnxruntime in a Python function, behind Triton's dynamic batcher, on Triton's standard KServe-v2 endpoints
(gRPC `inference.GRPCInferenceService/ModelInfer`, HTTP `/v2/models/quickdraw/infer`, metrics on their own port).
It is what a team that needs dynamic batching would deploy instead of doodled; `bench/peer/triton/run` sets up its
venv (pinned versions) and starts it.

    bench/out/triton/venv/bin/python bench/peer/triton/server.py --grpc-port 7552 --http-port 7553 --metrics-port 7554

The model `quickdraw` takes `bitmap` (UINT8, [784] per request: the 28 x 28 bitmap, 0 = background) and answers
`probabilities` (FP32, [345]); up to `--max-batch` (64) requests are run together, gathered for at most
`--queue-delay-us`, by `--instances` model instances (each its own onnxruntime session with `--ort-threads`).
Everything binds to 127.0.0.1. Prints "triton serving" once the model is ready.
"""

from __future__ import annotations

import argparse
import logging
import os
import sysconfig
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

REPO = Path(__file__).resolve().parents[3]


class CPUOnlyTriton(Triton):
    """Triton without the GPU memory pools it otherwise insists on reserving (there is no GPU here)."""

    def _prepare_triton_config(self, workspace) -> None:
        super()._prepare_triton_config(workspace)
        self._triton_server_config["pinned-memory-pool-byte-size"] = 0
        self._triton_server_config["cuda-memory-pool-byte-size"] = "0:0"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grpc-port", type=int, default=7552)
    ap.add_argument("--http-port", type=int, default=7553)
    ap.add_argument("--metrics-port", type=int, default=7554)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "quickdraw-345" / "model.onnx")
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--queue-delay-us", type=int, default=0, help="longest a request waits for others to batch with")
    ap.add_argument("--ort-threads", type=int, default=1, help="onnxruntime intra-op threads per run")
    ap.add_argument("--instances", type=int, default=2, help="model instances (Triton runs them concurrently)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Triton's Python backend stub embeds libpython: it must find this interpreter's (a venv's python may not be
    # the system's). Triton inherits the environment.
    libdir = sysconfig.get_config_var("LIBDIR")
    os.environ["LD_LIBRARY_PATH"] = ":".join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p)

    def make_infer():
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.ort_threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])

        @batch
        def infer(bitmap: np.ndarray) -> dict[str, np.ndarray]:
            images = bitmap.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
            return {"probabilities": session.run(["probabilities"], {"image": images})[0]}

        return infer, session.get_outputs()[0].shape[-1]

    instances = [make_infer() for _ in range(args.instances)]
    classes = instances[0][1]

    config = TritonConfig(
        http_address="127.0.0.1", http_port=args.http_port, grpc_address="127.0.0.1", grpc_port=args.grpc_port,
        metrics_address="127.0.0.1", metrics_port=args.metrics_port, allow_gpu_metrics=False, exit_on_error=True)
    with CPUOnlyTriton(config=config) as triton:
        triton.bind(
            model_name="quickdraw",
            infer_func=[infer for infer, _ in instances],
            inputs=[Tensor(name="bitmap", dtype=np.uint8, shape=(784,))],
            outputs=[Tensor(name="probabilities", dtype=np.float32, shape=(classes,))],
            config=ModelConfig(max_batch_size=args.max_batch,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=args.queue_delay_us)),
            strict=True,
        )
        print("triton serving", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
