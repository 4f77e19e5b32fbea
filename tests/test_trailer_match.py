"""Trailer-to-film matching (``marquee.ops.trailers``) on a generated pair with exact truth.

The pair is made from procedural footage (``sources=[]``), so these tests run where ``../shared`` and
the package media are absent; ``bench/trailers.py`` runs the same matching on real footage.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import cv2
import numpy as np
import pytest

from marquee.ops.trailers.fingerprint import FilmFingerprinter, cell_means, rank_descriptor
from marquee.ops.trailers.labels import soft_labels
from marquee.ops.trailers.match import TrailerMatchResult, match_files, match_shots
from marquee.orchestration import cli
from marquee.synth.trailers import TrailerTruth, load_trailer_truth, make_trailer_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, TrailerTruth]:
    out = tmp_path_factory.mktemp("trailers")
    p = make_trailer_pair(out, seed=3, minutes=0.6, size=(320, 180), trailer_size=(480, 270), sources=[])
    return p.film, p.trailer, load_trailer_truth(p.truth)


@pytest.fixture(scope="module")
def result(pair: tuple[Path, Path, TrailerTruth]) -> TrailerMatchResult:
    film, trailer, _ = pair
    return match_files(film, trailer)


def test_truth_is_consistent(pair: tuple[Path, Path, TrailerTruth]) -> None:
    film, trailer, truth = pair
    shots = truth.trailer_shots
    assert shots[0].start_frame == 0 and shots[-1].end_frame == truth.trailer_frame_count - 1
    assert all(a.end_frame + 1 == b.start_frame for a, b in itertools.pairwise(shots))
    cards = [s for s in shots if s.film_shot_id is None]
    assert cards and all(s.edits == ["title_card"] and s.film_start_frame is None for s in cards)
    from_film = [s for s in shots if s.film_shot_id is not None]
    assert {s.film_shot_id for s in from_film} == truth.used_film_shots
    for s in from_film:
        fs = truth.film_shots[s.film_shot_id]
        assert fs.used and fs.start_frame <= s.film_start_frame <= s.film_end_frame <= fs.end_frame
        assert 0.5 <= s.speed <= 1.5 and "resize" in s.edits
    assert all(-60 < f.loudness < 0 for f in truth.film_shots)
    with av.open(str(film)) as c:
        assert c.streams.audio and c.streams.video[0].codec_context.name == "h264"
    with av.open(str(trailer)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (480, 270)


def _holder(result: TrailerMatchResult, frame: int):
    return next(m for m in result.matches if m.trailer_start_frame <= frame <= m.trailer_end_frame)


def test_matches_the_truth(pair: tuple[Path, Path, TrailerTruth], result: TrailerMatchResult) -> None:
    _, _, truth = pair
    found = 0
    from_film = [s for s in truth.trailer_shots if s.film_shot_id is not None]
    for t in from_film:
        m = _holder(result, (t.start_frame + t.end_frame) // 2)
        found += bool(
            m.matched
            and m.film_start_frame is not None
            and m.film_start_frame <= t.film_end_frame
            and t.film_start_frame <= m.film_end_frame
        )
    matched = [m for m in result.matches if m.matched]
    right = 0
    for m in matched:
        mid = (m.trailer_start_frame + m.trailer_end_frame) // 2
        t = next(s for s in truth.trailer_shots if s.start_frame <= mid <= s.end_frame)
        right += bool(t.film_shot_id is not None and m.film_start_frame <= t.film_end_frame)
    assert found / len(from_film) >= 0.9
    assert matched and right / len(matched) >= 0.9
    for t in truth.trailer_shots:  # title cards match nothing
        if t.film_shot_id is None:
            assert not _holder(result, (t.start_frame + t.end_frame) // 2).matched


def test_soft_labels_follow_use(pair: tuple[Path, Path, TrailerTruth], result: TrailerMatchResult) -> None:
    _, _, truth = pair
    labels = result.soft_labels
    assert labels.shape == (len(result.film_shots),) and labels.min() >= 0 and labels.max() <= 1
    used, other = [], []
    for fs in result.film_shots:
        mid = (fs.start_frame + fs.end_frame) // 2
        t = next(s for s in truth.film_shots if s.start_frame <= mid <= s.end_frame)
        (used if t.used else other).append(labels[fs.shot_id])
    assert used and min(used) > 0.5
    assert np.mean(other) < 0.1


def test_soft_labels_share_between_near_duplicates() -> None:
    m = SimpleNamespace(matched=True, candidates=[(2, 0.9), (5, 0.9), (7, 0.3)])
    off = SimpleNamespace(matched=False, candidates=[(1, 0.99)])
    labels = soft_labels([m, off], 8, temperature=0.05)
    assert labels[2] == pytest.approx(0.5, abs=1e-3) and labels[5] == pytest.approx(0.5, abs=1e-3)
    assert labels[7] < 1e-4 and labels[1] == 0
    with pytest.raises(ValueError):
        soft_labels([m], 8, temperature=0)


def test_fingerprint_ignores_tone_and_bars() -> None:
    rng = np.random.default_rng(0)
    img = rng.uniform(20, 230, (36, 64)).astype(np.float32)
    cells = cell_means(img, (0, 0, 64, 36))
    graded = 255 * (cells / 255) ** 1.4 * 0.8  # any monotonic tone curve keeps the ranks
    assert np.array_equal(rank_descriptor(cells), rank_descriptor(graded))
    fp = FilmFingerprinter(16 / 9)
    for i in range(30):
        rgb = np.zeros((36, 64, 3), np.uint8)
        rgb[5:31] = rng.integers(40, 220, (26, 64, 3))
        fp.process(i, rgb)
    out = fp.finish()
    assert out.frame_count == 30 and out.box[1] >= 5 and out.box[3] <= 31
    assert out.aspect > 2.0  # a wide picture inside a 16:9 frame


def test_cli_json(pair: tuple[Path, Path, TrailerTruth], capsys: pytest.CaptureFixture[str]) -> None:
    film, trailer, truth = pair
    # the fast detector keeps this second run short; the hybrid default is exercised by ``result``
    assert cli.main(["trailer-match", str(film), str(trailer), "--format", "json", "--detector", "fast"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = {
        "trailer_shot_id",
        "trailer_start_s",
        "trailer_end_s",
        "trailer_start_frame",
        "trailer_end_frame",
        "film_shot_id",
        "film_start_s",
        "film_end_s",
        "film_start_frame",
        "film_end_frame",
        "similarity",
        "speed",
        "matched",
    }
    assert rows and all(keys <= set(r) for r in rows)
    assert rows[-1]["trailer_end_frame"] == truth.trailer_frame_count - 1
    for r in rows:
        if r["matched"]:
            assert isinstance(r["film_shot_id"], int) and r["film_start_s"] < r["film_end_s"]
            assert r["reason"] == ""
        else:
            assert r["film_shot_id"] is None and r["film_start_s"] is None
            assert r["reason"]  # every unmatched shot says why


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_cli_bad_trailer_names_the_file(
    pair: tuple[Path, Path, TrailerTruth], tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    film, trailer, _ = pair
    bad = tmp_path / "bad-trailer.mp4"
    if kind == "corrupt":
        bad.write_bytes(trailer.read_bytes()[:4000])
    assert cli.main(["trailer-match", str(film), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "error" in err


def test_split_point_finds_an_unexplained_tail() -> None:
    from marquee.ops.trailers.match import MIN_PART, _split_point

    sims = np.r_[np.full(20, 0.8), np.full(MIN_PART + 2, 0.05)].astype(np.float32)
    assert _split_point(sims, 0.37) == 20
    assert _split_point(np.r_[np.full(MIN_PART + 1, 0.1), np.full(20, 0.9)], 0.37) == MIN_PART + 1
    assert _split_point(np.r_[np.full(20, 0.8), np.full(MIN_PART - 1, 0.05)], 0.37) is None
    noisy = np.r_[np.full(20, 0.8), np.full(MIN_PART + 2, 0.3)]  # a weak tail, not another shot
    assert _split_point(noisy, 0.37) is None


# --------------------------------------------------------------------------------------------------------
# Frames without structure never match; real grades still do (issue 14)


def _card(size: tuple[int, int], ground: tuple[int, int, int], text: str, ink: tuple[int, int, int]):
    from marquee.synth.trailers import _text_block

    img = np.empty((size[1], size[0], 3), np.uint8)
    img[:] = ground
    return _text_block(img, [(text, 0.12), ("IN CINEMAS THIS SUMMER", 0.045)], ink, 0.5)


def _sky(size: tuple[int, int], top: tuple[int, ...], bottom: tuple[int, ...]) -> np.ndarray:
    t = np.linspace(0.0, 1.0, size[1])[:, None, None]
    return (np.asarray(top) * (1 - t) + np.asarray(bottom) * t + np.zeros((1, size[0], 3))).astype(np.uint8)


def _plain(size: tuple[int, int], rgb: tuple[int, int, int]) -> np.ndarray:
    img = np.empty((size[1], size[0], 3), np.uint8)
    img[:] = rgb
    return img


def test_structure_separates_pictures_from_plain_frames() -> None:
    from marquee.ops.trailers.fingerprint import central_window, luma, structure
    from marquee.synth.edits import procedural_frames

    def measure(rgb: np.ndarray) -> float:
        y = luma(cv2.resize(rgb, (128, 72), interpolation=cv2.INTER_AREA))
        return structure(cell_means(y, central_window((0, 0, 128, 72), 0.6, 0.6)))

    size = (480, 270)
    plain = {
        "black": _plain(size, (0, 0, 0)),
        "white": _plain(size, (255, 255, 255)),
        "flat colour": _plain(size, (40, 90, 160)),
        "sky": _sky(size, (70, 120, 220), (200, 220, 250)),
        "title card on white": _card(size, (255, 255, 255), "THE LAST FRAME", (170, 20, 30)),
        "title card on black": _card(size, (0, 0, 0), "THE LAST FRAME", (230, 180, 60)),
        "title card on colour": _card(size, (10, 30, 90), "PREMIERE", (245, 240, 225)),
    }
    for name, img in plain.items():
        assert measure(img) < 1.0, name
    for seed in range(3):
        assert measure(next(procedural_frames(seed, 0, 1, size))) >= 1.0
    # ties share their mean rank: a plain frame has no code at all, not a raster-order ramp
    assert not rank_descriptor(np.zeros((9, 16), np.float32)).any()
    assert list(rank_descriptor(np.array([1.0, 1.0, 2.0, 3.0], np.float32))) == [-60, -60, 30, 90]


@pytest.fixture(scope="module")
def plain_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A film with white, black and title-card shots between pictures, and a trailer of plain shots, a
    graded copy of a film shot and a plain copy of another, both through H.264 and the asset's decoders."""
    from videos import write_frames

    from marquee.ops.timeline import Shot
    from marquee.ops.trailers.decode import fingerprint_film_timed, trailer_luma_timed
    from marquee.synth.edits import procedural_frames
    from marquee.synth.trailers import _grain, _real_grade, _vignette

    out = tmp_path_factory.mktemp("plain")
    fsize, tsize = (320, 180), (480, 270)
    film_parts = [
        ("picture A", list(procedural_frames(11, 0, 48, fsize))),
        ("white", [_plain(fsize, (255, 255, 255))] * 24),
        ("picture C", list(procedural_frames(12, 0, 48, fsize))),
        ("black", [_plain(fsize, (0, 0, 0))] * 24),
        ("film title card", [_card(fsize, (255, 255, 255), "THE END", (20, 40, 120))] * 36),
        ("picture F", list(procedural_frames(13, 0, 48, fsize))),
    ]
    grade = {  # an S-curve with crushed blacks, a rolled-off white, warm balance, desaturated, hue shifted
        "model": "pro",
        "balance": [1.08, 1.0, 0.9],
        "crush": [0.05, 0.95],
        "s_curve": 0.8,
        "gamma": 1.15,
        "lift": [0.0, 0.06],
        "saturation": 0.55,
        "hue": 12.0,
        "split": [[0.0, 0.03, 0.05], [0.05, 0.02, -0.03]],
    }
    big = [cv2.resize(f, tsize, interpolation=cv2.INTER_AREA) for f in procedural_frames(12, 10, 30, fsize)]
    graded = [
        _grain(
            _vignette(_real_grade(f, grade), {"amount": 0.5, "power": 2.0}),
            {"sigma": 10.0, "size": 0.7},
            0,
            k,
        )
        for k, f in enumerate(big)
    ]
    trailer_parts = [
        ("card on white", [_card(tsize, (255, 255, 255), "THE LAST FRAME", (170, 20, 30))] * 30),
        ("graded C", graded),
        ("black", [_plain(tsize, (0, 0, 0))] * 24),
        ("white", [_plain(tsize, (255, 255, 255))] * 24),
        ("flat colour", [_plain(tsize, (40, 90, 160))] * 24),
        (
            "picture A",
            [cv2.resize(f, tsize, interpolation=cv2.INTER_AREA) for f in procedural_frames(11, 5, 30, fsize)],
        ),
        ("sky", [_sky(tsize, (70, 120, 220), (200, 220, 250))] * 24),
        ("card on black", [_card(tsize, (0, 0, 0), "PREMIERE", (230, 180, 60))] * 30),
    ]

    def shots(parts: list[tuple[str, list[np.ndarray]]]) -> list[Shot]:
        out, start = [], 0
        for i, (_, frames) in enumerate(parts):
            out.append(Shot(i, start, start + len(frames) - 1, "cut" if i else "start", 1.0))
            start += len(frames)
        return out

    film, trailer = out / "film.mp4", out / "trailer.mp4"
    write_frames(film, [f for _, fs in film_parts for f in fs], fps=24)
    write_frames(trailer, [f for _, fs in trailer_parts for f in fs], fps=24)
    fp, _ = fingerprint_film_timed(film, fsize[0] / fsize[1])
    luma_frames, _ = trailer_luma_timed(trailer)
    film_shots, trailer_shots = shots(film_parts), shots(trailer_parts)
    matches = match_shots(luma_frames, trailer_shots, tsize[0] / tsize[1], fp, film_shots)
    return {
        "fp": fp,
        "film_shots": {name: s for (name, _), s in zip(film_parts, film_shots, strict=True)},
        "matches": {name: m for (name, _), m in zip(trailer_parts, matches, strict=True)},
    }


def test_plain_trailer_shots_are_never_matched(plain_case: dict[str, Any]) -> None:
    for name in ("card on white", "black", "white", "flat colour", "sky", "card on black"):
        m = plain_case["matches"][name]
        assert not m.matched and m.film_shot_id is None, name
        assert "structure" in m.reason and m.textured < 0.5, (name, m.reason)
        assert not m.candidates  # and they give no soft label to anything


def test_title_card_on_white_finds_nothing_in_a_film_with_white_frames(plain_case: dict[str, Any]) -> None:
    fp, film_shots = plain_case["fp"], plain_case["film_shots"]
    # the film's own white, black and title-card frames carry no fingerprint: nothing can land on them
    for name in ("white", "black", "film title card"):
        s = film_shots[name]
        assert not fp.textured[s.start_frame + 2 : s.end_frame - 1].any(), name
        assert not fp.codes[s.start_frame + 2 : s.end_frame - 1].any(), name
    for name in ("picture A", "picture C", "picture F"):
        s = film_shots[name]
        assert fp.textured[s.start_frame : s.end_frame + 1].mean() > 0.9, name
    assert not plain_case["matches"]["card on white"].matched


def test_a_graded_copy_still_matches(plain_case: dict[str, Any]) -> None:
    film_shots = plain_case["film_shots"]
    for name, film_name, first in (("graded C", "picture C", 10), ("picture A", "picture A", 5)):
        m = plain_case["matches"][name]
        s = film_shots[film_name]
        assert m.matched and m.reason == "", (name, m.similarity, m.reason)
        assert m.film_shot_id == s.shot_id
        assert abs(m.film_start_frame - (s.start_frame + first)) <= 2, (name, m.film_start_frame)
        assert m.speed == pytest.approx(1.0, abs=0.05)


@pytest.fixture(scope="module")
def realistic_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrailerTruth, TrailerMatchResult]:
    out = tmp_path_factory.mktemp("realistic")
    p = make_trailer_pair(
        out, seed=3, minutes=0.6, size=(320, 180), trailer_size=(480, 270), sources=[], realistic=True
    )
    return load_trailer_truth(p.truth), match_files(p.film, p.trailer, detector="fast")


def test_realistic_pair_truth_and_matching(realistic_pair: tuple[TrailerTruth, TrailerMatchResult]) -> None:
    truth, result = realistic_pair
    credits = [s for s in truth.film_shots if s.source == "credits"]
    assert len(credits) >= 5 and not any(s.used for s in credits)
    assert credits[-1].end_frame == truth.film_frame_count - 1 == result.film_times.shape[0] - 1
    cards = [s for s in truth.trailer_shots if s.film_shot_id is None]
    assert any(len(s.edits) > 1 and s.edits[1].startswith("card-") for s in cards)
    for t in cards:  # every kind of title card, and the film's credits, match nothing
        assert not _holder(result, (t.start_frame + t.end_frame) // 2).matched, t.edits
    from_film = [s for s in truth.trailer_shots if s.film_shot_id is not None]
    found = 0
    for t in from_film:
        m = _holder(result, (t.start_frame + t.end_frame) // 2)
        found += bool(
            m.matched and m.film_start_frame <= t.film_end_frame and t.film_start_frame <= m.film_end_frame
        )
    assert found / len(from_film) >= 0.8
