"""The expression model: measured signals (and optionally the face embedding) -> one score in [0, 1].

Two kinds, one interface (``score(signals) -> array``):
- ``RuleModel`` (the default, used until a thumbnail dataset is given): the product of soft
  thresholds on the signals that make a face usable for artwork: eyes open, mouth closed (not
  mid-speech), sharp, facing the camera. Each threshold is a logistic step whose centre and width
  are calibrated on labelled real face crops (``bench/expressions.py --calibrate`` prints them; the
  values below come from that run and are recorded in the model's version).
- ``TrainedModel``: a scikit-learn classifier trained on faces from real artwork frames (positives)
  and faces from other frames of the same titles (negatives), with metrics on held-out titles.
  It may also read the face embedding (the descriptor of ``face_embeddings``, reduced by PCA inside
  the pipeline). That descriptor is made to recognise people, not expressions, so it can only help
  where a dataset's artwork favours some kinds of faces; ``train_model`` therefore cross-validates
  both inputs (signals alone, signals + embedding) on held-out titles and keeps the embedding only
  when it scores better there. A model that uses it records which embedder made its training
  descriptors: descriptors from another embedder are treated as missing.

Both serialise to bytes (JSON for the rule, pickle for a trained pipeline with a JSON header) so the
``expression_model`` asset can keep them in object storage.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from marquee.ops.expressions.signals import eye_openness
from marquee.ops.faces.tables import embeddings_from_table
from marquee.ops.faces.types import FaceRecord

#: Signals the models read, in this order (NaN where landmarks were not found).
FEATURES = (
    "eye_open",
    "eye_open_min",
    "mouth_open",
    "log_sharpness",
    "abs_yaw",
    "abs_pitch",
    "abs_roll",
    "log_size",
    "brightness",
    "clipped",
    "landmarks_found",
)


def feature_row(s: Mapping[str, Any]) -> list[float]:
    """One model input row from a signals dict (``FaceSignals.as_dict()`` or a table row)."""

    def f(key: str) -> float:
        v = s.get(key)
        return math.nan if v is None else float(v)

    left, right = f("eye_open_left"), f("eye_open_right")
    eyes = [v for v in (left, right) if not math.isnan(v)]
    return [
        eye_openness(left, right, f("yaw")),
        min(eyes) if eyes else math.nan,
        f("mouth_open"),
        math.log(max(f("sharpness"), 1e-3)) if not math.isnan(f("sharpness")) else math.nan,
        abs(f("yaw")),
        abs(f("pitch")),
        abs(f("roll")),
        math.log(max(f("size"), 1.0)) if not math.isnan(f("size")) else math.nan,
        f("brightness"),
        f("clipped"),
        1.0 if s.get("landmarks_found") else 0.0,
    ]


def feature_matrix(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.asarray([feature_row(r) for r in rows], np.float64).reshape(len(rows), len(FEATURES))


def _step(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Logistic step rising through ``centre`` (0.5) over about ``width`` (0.12 -> 0.88)."""
    return 1.0 / (1.0 + np.exp(-(x - centre) / max(width, 1e-6) * 4.0))


@dataclass(frozen=True)
class RuleModel:
    """Soft thresholds on the signals; see the module notes. Parts are exposed for the table."""

    # Centres calibrated on the labelled real crops (bench/results/expressions.json): eyes between the
    # two real blinks (near-eye EAR 0.10, 0.14) and the open eyes' 5th percentile (0.18); mouth at
    # the middle of its balanced-accuracy plateau (0.08-0.15); sharpness at the cautious end of its
    # plateau (1.5-3.2), since the measure's scale differs between sources.
    eye_centre: float = 0.16  # near-eye EAR: blinks below, open eyes above
    eye_width: float = 0.06
    mouth_centre: float = 0.149  # inner-lip gap / mouth width: speech and singing above
    mouth_width: float = 0.10
    #: An open mouth lowers the score but never vetoes it: in one frame, speech and a smile that shows
    #: teeth look alike (closed eyes and blur do veto).
    mouth_floor: float = 0.35
    sharp_centre: float = 1.5  # sharpness (Laplacian variance over contrast at 64 px)
    sharp_width: float = 1.2  # in log units
    yaw_limit: float = 45.0  # degrees at which the pose factor falls to 0.5
    no_landmarks: float = 0.5  # eyes/mouth factor when FaceMesh found no landmarks
    calibrated_on: str = "bench/expressions.py: 156 labelled crops in tests/data/expressions"

    kind = "rule"

    @property
    def version(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        # rule2: the mouth factor is floored (rule-: an open mouth vetoed, against the docstring)
        return f"rule2-{hashlib.sha256(blob).hexdigest()[:8]}"

    def parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Per-face factors in [0, 1]: eyes_open, mouth_closed, sharp, frontal."""
        i = {k: n for n, k in enumerate(FEATURES)}
        found = x[:, i["landmarks_found"]] > 0.5
        eye = np.nan_to_num(x[:, i["eye_open"]], nan=0.0)
        mouth = np.nan_to_num(x[:, i["mouth_open"]], nan=0.0)
        yaw = np.nan_to_num(x[:, i["abs_yaw"]], nan=0.0)
        log_sharp = np.nan_to_num(x[:, i["log_sharpness"]], nan=-7.0)
        eyes_open = np.where(found, _step(eye, self.eye_centre, self.eye_width), self.no_landmarks)
        mouth_closed = np.where(
            found, 1 - _step(mouth, self.mouth_centre, self.mouth_width), self.no_landmarks
        )
        sharp = _step(log_sharp, math.log(self.sharp_centre), self.sharp_width)
        frontal = 1.0 / (1.0 + (yaw / self.yaw_limit) ** 4)
        return {"eyes_open": eyes_open, "mouth_closed": mouth_closed, "sharp": sharp, "frontal": frontal}

    def score(self, x: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
        """The product of the factors, the mouth's floored at ``mouth_floor`` (an open mouth lowers,
        never vetoes); the rule does not read ``embeddings``."""
        p = self.parts(x)
        mouth = self.mouth_floor + (1.0 - self.mouth_floor) * p["mouth_closed"]
        return p["eyes_open"] * mouth * p["sharp"] * p["frontal"]

    def to_bytes(self) -> bytes:
        return json.dumps({"kind": self.kind, "params": asdict(self)}, indent=2).encode()


@dataclass
class TrainedModel:
    """A scikit-learn pipeline (imputer, scaler, classifier) over ``FEATURES``, with its metrics.

    The rule's factors are still reported per face (they explain a score); the trained model only
    replaces the combined score.
    """

    pipeline: Any
    metrics: dict[str, Any] = field(default_factory=dict)
    rule: RuleModel = field(default_factory=RuleModel)
    #: Fixed when trained and kept through save/load (a re-pickled estimator's bytes can differ).
    trained_version: str = ""
    #: Identity of the embedder whose descriptors the model reads ("" = signals only).
    embedder: str = ""
    embedding_dim: int = 0

    kind = "trained"

    def __post_init__(self) -> None:
        if not self.trained_version:
            self.trained_version = f"trained-{hashlib.sha256(pickle.dumps(self.pipeline)).hexdigest()[:8]}"

    @property
    def version(self) -> str:
        return self.trained_version

    def parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.rule.parts(x)

    @property
    def uses_embedding(self) -> bool:
        return bool(self.embedder)

    def score(self, x: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Scores for signal rows ``x``; ``embeddings`` (N, dim) with NaN rows where a face has none
        (ignored by a signals-only model; all missing when not given)."""
        if self.uses_embedding:
            x = with_embeddings(x, embeddings, self.embedding_dim)
        return self.pipeline.predict_proba(x)[:, 1]

    def to_bytes(self) -> bytes:
        header = json.dumps(
            {
                "kind": self.kind,
                "version": self.version,
                "metrics": self.metrics,
                "rule": asdict(self.rule),
                "embedder": self.embedder,
                "embedding_dim": self.embedding_dim,
            }
        ).encode()
        return len(header).to_bytes(4, "big") + header + pickle.dumps(self.pipeline)


ExpressionModel = RuleModel | TrainedModel


def load_model(data: bytes) -> ExpressionModel:
    """A model from ``to_bytes`` output (only load files your own pipeline wrote: pickle)."""
    if data[:1] == b"{":
        spec = json.loads(data)
        return RuleModel(**spec["params"])
    n = int.from_bytes(data[:4], "big")
    header = json.loads(data[4 : 4 + n])
    pipeline = pickle.loads(data[4 + n :])
    rule = RuleModel(**header["rule"])
    return TrainedModel(
        pipeline,
        header.get("metrics", {}),
        rule,
        header.get("version", ""),
        header.get("embedder", ""),
        int(header.get("embedding_dim", 0)),
    )


def with_embeddings(x: np.ndarray, embeddings: np.ndarray | None, dim: int) -> np.ndarray:
    """``x`` with ``dim`` embedding columns appended (NaN where a face has no descriptor)."""
    extra = np.full((len(x), dim), np.nan)
    if embeddings is not None and len(embeddings):
        e = np.asarray(embeddings, np.float64)
        if e.shape != (len(x), dim):
            raise ValueError(f"embeddings have shape {e.shape}; expected {(len(x), dim)}")
        extra = e
    return np.hstack([x, extra])


#: Embedding dimensions kept by PCA inside a model that reads the descriptor.
EMBEDDING_COMPONENTS = 8


def train_model(
    rows: Sequence[Mapping[str, Any]],
    labels: Sequence[int],
    groups: Sequence[str],
    *,
    embeddings: np.ndarray | None = None,
    embedder: str = "",
    seed: int = 0,
) -> TrainedModel:
    """Fit a classifier; metrics from grouped cross-validation (a title's faces never sit on both
    sides of a split), then refit on everything.

    ``rows`` are signals dicts, ``labels`` 1 for faces from artwork and 0 for other faces of the same
    titles, ``groups`` the title of each row. With ``embeddings`` ((N, dim), NaN rows for faces
    without a descriptor) made by ``embedder``, the model with the embedding is also cross-validated
    and kept only when its held-out average precision beats signals alone.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import GroupKFold

    x, y, g = feature_matrix(rows), np.asarray(labels, int), np.asarray(groups)
    if len(set(y.tolist())) < 2:
        raise ValueError("training needs both positives (artwork faces) and negatives")
    usable = embeddings is not None and bool(embedder) and len(y) >= 2 * EMBEDDING_COMPONENTS
    has_any = usable and bool(np.isfinite(np.asarray(embeddings, float)).all(1).any())
    dim = int(np.asarray(embeddings).shape[1]) if has_any else 0
    variants = {"signals": (x, 0)}
    if dim:
        variants["signals+embedding"] = (with_embeddings(x, embeddings, dim), dim)

    n_groups = len(set(g.tolist()))
    metrics: dict[str, Any] = {"n": len(y), "positives": int(y.sum()), "titles": n_groups}
    chosen = "signals"
    if n_groups >= 2:
        folds = min(5, n_groups)
        rule = RuleModel().score(x)
        metrics |= {
            "cv_folds": folds,
            "cv_grouped_by": "title",
            "rule_roc_auc": _safe(roc_auc_score, y, rule),
            "rule_average_precision": _safe(average_precision_score, y, rule),
        }
        per: dict[str, dict[str, Any]] = {}
        for name, (xv, d) in variants.items():
            pred = np.zeros(len(y))
            for train, test in GroupKFold(n_splits=folds).split(xv, y, g):
                if len(set(y[train].tolist())) < 2:
                    pred[test] = y[train].mean()
                    continue
                pred[test] = _pipeline(d, seed).fit(xv[train], y[train]).predict_proba(xv[test])[:, 1]
            per[name] = {
                "roc_auc": _safe(roc_auc_score, y, pred),
                "average_precision": _safe(average_precision_score, y, pred),
                "accuracy@0.5": float(((pred >= 0.5) == y).mean()),
            }
        if "signals+embedding" in per:
            ap = {k: v["average_precision"] or 0.0 for k, v in per.items()}
            chosen = "signals+embedding" if ap["signals+embedding"] > ap["signals"] else "signals"
            metrics["inputs_compared"] = per
        metrics |= per[chosen]
    metrics["inputs"] = chosen
    xv, d = variants[chosen]
    return TrainedModel(
        _pipeline(d, seed).fit(xv, y), metrics, embedder=embedder if d else "", embedding_dim=d
    )


def _pipeline(embedding_dim: int, seed: int) -> Any:
    """Gradient boosting over the signals (it takes NaN as 'not measured'), preceded, when the model
    reads the descriptor, by mean imputation and PCA of the embedding columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    booster = HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.08, random_state=seed)
    if not embedding_dim:
        return booster
    n = len(FEATURES)
    reduce = Pipeline(
        [
            ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
            ("pca", PCA(n_components=EMBEDDING_COMPONENTS, random_state=seed)),
        ]
    )
    columns = ColumnTransformer(
        [("signals", "passthrough", list(range(n))), ("embedding", reduce, list(range(n, n + embedding_dim)))]
    )
    return Pipeline([("columns", columns), ("booster", booster)])


def _safe(fn: Any, y: np.ndarray, p: np.ndarray) -> float | None:
    try:
        return round(float(fn(y, p)), 4)
    except ValueError:  # one class in y
        return None


def describe(model: ExpressionModel) -> dict[str, Any]:
    """Metadata for the Dagster UI and the report."""
    if isinstance(model, RuleModel):
        return {"kind": "rule", "version": model.version, "params": asdict(model)}
    return {
        "kind": "trained",
        "version": model.version,
        "metrics": model.metrics,
        "embedder": model.embedder or None,
    }


def model_embeddings(
    model: TrainedModel, table: pa.Table, faces: list[FaceRecord], face_ids: list[int]
) -> tuple[np.ndarray, str]:
    """Per scored face, the descriptor the model reads (NaN when none), and a note when the title's
    descriptors cannot be used (another embedder than the model was trained with)."""
    made_by = set(table.column("embedder").drop_null().to_pylist()) if table.num_rows else set()
    out = np.full((len(face_ids), model.embedding_dim), np.nan)
    if made_by and made_by != {model.embedder}:
        return out, (
            f"face_embeddings made by {sorted(made_by)}, the expression model by {model.embedder}: "
            "scored without the embedding; re-train expression_model with this embedder"
        )
    vectors = embeddings_from_table(table)
    tracks: dict[int, list[np.ndarray]] = defaultdict(list)
    track_of = {f.face_id: f.track_id for f in faces}
    for face_id, v in vectors.items():
        tracks[track_of.get(face_id, -1)].append(v)
    for i, face_id in enumerate(face_ids):
        v = vectors.get(face_id)
        if v is None and tracks.get(track_of.get(face_id, -2)):
            v = np.mean(tracks[track_of[face_id]], axis=0)
        if v is not None and len(v) == model.embedding_dim:
            out[i] = v
    return out, ""
