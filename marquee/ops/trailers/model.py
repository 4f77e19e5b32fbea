"""The trailerness model: per-shot features of a title -> a score in [0, 1] per shot.

Training data are all titles with a trailer: every film shot has a soft label in [0, 1] (how well a
trailer shot matched it), as in "Learning Trailer Moments in Full-Length Movies" (ECCV 2020), where the
trailer's shots are weak labels for the film's. What makes a shot trailer-worthy is relative to its
film (the loudest shots of a quiet drama), so features are standardised within each title first
(``features.standardise_within_title``); the embedding is then reduced by PCA fitted on the training
shots, and the mean of a gradient-boosted regressor and a ridge regression fits the soft labels
(squared error: it keeps the ordering the labels carry, which a classifier on thresholded labels would
throw away).

Two kinds, one class and one interface (``score(x) -> array`` for one title's rows):
- untrained (``TrailernessModel.default()``): the motion/loudness/face heuristic of ``baselines.py``,
  used for titles until a model has been trained on titles with trailers;
- trained (``train_model``): the pipeline above, with metrics from cross-validation grouped by title
  (a title's shots never sit on both sides) for the model, the random baseline and the motion/loudness
  heuristic, all in the same run.

Serialised like the expression model: a JSON header (kind, version, metrics, layout) and, for a
trained model, the pickled scikit-learn pipeline.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from marquee.ops.trailers.baselines import MOTION_LOUDNESS, HeuristicModel
from marquee.ops.trailers.features import SCALAR_FEATURES, standardise_within_title

#: Embedding dimensions kept by PCA (fewer when there are fewer training shots). Few titles have
#: trailers, so few directions can be learnt: on five synthetic titles of bench/trailer_ranking.py,
#: 4 components ranked best and 16 worst; 8 is an untuned compromise, not a measured optimum.
PCA_COMPONENTS = 8
TOP_K = 10


@dataclass
class TrailernessModel:
    """Scores one title's shots. ``pipeline`` is None for the untrained heuristic default."""

    pipeline: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    heuristic: HeuristicModel = field(default_factory=HeuristicModel)
    #: Width of the embedding the pipeline was trained on, and the visual encoder that produced it.
    embed_dim: int = 0
    encoder: str = ""
    #: Fixed when trained and kept through save/load (a re-pickled estimator's bytes can differ).
    trained_version: str = ""

    def __post_init__(self) -> None:
        if self.pipeline is not None and not self.trained_version:
            digest = hashlib.sha256(pickle.dumps(self.pipeline)).hexdigest()[:8]
            self.trained_version = f"trained-{digest}"

    @classmethod
    def default(cls) -> TrailernessModel:
        """The untrained default: ``HeuristicModel()`` (motion, loudness, onsets, faces)."""
        return cls()

    @property
    def kind(self) -> str:
        return "heuristic" if self.pipeline is None else "trained"

    @property
    def version(self) -> str:
        return self.heuristic.version if self.pipeline is None else self.trained_version

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] for the rows of ONE title (features are standardised within it)."""
        x = np.asarray(x, np.float64)
        if self.pipeline is None:
            return self.heuristic.score(x)
        if len(x) == 0:
            return np.zeros(0)
        width = len(SCALAR_FEATURES) + self.embed_dim
        if x.shape[1] != width:
            raise ValueError(
                f"trailerness model {self.version} expects {width} columns ({len(SCALAR_FEATURES)} scalars + "
                f"{self.embed_dim}-d embedding from {self.encoder or 'no encoder'}), got {x.shape[1]}"
            )
        with _one_thread():
            return np.clip(self.pipeline.predict(standardise_within_title(x)), 0.0, 1.0)

    def header(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "metrics": self.metrics,
            "heuristic": asdict(self.heuristic),
            "scalar_features": list(SCALAR_FEATURES),
            "embed_dim": self.embed_dim,
            "encoder": self.encoder,
        }

    def to_bytes(self) -> bytes:
        header = json.dumps(self.header()).encode()
        body = b"" if self.pipeline is None else pickle.dumps(self.pipeline)
        return len(header).to_bytes(4, "big") + header + body

    @classmethod
    def from_bytes(cls, data: bytes) -> TrailernessModel:
        """A model from ``to_bytes`` output (only load files your own pipeline wrote: pickle)."""
        n = int.from_bytes(data[:4], "big")
        header = json.loads(data[4 : 4 + n])
        if list(header.get("scalar_features", [])) != list(SCALAR_FEATURES):
            raise ValueError("trailerness model was trained on other scalar features; retrain it")
        pipeline = pickle.loads(data[4 + n :]) if header["kind"] == "trained" else None
        return cls(
            pipeline=pipeline,
            metrics=header.get("metrics", {}),
            heuristic=HeuristicModel(**header.get("heuristic", {})),
            embed_dim=int(header.get("embed_dim", 0)),
            encoder=header.get("encoder", ""),
            trained_version=header.get("version", "") if pipeline is not None else "",
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> TrailernessModel:
        return cls.from_bytes(Path(path).read_bytes())


def ranking_metrics(scores: np.ndarray, truth: np.ndarray, k: int = TOP_K) -> dict[str, float]:
    """Precision and recall of the top ``k`` shots against boolean truth, and average precision.

    Ties are broken by shot order (stable sort). With fewer than ``k`` shots, all are the top.
    """
    truth = np.asarray(truth, bool)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    top = truth[order[: min(k, len(order))]]
    pos = int(truth.sum())
    hits = np.cumsum(truth[order])
    ap = float((hits[truth[order]] / (np.nonzero(truth[order])[0] + 1)).mean()) if pos else float("nan")
    return {
        f"precision@{k}": float(top.mean()) if len(top) else float("nan"),
        f"recall@{k}": float(top.sum() / pos) if pos else float("nan"),
        "average_precision": ap,
    }


def random_metrics(truth: np.ndarray, k: int = TOP_K, draws: int = 200, seed: int = 0) -> dict[str, float]:
    """Expected metrics of a random ranking: exact for precision/recall@k, ``draws`` shuffles for AP."""
    truth = np.asarray(truth, bool)
    n, pos = len(truth), int(truth.sum())
    top = min(k, n)
    rng = np.random.default_rng(seed)
    aps = [ranking_metrics(rng.random(n), truth, k)["average_precision"] for _ in range(draws)] if pos else []
    return {
        f"precision@{k}": pos / n if n else float("nan"),
        f"recall@{k}": top / n if pos and n else float("nan"),
        "average_precision": float(np.mean(aps)) if aps else float("nan"),
    }


def _make_pipeline(embed_dim: int, n_train: int, seed: int) -> Any:
    """PCA of the embedding, then the mean of a gradient-boosted regressor and a ridge regression.

    Why both: with the few titles that have trailers, the linear model's additive combination of
    within-title z-scores generalises best; with more titles the trees pick up interactions and
    thresholds (a very long shot is never used, whatever its loudness). Averaging costs little either way.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingRegressor, VotingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    k = len(SCALAR_FEATURES)
    parts: list[tuple[str, Any, Any]] = [("scalars", "passthrough", list(range(k)))]
    if embed_dim:
        n_comp = max(1, min(PCA_COMPONENTS, embed_dim, n_train - 1))
        parts.append(("embedding", PCA(n_comp, random_state=seed), list(range(k, k + embed_dim))))
    trees = HistGradientBoostingRegressor(
        max_depth=3,
        max_iter=200,
        learning_rate=0.05,
        min_samples_leaf=10,
        l2_regularization=1.0,
        random_state=seed,
    )
    linear = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=10.0))])
    reg = VotingRegressor([("trees", trees), ("linear", linear)])
    return Pipeline([("columns", ColumnTransformer(parts)), ("regressor", reg)])


def _one_thread() -> Any:
    """Single-threaded OpenMP/BLAS: a few thousand shots gain nothing from threads, and on a busy
    machine OpenMP's spinning threads made one gradient-boosting fit 80x slower (22 s against 0.3 s)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _fit(x: np.ndarray, y: np.ndarray, embed_dim: int, seed: int) -> Any:
    """Fit on already standardised rows. Titles are not re-weighted by shot count: with sample weights
    the regressor's binning switches to weighted percentiles, which made a fit 80x slower here."""
    pipe = _make_pipeline(embed_dim, len(x), seed)
    with _one_thread():
        return pipe.fit(x, y)


def train_model(
    x: np.ndarray,
    labels: Sequence[float],
    groups: Sequence[str],
    *,
    truth: Sequence[bool] | None = None,
    encoder: str = "",
    seed: int = 0,
    k: int = TOP_K,
) -> TrailernessModel:
    """Fit on all titles' shots; metrics from grouped cross-validation, then refit on everything.

    ``x``: rows of ``features.ShotFeatures.matrix`` from all titles (raw, not standardised);
    ``labels``: soft labels in [0, 1] per row; ``groups``: the title of each row; ``truth`` (optional):
    the shots the trailer really used, for evaluation only (else soft labels >= 0.5 stand in).
    Folds: leave-one-title-out up to 10 titles, else 5 grouped folds.
    """
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    x = np.asarray(x, np.float64)
    y = np.clip(np.asarray(labels, np.float64), 0.0, 1.0)
    g = np.asarray(groups).astype(str)
    embed_dim = x.shape[1] - len(SCALAR_FEATURES)
    if embed_dim < 0:
        raise ValueError(f"need at least the {len(SCALAR_FEATURES)} scalar feature columns, got {x.shape[1]}")
    hard = np.asarray(truth, bool) if truth is not None else y >= 0.5
    titles = sorted(set(g.tolist()))
    xs = np.zeros_like(x)
    for t in titles:  # within-title standardisation never looks at other titles: no leakage across folds
        m = g == t
        xs[m] = standardise_within_title(x[m])
    metrics: dict[str, Any] = {
        "shots": len(y),
        "titles": len(titles),
        "label_mean": round(float(y.mean()), 4) if len(y) else None,
        "truth": "trailer's used shots" if truth is not None else "soft label >= 0.5",
    }
    if len(titles) >= 2:
        splitter = LeaveOneGroupOut() if len(titles) <= 10 else GroupKFold(n_splits=5)
        pred = np.zeros(len(y))
        for train, test in splitter.split(xs, y, g):
            fold = _fit(xs[train], y[train], embed_dim, seed)
            with _one_thread():
                pred[test] = np.clip(fold.predict(xs[test]), 0, 1)
        per: dict[str, list[dict[str, float]]] = {
            "model": [],
            "random": [],
            "motion_loudness": [],
            "heuristic": [],
        }
        per_title: dict[str, dict[str, float]] = {}
        for t in titles:
            m = g == t
            if not hard[m].any():
                continue
            per["model"].append(ranking_metrics(pred[m], hard[m], k))
            per["random"].append(random_metrics(hard[m], k, seed=seed))
            per["motion_loudness"].append(ranking_metrics(MOTION_LOUDNESS.score(x[m]), hard[m], k))
            per["heuristic"].append(ranking_metrics(HeuristicModel().score(x[m]), hard[m], k))
            per_title[t] = {name: round(rows[-1][f"precision@{k}"], 4) for name, rows in per.items()}
        metrics |= {
            "cv": "leave-one-title-out" if len(titles) <= 10 else "5-fold grouped by title",
            "cv_titles_scored": len(per["model"]),
            **{name: _mean_metrics(rows) for name, rows in per.items()},
            f"per_title_precision@{k}": per_title,
        }
    pipeline = _fit(xs, y, embed_dim, seed)
    return TrailernessModel(pipeline=pipeline, metrics=metrics, embed_dim=embed_dim, encoder=encoder)


def _mean_metrics(rows: list[dict[str, float]]) -> dict[str, float | None]:
    if not rows:
        return {}
    out: dict[str, float | None] = {}
    for key in rows[0]:
        vals = [r[key] for r in rows if not np.isnan(r[key])]
        out[key] = round(float(np.mean(vals)), 4) if vals else None
    return out


def describe(model: TrailernessModel) -> dict[str, Any]:
    """Metadata for the Dagster UI and the report."""
    return {k: v for k, v in model.header().items() if k != "scalar_features"}
