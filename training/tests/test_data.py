import gzip
import json

import numpy as np

from training import data as qd


def test_split_is_deterministic_stratified_and_covers_every_class():
    keys = [f"k{i}" for i in range(200)]
    labels = [i % 5 for i in range(200)]
    a = qd.validation_keys(keys, labels, 20)
    b = qd.validation_keys(list(reversed(keys)), list(reversed(labels)), 20)
    assert a == b
    per_class = [sum(1 for k, l in zip(keys, labels) if l == c and k in a) for c in range(5)]
    assert per_class == [8] * 5


def test_reads_a_directory_of_googles_per_class_files(tmp_path):
    categories = qd.load_categories()
    d = tmp_path / "full"
    d.mkdir()
    with open(d / "cat.ndjson", "w") as f:
        for i in range(3):
            f.write(json.dumps({"word": "cat", "key_id": f"c{i}", "drawing": [[[0, 255], [0, 255 - i]]]}) + "\n")
    with gzip.open(d / "dog.ndjson.gz", "wt") as f:  # raw drawing: floats and times
        f.write(json.dumps({"word": "dog", "key_id": "d0", "drawing": [[[10.5, 400.0], [3.0, 50.0], [0, 16]]]}) + "\n")
    np.save(d / "full_numpy_bitmap_apple.npy", np.full((4, 784), 7, np.uint8))
    ds = qd.load([str(d)], categories, max_per_class=2)
    assert sorted(ds.stroke_keys) == ["c0", "c1", "d0"]
    dog = ds.strokes[ds.stroke_keys.index("d0")]
    assert dog == [[[0, 255], [0, 31]]]
    assert ds.bitmaps.shape == (2, 784) and set(ds.bitmap_labels) == {categories.index("apple")}


def test_simplified_wins_over_raw_with_the_same_key(tmp_path):
    categories = qd.load_categories()
    raw, simp = tmp_path / "raw.ndjson", tmp_path / "simp.ndjson"
    raw.write_text(json.dumps({"word": "cat", "key_id": "x", "drawing": [[[0.5, 9.5], [0.5, 3.5], [0, 1]]]}) + "\n")
    simp.write_text(json.dumps({"word": "cat", "key_id": "x", "drawing": [[[0, 255], [3, 250]]]}) + "\n")
    for order in ([str(raw), str(simp)], [str(simp), str(raw)]):
        assert qd.load(order, categories).strokes == [[[[0, 255], [3, 250]]]]
