"""Python's normalisation of every raw drawing in the shared data, for the Swift parity test.

    python -m training.normalize_golden --out Tests/DoodlePreprocessingTests/Fixtures/normalized.ndjson.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from .data import SHARED
from .normalize import normalize


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with gzip.open(SHARED / "raw.ndjson.gz", "rt") as f, gzip.open(args.out, "wt") as out:
        for line in f:
            d = json.loads(line)
            out.write(json.dumps({"key_id": d["key_id"], "drawing": normalize(d["drawing"])}, separators=(",", ":")) + "\n")
            n += 1
    print(f"wrote {n} normalised drawings to {args.out}")


if __name__ == "__main__":
    main()
