"""Loading Quick, Draw! data: the shared sample, or Google's full per-class files, into one in-memory set.

Sources (any mix):
- an ndjson(.gz) file of simplified or raw drawings (raw ones are normalised with ``normalize``);
- a directory of Google's per-class files (``*.ndjson``/``*.ndjson.gz`` and/or ``*.npy`` numpy_bitmap);
- an npz of bitmaps (``images``, ``labels``) like ``shared/data/quickdraw/bitmaps.npz``;
- an http(s) URL prefix of Google's bucket folder, fetched per class (``<prefix><class>.ndjson`` or ``.npy``);
- any of these prefixed ``train:``: its drawings are for training only and never enter the validation split (the
  pictures traced through the daemon's image path, ``TRACED_PICTURES``, are read this way).
Train/validation split is stratified by class and ordered by a stable hash of ``key_id`` (``validation_keys``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .normalize import looks_simplified, normalize

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "quickdraw"
TRACED_PICTURES = REPO / "training" / "data" / "extra-images-128-traced.ndjson.gz"
TRAIN_ONLY = "train:"


def load_categories(path: Path | None = None) -> list[str]:
    path = path or (REPO / "models" / "quickdraw-345" / "labels.txt")
    if not path.exists():
        path = SHARED / "categories.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _key_hash(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


def validation_keys(keys: list[str], labels: list[int], percent: int = 20, minimum: int = 2) -> set[str]:
    """Deterministic stratified split: within each class, drawings ordered by sha1(key_id); the first
    ``max(minimum, round(n * percent / 100))`` (never all of them) are validation. Every class is represented,
    and a drawing's side depends only on its key and its class's other keys, never on file order or machine."""
    by_class: dict[int, list[str]] = {}
    for k, l in zip(keys, labels):
        by_class.setdefault(l, []).append(k)
    out: set[str] = set()
    for ks in by_class.values():
        ks = sorted(ks, key=_key_hash)
        take = min(len(ks) - 1, max(minimum, round(len(ks) * percent / 100)))
        out.update(ks[:take])
    return out


def is_raw(drawing: list) -> bool:
    """Whether a drawing needs normalising: the daemon's rule for StrokeFormat AUTO (see ``looks_simplified``)."""
    return not looks_simplified(drawing)


@dataclass
class Dataset:
    """Stroke drawings (simplified, 0..255) and bitmaps (N x 784 uint8), each with a class index."""

    strokes: list = field(default_factory=list)
    stroke_labels: list = field(default_factory=list)
    stroke_keys: list = field(default_factory=list)
    bitmaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 784), np.uint8))
    bitmap_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    train_only_strokes: list = field(default_factory=list)
    train_only_labels: list = field(default_factory=list)


def _open_text(src: str):
    if src.startswith(("http://", "https://")):
        data = urllib.request.urlopen(src, timeout=120).read()
        if src.endswith(".gz"):
            data = gzip.decompress(data)
        return io.StringIO(data.decode())
    return gzip.open(src, "rt") if src.endswith(".gz") else open(src)


def read_ndjson(src: str, index: dict[str, int], records: dict[str, tuple], max_per_class: int | None = None) -> None:
    """Add the drawings of one ndjson file to ``records`` (key_id -> (label, simplified strokes)).

    A simplified drawing replaces a raw one with the same key_id: Google's own simplification wins.
    """
    per_class: dict[int, int] = {}
    with _open_text(src) as f:
        for n, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            word = d.get("word")
            if word not in index:
                raise ValueError(f"{src}:{n + 1}: unknown class {word!r}")
            label = index[word]
            if max_per_class is not None and per_class.get(label, 0) >= max_per_class:
                continue
            key = str(d.get("key_id", f"{src}:{n}"))
            raw = is_raw(d["drawing"])
            if raw and key in records and not records[key][2]:
                continue  # keep Google's simplified version
            strokes = normalize(d["drawing"]) if raw else [[list(s[0]), list(s[1])] for s in d["drawing"]]
            if not strokes:
                continue
            per_class[label] = per_class.get(label, 0) + 1
            records[key] = (label, strokes, raw)


def _load_npy(src: str) -> np.ndarray:
    if src.startswith(("http://", "https://")):
        return np.load(io.BytesIO(urllib.request.urlopen(src, timeout=300).read()))
    return np.load(src, mmap_mode="r")


def _class_from_filename(name: str, index: dict[str, int]) -> int:
    stem = name
    for suffix in (".ndjson.gz", ".ndjson", ".npy"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = urllib.parse.unquote(stem)
    for prefix in ("full_numpy_bitmap_", "full_simplified_", "full_raw_"):
        if stem.startswith(prefix):
            stem = stem[len(prefix) :]
    if stem not in index:
        raise ValueError(f"{name}: file name names no known class")
    return index[stem]


def load(sources: list[str], categories: list[str], max_per_class: int | None = None) -> Dataset:
    """Load every source into one Dataset (see the module doc for what a source can be)."""
    index = {c: i for i, c in enumerate(categories)}
    records: dict[str, tuple] = {}
    bitmaps, bitmap_labels = [], []
    train_only = [s[len(TRAIN_ONLY):] for s in sources if s.startswith(TRAIN_ONLY)]
    sources = [s for s in sources if not s.startswith(TRAIN_ONLY)]
    for src in sources:
        if src.startswith(("http://", "https://")) and src.endswith("/"):
            kind = "npy" if "numpy_bitmap" in src else "ndjson"
            for c in categories:
                url = src + urllib.parse.quote(c) + "." + kind
                if kind == "npy":
                    arr = np.asarray(_load_npy(url)[:max_per_class], dtype=np.uint8)
                    bitmaps.append(arr)
                    bitmap_labels.append(np.full(len(arr), index[c], np.int64))
                else:
                    read_ndjson(url, index, records, max_per_class)
        elif os.path.isdir(src):
            for name in sorted(os.listdir(src)):
                path = os.path.join(src, name)
                if name.endswith((".ndjson", ".ndjson.gz")):
                    read_ndjson(path, index, records, max_per_class)
                elif name.endswith(".npy"):
                    arr = np.asarray(_load_npy(path)[:max_per_class], dtype=np.uint8).reshape(-1, 784)
                    bitmaps.append(arr)
                    bitmap_labels.append(np.full(len(arr), _class_from_filename(name, index), np.int64))
        elif src.endswith(".npz"):
            z = np.load(src)
            bitmaps.append(z["images"].astype(np.uint8).reshape(-1, 784))
            bitmap_labels.append(z["labels"].astype(np.int64))
        elif src.endswith(".npy"):
            arr = np.asarray(_load_npy(src)[:max_per_class], dtype=np.uint8).reshape(-1, 784)
            bitmaps.append(arr)
            bitmap_labels.append(np.full(len(arr), _class_from_filename(os.path.basename(src), index), np.int64))
        else:
            read_ndjson(src, index, records, max_per_class)
    ds = Dataset()
    for key in sorted(records):
        label, strokes, _ = records[key]
        ds.strokes.append(strokes)
        ds.stroke_labels.append(label)
        ds.stroke_keys.append(key)
    if bitmaps:
        ds.bitmaps = np.concatenate(bitmaps)
        ds.bitmap_labels = np.concatenate(bitmap_labels)
    if train_only:
        extra = load(train_only, categories, max_per_class)
        ds.train_only_strokes = extra.strokes + extra.train_only_strokes
        ds.train_only_labels = extra.stroke_labels + extra.train_only_labels
        if len(extra.bitmaps):
            ds.bitmaps = np.concatenate([ds.bitmaps, extra.bitmaps])
            ds.bitmap_labels = np.concatenate([ds.bitmap_labels, extra.bitmap_labels])
    return ds


def default_sources() -> list[str]:
    """The shared sample: simplified and raw strokes for 345 classes (plus 125 more monkeys), bitmaps for 54
    classes (``bitmaps.npz`` and ``extra-bitmaps.npz``), and, for training only, the 1,721 canvas pictures of
    ``extra-images-128.npz`` as the daemon traces them (``TRACED_PICTURES``, made by ``training.trace_pictures``).
    Files missing from an older copy of the sample are skipped."""
    names = ["raw.ndjson.gz", "simplified.ndjson.gz", "extra-simplified.ndjson.gz", "bitmaps.npz",
             "extra-bitmaps.npz"]
    required = {"raw.ndjson.gz", "simplified.ndjson.gz", "bitmaps.npz"}
    out = [str(SHARED / n) for n in names if n in required or (SHARED / n).exists()]
    return out + ([TRAIN_ONLY + str(TRACED_PICTURES)] if TRACED_PICTURES.exists() else [])
