"""Turn canvas pictures into training drawings through doodled's own image path.

    python -m training.trace_pictures [--images ../shared/data/quickdraw/extra-images-128.npz] \
        [--out training/data/extra-images-128-traced.ndjson.gz] [--bin .build/release]

``extra-images-128.npz`` holds 1,721 real drawings (about 5 per class) as a canvas client would send them. This
writes each as a PNG, sends it to a doodled started for the purpose (``doodle eval --input image --capture``, with
a capture store in a temporary directory), and exports the store (``doodle captures export``): every picture comes
back as the strokes the daemon traced from it, normalised as the daemon normalises them. Those strokes are what
the model sees when a client sends that picture, so training on them teaches it the image path's distribution.

The output is committed (``training/data/``), so training needs no Swift build; run this again after a change to
the image path. ``training.data`` reads it as **training-only** drawings: they never enter the validation split.
Needs release (or debug) builds of ``doodled`` and ``doodle``: ``swift build -c release --product doodled`` and
``--product doodle``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from . import data as qd

REPO = Path(__file__).resolve().parent.parent


def write_png(path: Path, image: np.ndarray) -> None:
    """An 8-bit greyscale PNG of ``image`` (H x W uint8)."""
    h, w = image.shape
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"doodled exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("doodled did not start listening")


def trace(images: np.ndarray, labels: np.ndarray, sources: np.ndarray, binaries: Path, out: Path) -> int:
    categories = qd.load_categories()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "png").mkdir()
        with open(tmp / "pictures.ndjson", "w") as manifest:
            for i, (img, label, src) in enumerate(zip(images, labels, sources)):
                write_png(tmp / "png" / f"{i:05d}.png", img)
                manifest.write(json.dumps({"word": categories[int(label)], "key_id": str(src),
                                           "image": f"png/{i:05d}.png", "drawing": []}) + "\n")
        port, grpc, http = free_port(), free_port(), free_port()
        daemon = subprocess.Popen(
            [str(binaries / "doodled"), "--model", str(REPO / "models/quickdraw-345"), "--listen", f"127.0.0.1:{port}",
             "--grpc-listen", f"127.0.0.1:{grpc}", "--http-listen", f"127.0.0.1:{http}",
             "--capture-dir", str(tmp / "store")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(port, daemon)
            run = subprocess.run([str(binaries / "doodle"), "eval", str(tmp / "pictures.ndjson"), "--input", "image",
                                  "--capture", "--server", f"127.0.0.1:{port}"], capture_output=True, text=True)
            print(run.stdout.strip())
            if run.returncode != 0:
                raise RuntimeError(f"doodle eval failed: {run.stderr.strip()}")
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
        subprocess.run([str(binaries / "doodle"), "captures", "export", str(tmp / "export"), "--store",
                        str(tmp / "store")], check=True)
        records = [json.loads(line) for line in open(tmp / "export" / "captures.ndjson")]
    # One line per picture, in the npz's order of classes and sources: stable bytes for git.
    records.sort(key=lambda r: (categories.index(r["word"]), json.dumps(r["drawing"])))
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out, "wb", mtime=0) as raw:
        for r in records:
            raw.write((json.dumps({"word": r["word"], "drawing": r["drawing"]}, separators=(",", ":")) + "\n").encode())
    return len(records)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=qd.SHARED / "extra-images-128.npz")
    ap.add_argument("--out", type=Path, default=qd.TRACED_PICTURES)
    ap.add_argument("--bin", type=Path, default=REPO / ".build/release",
                    help="directory holding doodled and doodle")
    args = ap.parse_args(argv)
    z = np.load(args.images)
    n = trace(z["images"], z["labels"], z["source"] if "source" in z.files else np.arange(len(z["labels"])),
              args.bin, args.out)
    print(f"{n} of {len(z['labels'])} pictures traced into {args.out}")


if __name__ == "__main__":
    main()
