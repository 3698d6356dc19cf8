"""training.evaluate's scoring: overall and class-balanced accuracy, ensembles and mirror images."""

from pathlib import Path

import numpy as np

from training.evaluate import mirrored, predict, predict_ensemble, report

REPO = Path(__file__).resolve().parents[2]


def test_class_balanced_accuracy_weighs_every_class_the_same():
    # Class 0 has three drawings, all right; class 1 one, wrong at top-1 and right at top-3; class 2 none.
    categories = ["a", "b", "c", "d"]
    labels = np.array([0, 0, 0, 1])
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1], [0.5, 0.3, 0.1, 0.1], [0.1, 0.3, 0.2, 0.4]])
    r = report(probs, labels, categories)
    assert r["top1"] == 0.75 and r["top3"] == 1.0
    assert r["balanced_top1"] == 0.5 and r["balanced_top3"] == 1.0
    assert [c["class"] for c in r["per_class"]] == ["a", "b"]  # a class with no drawings does not count


def test_mirror_image_flips_each_row():
    images = np.arange(2 * 784, dtype=np.int64).reshape(2, 784) % 251
    flipped = mirrored(images.astype(np.uint8))
    assert flipped.shape == (2, 784)
    assert flipped.reshape(2, 28, 28)[1, 5, 0] == images.reshape(2, 28, 28)[1, 5, 27]
    assert np.array_equal(mirrored(flipped), images)


def test_ensemble_averages_models_and_mirror_views():
    """An ensemble's probabilities are the mean over its models and, with --mirror, over each image's two views (the
    shipped model on 32 golden images: the exact int8 path)."""
    images = np.fromfile(REPO / "Tests/DoodleEngineTests/Fixtures/quickdraw-345/images.u8", np.uint8)[: 32 * 784]
    images = images.reshape(32, 784)
    model = REPO / "models/quickdraw-345/model.onnx"
    plain, flipped = predict(model, images), predict(model, mirrored(images))
    assert not np.allclose(plain, flipped)  # the mirror view differs, so the checks below can fail
    assert np.allclose(predict_ensemble([model, model], images), plain, atol=1e-7)
    assert np.allclose(predict_ensemble([model], images, mirror=True), (plain + flipped) / 2, atol=1e-7)


def test_ensemble_loads_each_model_once_for_both_views(monkeypatch):
    """With --mirror each model is loaded once and scores both views (loading a checkpoint or building the exact
    reference is the slow part)."""
    import training.evaluate as evaluate

    images = np.fromfile(REPO / "Tests/DoodleEngineTests/Fixtures/quickdraw-345/images.u8", np.uint8)[: 4 * 784]
    model = REPO / "models/quickdraw-345/model.onnx"
    loads, scored = [], []

    def counting_predictor(m, **engine):
        loads.append(m)
        run = predictor(m, **engine)
        return lambda views: scored.append(len(views)) or run(views)

    predictor = evaluate.predictor
    monkeypatch.setattr(evaluate, "predictor", counting_predictor)
    evaluate.predict_ensemble([model, model], images.reshape(4, 784), mirror=True)
    assert loads == [model, model] and scored == [4, 4, 4, 4]
