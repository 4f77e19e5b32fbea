"""Trailer-to-film matching (``marquee.ops.trailers``) on a generated pair with exact truth.

The pair is made from procedural footage (``sources=[]``), so these tests run where ``../shared`` and
the package media are absent; ``bench/trailers.py`` runs the same matching on real footage.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from marquee.ops.trailers.fingerprint import FilmFingerprinter, cell_means, rank_descriptor
from marquee.ops.trailers.labels import soft_labels
from marquee.ops.trailers.match import TrailerMatchResult, match_files
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
        else:
            assert r["film_shot_id"] is None and r["film_start_s"] is None


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
