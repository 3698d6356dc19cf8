import gzip
import json

import numpy as np

from training.data import SHARED
from training.augment import augment, partial
from training.render import CairoRenderer, RasterRenderer, Renderer


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


def test_rasteriser_matches_google_pairs():
    pairs = [json.loads(line) for line in gzip.open(SHARED / "render_pairs.ndjson.gz", "rt")]
    r = RasterRenderer()
    mismatched = [p["key_id"] for p in pairs if not np.array_equal(r.render(p["drawing"]), np.array(p["bitmap"], np.uint8))]
    assert mismatched == []


def test_rasteriser_matches_cairo_on_what_training_draws():
    """The two renderers agree byte for byte on augmented, mirrored and unfinished drawings, the images training
    renders (coordinates anywhere in 0..255, dots, long strokes)."""
    rng = np.random.default_rng(7)
    drawings = [json.loads(line)["drawing"] for line in gzip.open(SHARED / "simplified.ndjson.gz", "rt")][:600]
    cairo_r, raster_r = CairoRenderer(), RasterRenderer()
    differing = 0
    for i in range(3000):
        s = drawings[i % len(drawings)]
        if rng.random() < 0.3:
            s = partial(s, rng)
        s = augment(s, rng, 1.5, 0.5)
        differing += not np.array_equal(cairo_r.render(s), raster_r.render(s))
    assert differing == 0
    assert raster_r.render([[[], []]]).max() == 0
    assert np.array_equal(raster_r.render([[[100], [100]]]), cairo_r.render([[[100], [100]]]))
