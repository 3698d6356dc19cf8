"""training.evaluate's scoring: overall and class-balanced accuracy."""

import numpy as np

from training.evaluate import report


def test_class_balanced_accuracy_weighs_every_class_the_same():
    # Class 0 has three drawings, all right; class 1 one, wrong at top-1 and right at top-3; class 2 none.
    categories = ["a", "b", "c", "d"]
    labels = np.array([0, 0, 0, 1])
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1], [0.5, 0.3, 0.1, 0.1], [0.1, 0.3, 0.2, 0.4]])
    r = report(probs, labels, categories)
    assert r["top1"] == 0.75 and r["top3"] == 1.0
    assert r["balanced_top1"] == 0.5 and r["balanced_top3"] == 1.0
    assert [c["class"] for c in r["per_class"]] == ["a", "b"]  # a class with no drawings does not count
