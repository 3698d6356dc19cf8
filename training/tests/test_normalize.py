import gzip
import json

import numpy as np

from training.data import SHARED
from training.normalize import normalize
from training.render import Renderer


def test_close_to_googles_simplification_on_real_pairs():
    simplified = {}
    for line in gzip.open(SHARED / "simplified.ndjson.gz", "rt"):
        d = json.loads(line)
        simplified[d["key_id"]] = d["drawing"]
    r = Renderer()
    diffs, same_points, same_bitmap, n = [], 0, 0, 0
    for line in gzip.open(SHARED / "raw.ndjson.gz", "rt"):
        d = json.loads(line)
        if d["key_id"] not in simplified:
            continue
        ours, google = normalize(d["drawing"]), simplified[d["key_id"]]
        a, b = r.render(ours).astype(int), r.render(google).astype(int)
        diffs.append(np.abs(a - b).mean())
        same_points += ours == google
        same_bitmap += np.array_equal(a, b)
        n += 1
        if n == 800:
            break
    # Measured on all 6,615 pairs: 85% identical points, 93% identical bitmaps, mean |diff| 0.012 grey levels.
    assert same_points / n > 0.80
    assert same_bitmap / n > 0.88
    assert float(np.mean(diffs)) < 0.05


def test_output_is_integer_and_fills_0_to_255():
    out = normalize([[[10.5, 300.25, 40], [-20, 5, 80.75], [0, 10, 20]]])
    xs = [x for s in out for x in s[0]]
    ys = [y for s in out for y in s[1]]
    assert all(isinstance(v, int) for v in xs + ys)
    assert min(xs) == 0 and min(ys) == 0 and max(max(xs), max(ys)) == 255


def test_degenerate_drawings():
    assert normalize([]) == []
    assert normalize([[[], []]]) == []
    assert normalize([[[5, 5, 5], [7, 7, 7]]]) == [[[0], [0]]]
    assert normalize([[[1], [2]], [[3], [4]]]) == [[[0], [0]], [[255], [255]]]


def test_straight_line_keeps_only_its_ends():
    assert normalize([[[0, 1, 2, 3, 4, 100], [0, 1, 2, 3, 4, 100]]]) == [[[0, 255], [0, 255]]]
