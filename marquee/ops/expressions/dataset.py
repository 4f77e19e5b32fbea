"""Training examples for the expression model from a thumbnail dataset.

Layout (a folder, or a prefix in object storage), one folder per title::

    <dataset>/<title>/artwork/*.jpg|png   real artwork frames of that title (positives)
    <dataset>/<title>/frames/*.jpg|png    other frames of the same title (negatives)

Positives are the main faces of each artwork frame (at least ``min_face_share`` of the picture's
height); negatives are such faces in the title's other frames, at most ``negatives_per_positive``
times as many as its positives (sampled with a fixed seed). Keeping negatives within the same titles
makes the model learn what makes a frame artwork-worthy, not which film it comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marquee.ops.expressions.signals import FaceMeshLandmarker, measure_face
from marquee.ops.faces.detect import FaceDetector

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Named pictures, each loaded on demand: ``(name, load)`` with ``load() -> RGB array``.
Images = Iterable[tuple[str, Callable[[], np.ndarray]]]


@dataclass
class TrainingSet:
    rows: list[dict[str, Any]] = field(default_factory=list)  # FaceSignals.as_dict() + source
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # title of each row

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for label, group in zip(self.labels, self.groups, strict=True):
            c = out.setdefault(group, {"positives": 0, "negatives": 0})
            c["positives" if label else "negatives"] += 1
        return out


def _main_faces(
    image: np.ndarray, detector: FaceDetector, landmarker: FaceMeshLandmarker, min_face_share: float
) -> list[dict[str, Any]]:
    dets = detector.detect_batch([image])[0]
    height = image.shape[0]
    rows = []
    for box in dets.boxes:
        if (box[3] - box[1]) / height >= min_face_share:
            rows.append(measure_face(image, box, landmarker).as_dict())
    return rows


def build_training_set(
    titles: Mapping[str, tuple[Images, Images]],
    detector: FaceDetector,
    landmarker: FaceMeshLandmarker,
    *,
    min_face_share: float = 0.08,
    negatives_per_positive: float = 3.0,
    seed: int = 0,
) -> TrainingSet:
    """Rows from ``titles``: title -> (artwork images, other frames), each an iterable of
    ``(name, load)`` where ``load()`` returns an RGB array."""
    rng = np.random.default_rng(seed)
    out = TrainingSet()
    for title in sorted(titles):
        artwork, frames = titles[title]
        positives = []
        for name, load in artwork:
            positives += [
                r | {"source": name} for r in _main_faces(load(), detector, landmarker, min_face_share)
            ]
        negatives = []
        for name, load in frames:
            negatives += [
                r | {"source": name} for r in _main_faces(load(), detector, landmarker, min_face_share)
            ]
        limit = int(np.ceil(negatives_per_positive * max(1, len(positives))))
        if len(negatives) > limit:
            keep = sorted(rng.choice(len(negatives), size=limit, replace=False).tolist())
            negatives = [negatives[i] for i in keep]
        for rows, label in ((positives, 1), (negatives, 0)):
            out.rows += rows
            out.labels += [label] * len(rows)
            out.groups += [title] * len(rows)
    return out
