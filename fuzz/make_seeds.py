"""Writes the committed seed corpora (fuzz/corpus/<target>/): real drawings and the bad-input matrix's kinds.

    python3 fuzz/make_seeds.py      (needs clients/python/requirements.txt for the protobuf stubs)
"""
import gzip
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python"))
from doodle_proto import load  # noqa: E402

pb, _ = load()
DATA = ROOT.parent / "shared" / "data" / "quickdraw"


def frame(payload: bytes, flags: int = 0) -> bytes:
    return bytes([flags]) + struct.pack(">I", len(payload)) + payload


def predict(**fields) -> bytes:
    return pb.ClientMessage(predict=pb.PredictRequest(**fields)).SerializeToString()


def drawing(strokes, fmt=0):
    return pb.Drawing(strokes=[pb.Stroke(x=s[0], y=s[1], t=s[2] if len(s) > 2 else []) for s in strokes], format=fmt)


def records(name, n):
    with gzip.open(DATA / name, "rt") as f:
        return [json.loads(next(f))["drawing"] for _ in range(n)]


def main() -> None:
    frames_dir = ROOT / "fuzz" / "corpus" / "FuzzFrames"
    pre_dir = ROOT / "fuzz" / "corpus" / "FuzzPreprocess"
    frames_dir.mkdir(parents=True, exist_ok=True)
    pre_dir.mkdir(parents=True, exist_ok=True)
    simplified, raw = records("simplified.ndjson.gz", 4), records("raw.ndjson.gz", 2)
    seeds = {
        "bitmap": frame(predict(request_id=1, bitmap=bytes(784))),
        "bitmap-candidates": frame(predict(request_id=2, bitmap=bytes(784), top_k=2, candidate_labels=["cat", "dog"],
                                           candidate_indices=[3, 7])),
        "model-info": frame(pb.ClientMessage(model_info=pb.ModelInfoRequest(request_id=3)).SerializeToString()),
        "empty-frame": frame(b""),
        "compressed": frame(predict(bitmap=bytes(784)), flags=1),
        "two-frames": frame(predict(request_id=4, bitmap=bytes(784))) + frame(predict(request_id=5, top_k=1,
                                                                                         bitmap=bytes(784))),
        "deadline": frame(predict(request_id=6, bitmap=bytes(784), deadline_ms=1)),
        "xy-mismatch": frame(predict(strokes=pb.Drawing(strokes=[pb.Stroke(x=[1, 2, 3], y=[1, 2])]))),
        "truncated": frame(predict(bitmap=bytes(784)))[:40],
    }
    for i, d in enumerate(simplified):
        seeds[f"simplified-{i}"] = frame(predict(request_id=10 + i, strokes=drawing(d, fmt=2)))
    for i, d in enumerate(raw):
        seeds[f"raw-{i}"] = frame(predict(request_id=20 + i, strokes=drawing(d, fmt=1)))
    for name, data in seeds.items():
        (frames_dir / name).write_bytes(data)

    def compact(strokes, fmt):
        out = bytes([fmt])
        for s in strokes:
            pts = list(zip(s[0], s[1]))[:255]
            out += bytes([len(pts)]) + b"".join(struct.pack("<ff", x, y) for x, y in pts)
        return out

    for i, d in enumerate(simplified):
        (pre_dir / f"simplified-{i}").write_bytes(compact(d, 2))
    for i, d in enumerate(raw):
        (pre_dir / f"raw-{i}").write_bytes(compact(d, 1))
    (pre_dir / "dot").write_bytes(compact([[[100], [100]]], 0))
    (pre_dir / "equal-points").write_bytes(compact([[[5, 5, 5], [5, 5, 5]]], 1))
    (pre_dir / "negative").write_bytes(compact([[[-500, -100, -100], [-300, -300, 20]]], 1))
    # What FuzzPreprocess found in the rasteriser's first version: edges that tie on a cell, ordered by cairo's
    # run-based merge rather than a stable sort (the normalised drawing, sent as simplified).
    tie = [
        [[11, 31, 46, 70, 243], [243, 245, 251, 252, 237]],
        [[80, 97, 125, 0, 129, 139, 147, 156, 162, 175, 180, 194], [245, 170, 94, 89, 84, 45, 102, 115, 152, 181, 218, 248]],
        [[96, 105, 112, 122, 140, 141, 139, 144, 155, 157, 158, 175, 184], [237, 196, 180, 109, 79, 40, 162, 176, 192, 0, 198, 228, 255]],
        [[110, 127, 136, 145, 159, 167, 179], [156, 154, 139, 133, 157, 161, 161]],
        [[80, 129, 155], [192, 189, 181]],
    ]
    (pre_dir / "tie-merge-order").write_bytes(compact(tie, 2))
    print(f"{len(seeds)} FuzzFrames seeds, {len(list(pre_dir.iterdir()))} FuzzPreprocess seeds")


if __name__ == "__main__":
    main()
