"""Draws real Quick, Draw! drawings onto canvases the way a web page or game client would, and writes them as PNG
files with an ndjson manifest that `doodle eval` reads (`--input image` sends the PNG, `--input strokes` the same
drawing's strokes).

Each drawing gets a canvas of random size (280-800 x 280-600 px), a pen of random width (2.5-14 px, round caps and
joins, anti-aliased), and is scaled so that it spans 45-90 % of the canvas, anywhere on it. The strokes drawn are
the raw ones (the player's own coordinates) where raw.ndjson.gz has the drawing, the simplified ones otherwise.

Styles (--style): `paper` dark ink on white (the default, what the issue's figures use); `mixed` a third each of
paper, light ink on a dark canvas, and opaque ink on a transparent canvas (getImageData without a background).

Usage: python3 bench/image/make_canvases.py DRAWINGS.ndjson.gz OUT_DIR [--raw RAW.ndjson.gz] [--seed 1]
       [--limit N] [--style paper|mixed] [--size WxH]
"""
import argparse
import gzip
import json
import os
import random

import cairo


def read_ndjson(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def draw(strokes, rng, style, size=None):
    width, height = size or (rng.randint(280, 800), rng.randint(280, 600))
    pen = rng.uniform(2.5, 14.0)
    xs = [x for s in strokes for x in s[0]]
    ys = [y for s in strokes for y in s[1]]
    min_x, min_y = min(xs), min(ys)
    extent_x, extent_y = max(max(xs) - min_x, 1e-6), max(max(ys) - min_y, 1e-6)
    span = rng.uniform(0.45, 0.90)
    # The drawing (its ink, pen included) takes `span` of the canvas along its tighter dimension.
    scale = min((span * width - pen) / extent_x, (span * height - pen) / extent_y)
    drawn_w, drawn_h = extent_x * scale + pen, extent_y * scale + pen
    left = rng.uniform(0, width - drawn_w) + pen / 2
    top = rng.uniform(0, height - drawn_h) + pen / 2
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, width, height)
    ctx = cairo.Context(surface)
    ink = rng.uniform(0.0, 0.25)
    if style == "paper":
        ctx.set_source_rgb(1, 1, 1)
        ctx.paint()
        ctx.set_source_rgb(ink, ink * rng.uniform(0.5, 1), ink * rng.uniform(0.5, 1.5))
    elif style == "dark":
        ctx.set_source_rgb(0.1, 0.12, 0.15)
        ctx.paint()
        ctx.set_source_rgb(1 - ink, 1 - ink, 1 - ink / 2)
    else:  # transparent canvas, opaque ink
        ctx.set_source_rgba(ink, ink, ink, 1)
    ctx.set_line_width(pen)
    ctx.set_line_cap(cairo.LINE_CAP_ROUND)
    ctx.set_line_join(cairo.LINE_JOIN_ROUND)
    for s in strokes:
        pts = list(zip(s[0], s[1]))
        if not pts:
            continue
        ctx.move_to(left + (pts[0][0] - min_x) * scale, top + (pts[0][1] - min_y) * scale)
        for x, y in pts:
            ctx.line_to(left + (x - min_x) * scale, top + (y - min_y) * scale)
        ctx.stroke()
    return surface, dict(width=width, height=height, pen=round(pen, 2), span=round(span, 3), style=style)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drawings")
    parser.add_argument("out")
    parser.add_argument("--raw", help="raw drawings by key_id (drawn instead of the simplified ones when present)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--style", choices=["paper", "mixed"], default="paper")
    parser.add_argument("--size", help="every canvas WxH pixels (e.g. 400x400) instead of a random size")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    records = read_ndjson(args.drawings)
    if args.limit:
        records = records[: args.limit]
    raw = {}
    if args.raw:
        wanted = {r.get("key_id") for r in records}
        raw = {r["key_id"]: r["drawing"] for r in read_ndjson(args.raw) if r.get("key_id") in wanted}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "canvases.ndjson"), "w") as manifest:
        for i, record in enumerate(records):
            strokes = raw.get(record.get("key_id"), record["drawing"])
            style = args.style if args.style == "paper" else rng.choice(["paper", "dark", "transparent"])
            size = tuple(int(v) for v in args.size.split("x")) if args.size else None
            surface, facts = draw(strokes, rng, style, size)
            name = f"{i:05d}.png"
            surface.write_to_png(os.path.join(args.out, name))
            manifest.write(json.dumps(dict(word=record["word"], key_id=record.get("key_id"), image=name,
                                           raw=record.get("key_id") in raw, drawing=strokes, **facts)) + "\n")
    print(f"{len(records)} canvases in {args.out} ({sum(1 for r in records if r.get('key_id') in raw)} drawn from raw strokes)")


if __name__ == "__main__":
    main()
