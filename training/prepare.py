"""Load the data, split it by key_id and write the splits as ndjson, with a summary.

    python -m training.prepare [--source FILE_DIR_OR_URL ...] [--out training/cache]

Writes ``train.ndjson.gz`` and ``validation.ndjson.gz`` (simplified strokes; raw drawings already normalised)
and ``summary.json`` (counts per split and class). ``validation.ndjson.gz`` is the file to give
``python -m training.evaluate`` or ``doodle eval``.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from . import data as qd


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", action="append")
    ap.add_argument("--out", type=Path, default=Path("training/cache"))
    ap.add_argument("--max-per-class", type=int)
    ap.add_argument("--val-percent", type=int, default=20)
    args = ap.parse_args(argv)
    categories = qd.load_categories()
    ds = qd.load(args.source or qd.default_sources(), categories, args.max_per_class)
    args.out.mkdir(parents=True, exist_ok=True)
    val_keys = qd.validation_keys(ds.stroke_keys, ds.stroke_labels, args.val_percent)
    counts = {"train": [0] * len(categories), "validation": [0] * len(categories)}
    with gzip.open(args.out / "train.ndjson.gz", "wt") as tr, gzip.open(args.out / "validation.ndjson.gz", "wt") as va:
        for strokes, label, key in zip(ds.strokes, ds.stroke_labels, ds.stroke_keys):
            part = "validation" if key in val_keys else "train"
            counts[part][label] += 1
            line = json.dumps({"word": categories[label], "key_id": key, "drawing": strokes}, separators=(",", ":"))
            (va if part == "validation" else tr).write(line + "\n")
        for n, (strokes, label) in enumerate(zip(ds.train_only_strokes, ds.train_only_labels)):
            counts["train"][label] += 1
            tr.write(json.dumps({"word": categories[label], "key_id": f"train-only:{n}", "drawing": strokes},
                                separators=(",", ":")) + "\n")
    summary = {"train_drawings": sum(counts["train"]), "validation_drawings": sum(counts["validation"]),
               "bitmaps": int(len(ds.bitmaps)), "classes": len(categories),
               "min_train_per_class": min(counts["train"]), "min_validation_per_class": min(counts["validation"]),
               "per_class": {c: {"train": counts["train"][i], "validation": counts["validation"][i]}
                             for i, c in enumerate(categories)}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print({k: v for k, v in summary.items() if k != "per_class"})


if __name__ == "__main__":
    main()
