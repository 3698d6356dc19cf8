"""Writes the committed seed corpora (fuzz/corpus/<target>/): real drawings and the bad-input matrix's kinds.

    python3 fuzz/make_seeds.py      (needs clients/python/requirements.txt for the protobuf stubs, pycairo, and
                                     cjpeg from Debian's libjpeg-turbo-progs for the JPEG seeds)
"""
import gzip
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cairo

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
    # FuzzImage: byte 0 even = an encoded file follows; odd = raw pixels (byte 1 format, bytes 2-3 width).
    image_dir = ROOT / "fuzz" / "corpus" / "FuzzImage"
    image_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for i, d in enumerate(simplified[:2]):
        for name, fmt in (("rgb", cairo.FORMAT_RGB24), ("rgba-transparent", cairo.FORMAT_ARGB32)):
            images[f"png-{name}-{i}"] = b"\0" + canvas_png(d, fmt)
    grey = canvas_grey(simplified[0])
    images["png-grey"] = b"\0" + png_file(48, 40, 0, 8, grey)
    images["png-palette"] = b"\0" + png_file(48, 40, 3, 8, grey, palette=bytes(v for g in range(256) for v in (g, g, g)))
    images["png-grey16"] = b"\0" + png_file(48, 40, 0, 16, bytes(b for g in grey for b in (g, g)))
    images["png-header-only"] = b"\0" + png_file(100000, 100000, 0, 8, None)
    images["png-truncated"] = images["png-rgb-0"][: len(images["png-rgb-0"]) // 2]
    try:
        pgm = b"P5 48 40 255\n" + grey
        for name, flags in (("jpeg", []), ("jpeg-progressive", ["-progressive"])):
            images[name] = b"\0" + subprocess.run(["cjpeg", "-quality", "85", *flags], input=pgm, capture_output=True,
                                                  check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        print("cjpeg not found (apt-get install libjpeg-turbo-progs): no JPEG seeds")
    images["raw-grey"] = bytes([1, 0, 48, 0]) + grey
    images["raw-rgba"] = bytes([1, 1, 48, 0]) + bytes(v for g in grey for v in (g, g, g, 255))
    images["not-an-image"] = b"\0GIF89a"
    for name, data in images.items():
        (image_dir / name).write_bytes(data)
    seeds_image = frame(predict(request_id=30, image=pb.Image(encoded=images["png-rgb-0"][1:])))
    (frames_dir / "image-png").write_bytes(seeds_image)
    (frames_dir / "image-pixels").write_bytes(frame(predict(request_id=31, image=pb.Image(
        pixels=grey, width=48, height=40, pixel_format=1))))
    print(f"{len(seeds) + 2} FuzzFrames seeds, {len(list(pre_dir.iterdir()))} FuzzPreprocess seeds, "
          f"{len(images)} FuzzImage seeds")


def canvas_surface(strokes, fmt, width=48, height=40):
    surface = cairo.ImageSurface(fmt, width, height)
    ctx = cairo.Context(surface)
    if fmt == cairo.FORMAT_RGB24:
        ctx.set_source_rgb(1, 1, 1)
        ctx.paint()
    ctx.set_source_rgb(0, 0, 0)
    ctx.set_line_width(2.5)
    ctx.scale(width / 300, height / 300)
    ctx.translate(20, 20)
    for s in strokes:
        ctx.move_to(s[0][0], s[1][0])
        for x, y in zip(s[0], s[1]):
            ctx.line_to(x, y)
        ctx.stroke()
    return surface


def canvas_png(strokes, fmt):
    import io
    out = io.BytesIO()
    canvas_surface(strokes, fmt).write_to_png(out)
    return out.getvalue()


def canvas_grey(strokes):
    surface = canvas_surface(strokes, cairo.FORMAT_RGB24)
    data, stride = bytes(surface.get_data()), surface.get_stride()
    return bytes(data[y * stride + 4 * x + 1] for y in range(40) for x in range(48))


def png_file(width, height, colour, depth, pixels, palette=None):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if pixels is None:
        return out
    if palette:
        out += chunk(b"PLTE", palette)
    row = len(pixels) // height
    raw = b"".join(b"\0" + pixels[y * row:(y + 1) * row] for y in range(height))
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    main()
