"""The trailerness model learns a planted relation; save/load; baselines; moments never overlap."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from marquee.ops.trailers.baselines import MOTION_LOUDNESS, HeuristicModel
from marquee.ops.trailers.features import SCALAR_FEATURES
from marquee.ops.trailers.model import TrailernessModel, random_metrics, ranking_metrics, train_model
from marquee.ops.trailers.moments import rank_moments

COL = {n: i for i, n in enumerate(SCALAR_FEATURES)}
EMB = 8


def _titles(n_titles: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shots whose hidden appeal is loudness (relative to the title, whose mix level varies) plus a
    direction in embedding space and a bonus for a lead on screen, minus a penalty for very long
    shots; the top 20% of each title are 'used', soft labels are noisy."""
    rng = np.random.default_rng(seed)
    xs, ys, gs, ts = [], [], [], []
    direction = rng.standard_normal(EMB)
    direction /= np.linalg.norm(direction)
    for t in range(n_titles):
        n = int(rng.integers(40, 70))
        x = np.zeros((n, len(SCALAR_FEATURES) + EMB))
        length = rng.gamma(2.0, 2.0, n) + 0.3
        x[:, COL["length_s"]] = length
        x[:, COL["log_length"]] = np.log(length)
        x[:, COL["position"]] = (np.cumsum(length) - length / 2) / length.sum()
        x[:, COL["motion"]] = rng.gamma(2.0, 3.0, n)  # irrelevant here
        loud = rng.normal(-30 + rng.normal(0, 8), 5, n)  # title mix level varies
        x[:, COL["loudness_mean_db"]] = loud
        x[:, COL["loudness_max_db"]] = loud + rng.uniform(2, 8, n)
        x[:, COL["onset_strength"]] = rng.random(n)
        x[:, COL["onset_rate"]] = rng.poisson(2, n)
        x[:, COL["has_audio"]] = 1
        x[:, COL["top2_character"]] = rng.random(n) < 0.3
        emb = rng.standard_normal((n, EMB)) * 0.3
        x[:, len(SCALAR_FEATURES) :] = emb
        appeal = (
            (loud - loud.mean()) / loud.std()
            + 2.0 * (emb @ direction) / 0.3
            + 1.0 * x[:, COL["top2_character"]]
            - 1.0 * (length > 8)
        )
        used = appeal >= np.quantile(appeal, 0.8)
        soft = np.clip(used * rng.uniform(0.6, 1.0, n) + rng.uniform(0, 0.2, n), 0, 1)
        xs.append(x)
        ys.append(soft)
        gs += [f"title{t}"] * n
        ts.append(used)
    return np.vstack(xs), np.concatenate(ys), np.asarray(gs), np.concatenate(ts)


@pytest.fixture(scope="module")
def trained() -> tuple[TrailernessModel, tuple[np.ndarray, ...]]:
    x, y, g, t = _titles(6, seed=1)
    return train_model(x, y, g, truth=t, encoder="test-embedding"), _titles(3, seed=2)


def test_learns_planted_relation_on_held_out_titles(trained) -> None:
    model, (x, _, g, t) = trained
    m = model.metrics
    assert m["cv"] == "leave-one-title-out" and m["titles"] == 6 and m["cv_titles_scored"] == 6
    # Random expects 0.2 (the used share); the model must be clearly better in cross-validation...
    assert m["random"]["precision@10"] == pytest.approx(0.2, abs=0.02)
    assert m["model"]["precision@10"] >= 0.55
    assert m["model"]["average_precision"] > m["random"]["average_precision"] + 0.25
    assert m["model"]["precision@10"] > m["motion_loudness"]["precision@10"]
    # ... and on titles it never saw, generated with another seed.
    for title in sorted(set(g.tolist())):
        mask = g == title
        assert ranking_metrics(model.score(x[mask]), t[mask])["precision@10"] >= 0.4


def test_save_load_keeps_version_and_scores(trained, tmp_path: Path) -> None:
    model, (x, _, g, _) = trained
    path = tmp_path / "trailerness.bin"
    model.save(path)
    back = TrailernessModel.load(path)
    assert back.kind == "trained" and back.version == model.version and back.version.startswith("trained-")
    assert back.metrics == model.metrics and back.encoder == "test-embedding"
    one = x[g == g[0]]
    assert np.array_equal(back.score(one), model.score(one))
    with pytest.raises(ValueError, match="expects"):
        model.score(one[:, :-1])


def test_untrained_default_is_the_heuristic(tmp_path: Path) -> None:
    model = TrailernessModel.default()
    assert model.kind == "heuristic" and model.version == HeuristicModel().version
    x = np.zeros((3, len(SCALAR_FEATURES)))
    x[:, COL["motion"]] = [0.0, 1.0, 2.0]
    x[:, COL["loudness_mean_db"]] = [np.nan, -30.0, -10.0]
    s = model.score(x)
    assert np.all(np.diff(s) > 0) and np.all((s > 0) & (s < 1))
    model.save(tmp_path / "h.bin")
    back = TrailernessModel.load(tmp_path / "h.bin")
    assert back.version == model.version and np.allclose(back.score(x), s)
    assert MOTION_LOUDNESS.version != model.version


def test_metrics_and_random_expectation() -> None:
    truth = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], bool)
    perfect = ranking_metrics(truth.astype(float), truth, k=2)
    assert perfect == {"precision@2": 1.0, "recall@2": 1.0, "average_precision": 1.0}
    r = random_metrics(truth, k=2, draws=400)
    assert r["precision@2"] == pytest.approx(2 / 12) and 0.15 < r["average_precision"] < 0.45


def _shots(lengths: list[float]) -> list[dict]:
    out, t, f = [], 0.0, 0
    for i, d in enumerate(lengths):
        n = round(d * 25)
        out.append({"shot_id": i, "start_frame": f, "end_frame": f + n - 1, "start_s": t, "end_s": t + d})
        t, f = t + d, f + n
    return out


def test_rank_moments_non_overlapping_diverse_runs() -> None:
    rng = np.random.default_rng(0)
    shots = _shots(rng.uniform(0.5, 4.0, 80).tolist())
    scores = 0.85 * rng.random(80)
    scores[10:13] = [0.95, 0.97, 0.9]  # a strong run of three adjacent shots
    moments = rank_moments(scores, shots, top_k=10, max_shots=3, min_gap_s=5.0)
    assert len(moments) == 10 and [m.rank for m in moments] == list(range(1, 11))
    assert moments[0].shot_ids == (10, 11, 12) and moments[0].score == pytest.approx(0.97)
    spans = sorted((m.start_s, m.end_s) for m in moments)
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))  # no overlap
    assert all(
        len(m.shot_ids) <= 3 and list(m.shot_ids) == list(range(m.shot_ids[0], m.shot_ids[-1] + 1))
        for m in moments
    )
    assert all(shots[m.shot_ids[0]]["start_frame"] == m.start_frame for m in moments)
    assert [m.score for m in moments] == sorted((m.score for m in moments), reverse=True)
    # Few shots: the gap is relaxed rather than returning fewer moments, but still no overlap.
    few = rank_moments(np.linspace(1, 0.5, 6), _shots([1.0] * 6), top_k=4, max_shots=1, min_gap_s=10.0)
    assert len(few) == 4 and len({s for m in few for s in m.shot_ids}) == 4
