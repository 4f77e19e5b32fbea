"""Expression signals and models on the repository's labelled real face crops (no shared media needed).

These check direction, not benchmark accuracy (that is bench/expressions.py): labelled open mouths
measure wider than closed ones, blurred faces less sharp than sharp ones, the real blink below open
eyes; the rule and a trained model round-trip through bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from marquee.ops.expressions.model import RuleModel, feature_matrix, load_model, train_model
from marquee.ops.expressions.signals import FaceMeshLandmarker, eye_openness, measure_face
from marquee.synth.expressions import load_labelled_crops


@pytest.fixture(scope="module")
def measured():
    crops = load_labelled_crops()
    landmarker = FaceMeshLandmarker()
    try:
        rows = [(c, measure_face(c.image, np.asarray(c.box), landmarker).as_dict()) for c in crops]
    finally:
        landmarker.close()
    return rows


def _values(measured, attribute, label, signal):
    return [s[signal] for c, s in measured if c.labels[attribute] == label and s["landmarks_found"]]


def test_facemesh_finds_landmarks_on_most_real_crops(measured):
    found = sum(s["landmarks_found"] for _, s in measured)
    assert found >= 0.85 * len(measured)


def test_signals_separate_the_labelled_classes(measured):
    assert np.median(_values(measured, "mouth", "open", "mouth_open")) > 2 * np.median(
        _values(measured, "mouth", "closed", "mouth_open")
    )
    assert np.median(_values(measured, "sharp", "blurred", "sharpness")) < 0.5 * np.median(
        _values(measured, "sharp", "sharp", "sharpness")
    )
    closed = _values(measured, "eyes", "closed", "eye_open")
    assert closed and max(closed) < np.percentile(_values(measured, "eyes", "open", "eye_open"), 10)


def test_default_rule_scores_the_labelled_mouths_and_blur(measured):
    rule = RuleModel()
    for attribute, factor, good in (("mouth", "mouth_closed", "closed"), ("sharp", "sharp", "sharp")):
        rows = [(c, s) for c, s in measured if c.labels[attribute] is not None and s["landmarks_found"]]
        parts = rule.parts(feature_matrix([s for _, s in rows]))[factor]
        truth = np.array([c.labels[attribute] == good for c, _ in rows])
        balanced = (np.mean(parts[truth] > 0.5) + np.mean(parts[~truth] <= 0.5)) / 2
        assert balanced >= 0.75, (attribute, balanced)


def test_near_eye_is_used_for_turned_faces():
    assert eye_openness(0.1, 0.5, 30.0) == 0.1  # turned to the image right: the image-left eye is near
    assert eye_openness(0.1, 0.5, -30.0) == 0.5
    assert eye_openness(0.2, 0.3, 2.0) == pytest.approx(0.25)
    assert eye_openness(float("nan"), 0.3, 40.0) == 0.3


def test_models_round_trip_and_training_needs_both_classes(measured):
    rule = RuleModel()
    assert load_model(rule.to_bytes()) == rule
    rows = [s for _, s in measured]
    labels = [int(c.labels["mouth"] == "closed" and c.labels["sharp"] != "blurred") for c, _ in measured]
    groups = [c.source for c, _ in measured]
    model = train_model(rows, labels, groups)
    assert model.metrics["cv_grouped_by"] == "title" and model.metrics["roc_auc"] is not None
    again = load_model(model.to_bytes())
    x = feature_matrix(rows)
    assert np.allclose(again.score(x), model.score(x)) and again.version == model.version
    with pytest.raises(ValueError, match="both positives"):
        train_model(rows[:3], [1, 1, 1], groups[:3])


def _planted(n: int, seed: int, *, informative: bool):
    """Signal rows that carry no label information and 16-D 'embeddings' that do (or not)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    rows = [
        {
            "landmarks_found": True,
            "eye_open_left": float(rng.uniform(0.2, 0.35)),
            "eye_open_right": float(rng.uniform(0.2, 0.35)),
            "mouth_open": float(rng.uniform(0, 0.1)),
            "yaw": 0.0,
            "pitch": 0.0,
            "roll": 0.0,
            "sharpness": float(rng.uniform(2, 9)),
            "size": 80.0,
            "brightness": 0.5,
            "clipped": 0.0,
        }
        for _ in range(n)
    ]
    emb = rng.normal(size=(n, 16))
    if informative:
        emb[:, 0] += 3.0 * labels
    emb[rng.random(n) < 0.2] = np.nan  # faces without a descriptor
    groups = [f"t{i % 4}" for i in range(n)]
    return rows, labels, groups, emb


def test_the_embedding_is_used_only_when_it_helps_on_held_out_titles():
    rows, labels, groups, emb = _planted(160, 0, informative=True)
    model = train_model(rows, labels, groups, embeddings=emb, embedder="toy@1")
    assert model.metrics["inputs"] == "signals+embedding" and model.uses_embedding
    compared = model.metrics["inputs_compared"]
    assert compared["signals+embedding"]["roc_auc"] > compared["signals"]["roc_auc"] + 0.2
    x = feature_matrix(rows)
    again = load_model(model.to_bytes())
    assert again.embedder == "toy@1" and again.embedding_dim == 16
    assert np.allclose(again.score(x, emb), model.score(x, emb))
    # Faces without descriptors still get a score (imputed), not an error.
    assert np.isfinite(model.score(x)).all()
    with pytest.raises(ValueError, match="shape"):
        model.score(x, emb[:, :8])

    rows, labels, groups, emb = _planted(160, 1, informative=False)
    plain = train_model(rows, labels, groups, embeddings=emb, embedder="toy@1")
    assert "inputs_compared" in plain.metrics
    without = train_model(rows, labels, groups)
    assert not without.uses_embedding and without.metrics["inputs"] == "signals"
