"""The expression model: measured signals (and optionally the face embedding) -> one score in [0, 1].

Two kinds, one interface (``score(signals) -> array``):
- ``RuleModel`` (the default, used until a thumbnail dataset is given): the product of soft
  thresholds on the signals that make a face usable for artwork: eyes open, mouth closed (not
  mid-speech), sharp, facing the camera. Each threshold is a logistic step whose centre and width
  are calibrated on labelled real face crops (``bench/expressions.py --calibrate`` prints them; the
  values below come from that run and are recorded in the model's version).
- ``TrainedModel``: a scikit-learn classifier trained on faces from real artwork frames (positives)
  and faces from other frames of the same titles (negatives), with metrics on held-out titles.

Both serialise to bytes (JSON for the rule, pickle for a trained pipeline with a JSON header) so the
``expression_model`` asset can keep them in object storage.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from marquee.ops.expressions.signals import eye_openness

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
        return f"rule-{hashlib.sha256(blob).hexdigest()[:8]}"

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

    def score(self, x: np.ndarray) -> np.ndarray:
        p = self.parts(x)
        return p["eyes_open"] * p["mouth_closed"] * p["sharp"] * p["frontal"]

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

    kind = "trained"

    def __post_init__(self) -> None:
        if not self.trained_version:
            self.trained_version = f"trained-{hashlib.sha256(pickle.dumps(self.pipeline)).hexdigest()[:8]}"

    @property
    def version(self) -> str:
        return self.trained_version

    def parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.rule.parts(x)

    def score(self, x: np.ndarray) -> np.ndarray:
        return self.pipeline.predict_proba(x)[:, 1]

    def to_bytes(self) -> bytes:
        header = json.dumps(
            {"kind": self.kind, "version": self.version, "metrics": self.metrics, "rule": asdict(self.rule)}
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
    return TrainedModel(pipeline, header.get("metrics", {}), rule, header.get("version", ""))


def train_model(
    rows: Sequence[Mapping[str, Any]],
    labels: Sequence[int],
    groups: Sequence[str],
    *,
    seed: int = 0,
) -> TrainedModel:
    """Fit a classifier; metrics from grouped cross-validation (a title's faces never sit on both
    sides of a split), then refit on everything.

    ``rows`` are signals dicts, ``labels`` 1 for faces from artwork and 0 for other faces of the same
    titles, ``groups`` the title of each row.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import GroupKFold

    x, y, g = feature_matrix(rows), np.asarray(labels, int), np.asarray(groups)
    if len(set(y.tolist())) < 2:
        raise ValueError("training needs both positives (artwork faces) and negatives")

    def make() -> Any:
        return HistGradientBoostingClassifier(
            max_depth=3, max_iter=150, learning_rate=0.08, random_state=seed
        )

    n_groups = len(set(g.tolist()))
    metrics: dict[str, Any] = {"n": len(y), "positives": int(y.sum()), "titles": n_groups}
    if n_groups >= 2:
        folds = min(5, n_groups)
        pred = np.zeros(len(y))
        for train, test in GroupKFold(n_splits=folds).split(x, y, g):
            if len(set(y[train].tolist())) < 2:
                pred[test] = y[train].mean()
                continue
            pred[test] = make().fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        rule = RuleModel().score(x)
        metrics |= {
            "cv_folds": folds,
            "cv_grouped_by": "title",
            "roc_auc": _safe(roc_auc_score, y, pred),
            "average_precision": _safe(average_precision_score, y, pred),
            "accuracy@0.5": float(((pred >= 0.5) == y).mean()),
            "rule_roc_auc": _safe(roc_auc_score, y, rule),
            "rule_average_precision": _safe(average_precision_score, y, rule),
        }
    return TrainedModel(make().fit(x, y), metrics)


def _safe(fn: Any, y: np.ndarray, p: np.ndarray) -> float | None:
    try:
        return round(float(fn(y, p)), 4)
    except ValueError:  # one class in y
        return None


def describe(model: ExpressionModel) -> dict[str, Any]:
    """Metadata for the Dagster UI and the report."""
    if isinstance(model, RuleModel):
        return {"kind": "rule", "version": model.version, "params": asdict(model)}
    return {"kind": "trained", "version": model.version, "metrics": model.metrics}
