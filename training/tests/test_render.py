import gzip
import json

import numpy as np

from training.data import SHARED
from training.render import Renderer


def test_bit_exact_on_all_533_google_pairs():
    pairs = [json.loads(line) for line in gzip.open(SHARED / "render_pairs.ndjson.gz", "rt")]
    assert len(pairs) == 533
    r = Renderer()
    mismatched = [p["key_id"] for p in pairs if not np.array_equal(r.render(p["drawing"]), np.array(p["bitmap"], np.uint8))]
    assert mismatched == []


def test_single_point_stroke_renders_a_dot():
    img = Renderer().render([[[100], [100]]]).reshape(28, 28)
    assert img.max() > 0 and (img > 0).sum() < 12


def test_empty_strokes_render_background():
    assert Renderer().render([[[], []]]).max() == 0
