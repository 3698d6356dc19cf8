"""onnxruntime single-thread throughput on the same model, images and batches as doodle-engine-bench.

    python3 bench/engine/ort_bench.py MODEL IMAGES.u8 [--batches 1,8,64,256] [--seconds 2] [--engine-suffix S]
"""

import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("images")
    ap.add_argument("--batches", default="1,8,64,256")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--engine-suffix", default="", help="appended to the engine's name in the output (e.g. -avx2)")
    args = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    images = np.fromfile(args.images, dtype=np.uint8).reshape(-1, 784)
    for batch in [int(b) for b in args.batches.split(",")]:
        # Same work as the daemon's engine call: bytes in, probabilities out (the /255 is part of the request).
        def run(offset: int) -> None:
            x = images[offset : offset + batch].astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
            sess.run(["probabilities"], {"image": x})

        offset = 0
        for _ in range(max(3, 2000 // batch)):
            run(offset)
            offset = (offset + batch) % (len(images) - batch)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            for _ in range(max(1, 256 // batch)):
                run(offset)
                offset = (offset + batch) % (len(images) - batch)
                done += batch
        rate = done / (time.perf_counter() - start)
        print(json.dumps({"engine": f"onnxruntime-{ort.__version__}{args.engine_suffix}", "batch": batch, "images_per_s": round(rate)}))


if __name__ == "__main__":
    main()
