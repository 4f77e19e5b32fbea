"""``marquee.synth.film``: a long film assembled from reels must match its truth to the frame.

One tiny film (320x180, a pool of two 6-second reels, 40 s long so the reels repeat, a 10-second
trailer) made from the media bundled with the package, so the tests behave the same with or without
the shared originals; the film's pool plan at full size is checked without rendering it.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from marquee.synth import film
from marquee.synth.faces import EXTRAS, available_identities
from marquee.synth.media import bundled_media_dir

MEDIA = bundled_media_dir()
SIZE = (320, 180)
FPS = 24.0
THUMB = (32, 18)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), THUMB, interpolation=cv2.INTER_AREA).astype(
        np.float32
    )


def _decode(path: Path, keep: set[int] = frozenset()) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Grey thumbnails of every frame, and the full RGB frames of ``keep``."""
    thumbs, full = [], {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            rgb = f.to_ndarray(format="rgb24")
            thumbs.append(_grey(rgb))
            if i in keep:
                full[i] = rgb
    return np.stack(thumbs), full


#: The tiny film: 40 s at 320x180 from a pool of two 6-s reels, so reels repeat.
TINY = dict(
    minutes=40 / 60,
    size=SIZE,
    fps=FPS,
    seed=0,
    distinct_minutes=0.2,
    reel_seconds=6.0,
    trailer_seconds=10.0,
    media=MEDIA,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, film.FilmTruth]:
    out = tmp_path_factory.mktemp("film") / "tiny.mp4"
    truth = film.make_film(out, **TINY)
    return out, truth


@pytest.fixture(scope="module")
def decoded(tiny) -> np.ndarray:
    return _decode(tiny[0])[0]


def test_film_decodes_to_its_truth_and_repeats_its_reels(tiny, decoded):
    path, truth = tiny
    assert truth == film.load_film_truth(path)
    assert len(decoded) == truth.frame_count
    assert abs(truth.duration_s - 40.0) <= 6.0  # ends at the hard cut nearest 40 s, within a reel
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == SIZE
        assert v.average_rate == FPS and v.codec_context.name == "h264"
        assert a.codec_context.name == "aac"
        audio_s = sum(p.duration for p in c.demux(a) if p.duration) * float(a.time_base)
    assert audio_s == pytest.approx(truth.duration_s, abs=0.1)
    assert len(truth.reels) == 2 and len(truth.reel_order) > len(truth.reels)
    assert truth.distinct_minutes == pytest.approx(0.2)
    assert sum(truth.reel_frames_used) == truth.frame_count
    assert all(a != b for a, b in itertools.pairwise(truth.reel_order))
    # packet copy: every showing of a reel is the same picture, frame for frame
    for r in set(truth.reel_order):
        shows = [
            (o, u)
            for rr, o, u in zip(truth.reel_order, truth.reel_offsets, truth.reel_frames_used, strict=True)
            if rr == r
        ]
        (o1, u1), (o2, u2) = shows[0], shows[1]
        n = min(u1, u2)
        assert np.array_equal(decoded[o1 : o1 + n], decoded[o2 : o2 + n])


def test_transitions_lie_in_the_film_and_reel_joins_are_cuts(tiny, decoded):
    _, truth = tiny
    ts = truth.transitions
    assert ts == sorted(ts)
    assert all(0 < t.start_frame <= t.end_frame < truth.frame_count for t in ts)
    assert all(a.end_frame < b.start_frame for a, b in itertools.pairwise(ts))
    cuts = {t.start_frame for t in ts if t.kind == "cut"}
    assert set(truth.reel_offsets[1:]) <= cuts
    assert {t.kind for t in ts} <= {"cut", "dissolve", "fade"} and "cut" in {t.kind for t in ts}
    shots = truth.shots()
    assert shots[0].start_frame == 0 and shots[-1].end_frame == truth.frame_count - 1
    assert truth.shot_truth().frame_count == truth.frame_count
    # a hard cut is a visible change of picture (thumbnails), a frame inside a shot is not
    jump = [float(np.abs(decoded[c] - decoded[c - 1]).mean()) for c in sorted(cuts)]
    assert np.median(jump) > 3 * np.median(np.abs(np.diff(decoded, axis=0)).mean(axis=(1, 2)))


def test_faces_are_where_the_truth_says(tiny):
    """MTCNN (Marquee's detector) finds a face on the true box of sampled frames with big faces."""
    from marquee.ops.faces.detect import make_face_detector
    from marquee.ops.faces.types import box_iou

    path, truth = tiny
    assert 0.6 <= truth.frames_with_faces() / truth.frame_count <= 0.9
    styles = {}
    for p in truth.pieces():
        for f in range(p["start_frame"], p["end_frame"] + 1):
            styles[f] = p["style"]
    candidates = [
        (f, max(fs, key=lambda x: x["box"][2] - x["box"][0]))
        for f, fs in truth.iter_faces()
        if fs and styles.get(f) in ("normal", "sidelight")
    ]
    candidates = [(f, b) for f, b in candidates if b["box"][2] - b["box"][0] >= 28]
    assert len(candidates) >= 8
    picks = [candidates[int(i)] for i in np.linspace(0, len(candidates) - 1, 8).round()]
    _, frames = _decode(path, {f for f, _ in picks})
    found = make_face_detector("mtcnn").detect_batch([frames[f] for f, _ in picks])
    hits = 0
    for (_, face), dets in zip(picks, found, strict=True):
        box = np.asarray(face["box"], np.float32)[None]
        hits += bool(len(dets) and box_iou(dets.boxes, box).max() > 0.4)
    assert hits >= 6, f"{hits} of {len(picks)}"


def test_everyone_appears_with_a_long_tailed_screen_time(tiny):
    _, truth = tiny
    expected = set(available_identities(MEDIA / "faces")) | set(EXTRAS)
    assert set(truth.cast) == expected
    seen = {n: c["screen_time_s"] for n, c in truth.identities.items() if c["screen_time_s"] > 0}
    assert sum(seen.values()) > 0
    # the full-size pool (planned, not rendered): everyone on screen, a few leads with most of it
    _, plan = film._pool(
        size=(1920, 1080),
        fps=24.0,
        seed=0,
        distinct_minutes=12.0,
        reel_seconds=120.0,
        face_share=0.75,
        crf=21,
        m=film._media(MEDIA, None),
        out_dir=Path("/nonexistent"),
    )
    assert len(plan["reels"]) == 6 and all(r["frame_count"] == plan["reel_frames"] for r in plan["reels"])
    frames = dict.fromkeys(plan["cast"], 0)
    faces = total = 0
    for reel in plan["reels"]:
        total += reel["frame_count"]
        for p in reel["pieces"]:
            faces += p["n_frames"] * (p["kind"] != "clip")
            for who in p["people"]:
                frames[who] += p["n_frames"]
    assert set(frames) == expected and min(frames.values()) > 0
    named = sorted((v for n, v in frames.items() if n not in EXTRAS), reverse=True)
    assert named[0] >= 4 * np.median(named)
    assert sum(named[:2]) >= 0.4 * sum(named)
    assert 0.7 <= faces / total <= 0.85
    roles = [plan["roles"][n]["role"] for n in plan["cast"]]
    assert roles.count("lead") == 2 and "minor" in roles and "extra" in roles


def test_trailer_shots_show_the_film_frames_their_truth_names(tiny, decoded):
    """Each trailer shot's edits, applied to the film frames its truth names (decoded from the film, not
    the reels), give the trailer's picture up to coding noise; the film frames of another shot do not."""
    from marquee.synth import trailers

    path, truth = tiny
    tpath = path.with_name("tiny.trailer.mp4")  # what marquee ingest pairs with tiny.mp4
    assert truth.trailer == tpath.name and film.trailer_path(path) == tpath
    doc = film.load_film_trailer_truth(path)
    tthumbs, _ = _decode(tpath)
    assert len(tthumbs) == doc["trailer_frame_count"]
    tsize = tuple(doc["trailer_size"])
    with av.open(str(tpath)) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == tsize
        assert c.streams.audio[0].codec_context.name == "aac"
    shots = doc["trailer_shots"]
    assert sum(s["kind"] == "title_card" for s in shots) >= 2
    assert 6 <= doc["trailer_frame_count"] / FPS <= 12  # 10 s asked; a two-reel pool has few shots
    film_frames: dict[int, np.ndarray] = {}
    wanted = {
        s["film_start_frame"] + k
        for s in shots
        if s["film_shot_id"] is not None
        for k in range(s["film_end_frame"] - s["film_start_frame"] + 1)
    }
    _, film_frames = _decode(path, wanted)
    spans = [(t["start_frame"], t["end_frame"]) for t in doc["transitions"]]
    checked = 0
    for i, s in enumerate(shots):
        if s["film_shot_id"] is None:
            continue
        assert 0 <= s["film_start_frame"] <= s["film_end_frame"] < truth.frame_count
        assert s["film_start_frame"] in s["film_occurrences"]
        piece = trailers._Piece(
            n_out=s["piece_end_frame"] - s["piece_start_frame"] + 1,
            film_shot=s["film_shot_id"],
            film_start=s["film_start_frame"],
            speed=s["speed"],
            edits=[e for e in s["edits"] if e != "resize"],
            params=doc["edit_params"][i],
            source="film",
            source_start=s["film_start_frame"],
        )

        def read(seg, size, start=s["film_start_frame"]):
            for k in range(seg.n_frames):
                yield film_frames[start + k]

        expected = list(trailers._piece_frames(piece, truth.size, tsize, doc["seed"] + 7919 * i, read))
        span = s["film_end_frame"] - s["film_start_frame"] + 1
        same = [(o, o + span - 1) for o in s["film_occurrences"]] + [
            tuple(r) for r in s["film_partial_matches"]
        ]
        other = [
            g
            for g in range(0, truth.frame_count, 5)
            if g not in wanted and not any(a <= g <= b for a, b in same)
        ]
        for t in range(s["start_frame"], s["end_frame"] + 1):
            if any(a <= t <= b for a, b in spans):
                continue
            err = float(np.abs(tthumbs[t] - _grey(expected[t - s["piece_start_frame"]])).mean())
            wrong = min(float(np.abs(tthumbs[t] - decoded[g]).mean()) for g in other)
            assert err < 4 and err < wrong, (s, t, err, wrong)
            checked += 1
    assert checked >= 40


def test_films_of_other_lengths_reuse_the_pool_and_nothing_is_redone(tiny, tmp_path):
    path, truth = tiny
    reels = sorted(path.parent.glob("reels-*/reel-*.mp4"))
    stamps = {p: p.stat().st_mtime_ns for p in [*reels, path]}
    again = film.make_film(path, **TINY)
    assert again == truth
    short = film.make_film(
        path.with_name("short.mp4"),
        minutes=0.25,
        size=SIZE,
        fps=FPS,
        seed=0,
        distinct_minutes=0.2,
        reel_seconds=6.0,
        trailer=False,
        media=MEDIA,
    )
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # no reel rendered again
    assert short.reels == truth.reels and abs(short.duration_s - 15.0) <= 6.0
    # the last reel is cut at a keyframe (a hard cut) by packet copy: the file has exactly those frames
    last = short.reel_order[-1]
    assert short.reel_frames_used[-1] in short.reels[last]["keyframes"]
    assert short.reel_frames_used[-1] < short.reels[last]["frame_count"]
    assert len(_decode(path.with_name("short.mp4"))[0]) == short.frame_count
    assert not film.trailer_path(path.with_name("short.mp4")).exists()


def test_cli_and_media_without_the_shared_originals(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MARQUEE_SHARED_MEDIA", str(tmp_path / "missing"))
    m = film._media(None, None)
    assert m.faces == MEDIA / "faces" and m.scenes == MEDIA / "scenes"
    assert {p.parent for p in m.clips} == {MEDIA / "clips"}
    out = tmp_path / "cli.mp4"
    args = [str(out), "--minutes", "0.1", "--height", "90", "--distinct-minutes", "0.1"]
    assert film.main([*args, "--reel-seconds", "6", "--no-trailer", "--workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["size"] == [160, 90] and summary["frames"] == film.load_film_truth(out).frame_count
    assert os.path.getsize(out) > 0 and not film.trailer_path(out).exists()
