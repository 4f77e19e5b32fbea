"""Training examples for the expression model from a thumbnail dataset.

Layout (a folder, or a prefix in object storage), one folder per title::

    <dataset>/<title>/artwork/*.jpg|png   real artwork frames of that title (positives)
    <dataset>/<title>/frames/*.jpg|png    other frames of the same title (negatives)

Positives are the main faces of each artwork frame (at least ``min_face_share`` of the picture's
height); negatives are such faces in the title's other frames, at most ``negatives_per_positive``
times as many as its positives (sampled with a fixed seed). Keeping negatives within the same titles
makes the model learn what makes a frame artwork-worthy, not which film it comes from.

Given a face embedder, each face also gets its descriptor (``embedding``; None when the face is too
small to embed), so the model can be offered the embedding as an input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marquee.ops.expressions.signals import FaceMeshLandmarker, measure_face
from marquee.ops.faces.detect import FaceDetector
from marquee.ops.faces.embed import FaceEmbedder
from marquee.ops.faces.quality import MIN_EMBED_SIZE, face_crop

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Named pictures, each loaded on demand: ``(name, load)`` with ``load() -> RGB array``.
Images = Iterable[tuple[str, Callable[[], np.ndarray]]]


@dataclass
class TrainingSet:
    rows: list[dict[str, Any]] = field(default_factory=list)  # FaceSignals.as_dict() + source (+ embedding)
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # title of each row

    def embeddings(self, dim: int) -> np.ndarray:
        """(N, dim) descriptors, NaN rows for faces without one."""
        out = np.full((len(self.rows), dim), np.nan)
        for i, r in enumerate(self.rows):
            if r.get("embedding") is not None:
                out[i] = r["embedding"]
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for label, group in zip(self.labels, self.groups, strict=True):
            c = out.setdefault(group, {"positives": 0, "negatives": 0})
            c["positives" if label else "negatives"] += 1
        return out


def _main_faces(
    image: np.ndarray,
    detector: FaceDetector,
    landmarker: FaceMeshLandmarker,
    min_face_share: float,
    embedder: FaceEmbedder | None = None,
) -> list[dict[str, Any]]:
    dets = detector.detect_batch([image])[0]
    height = image.shape[0]
    rows = []
    for box, _, marks in dets:
        if (box[3] - box[1]) / height < min_face_share:
            continue
        row = measure_face(image, box, landmarker).as_dict()
        if embedder is not None:
            small = min(box[2] - box[0], box[3] - box[1]) < MIN_EMBED_SIZE
            row["embedding"] = None if small else embedder.embed([face_crop(image, box, marks)])[0].tolist()
        rows.append(row)
    return rows


def build_training_set(
    titles: Mapping[str, tuple[Images, Images]],
    detector: FaceDetector,
    landmarker: FaceMeshLandmarker,
    *,
    min_face_share: float = 0.08,
    negatives_per_positive: float = 3.0,
    seed: int = 0,
    embedder: FaceEmbedder | None = None,
) -> TrainingSet:
    """Rows from ``titles``: title -> (artwork images, other frames), each an iterable of
    ``(name, load)`` where ``load()`` returns an RGB array. With ``embedder``, every row also has
    its face descriptor under ``embedding``."""
    rng = np.random.default_rng(seed)
    out = TrainingSet()
    for title in sorted(titles):
        artwork, frames = titles[title]

        def faces_of(images: Images) -> list[dict[str, Any]]:
            out_rows = []
            for name, load in images:
                found = _main_faces(load(), detector, landmarker, min_face_share, embedder)
                out_rows += [r | {"source": name} for r in found]
            return out_rows

        positives, negatives = faces_of(artwork), faces_of(frames)
        limit = int(np.ceil(negatives_per_positive * max(1, len(positives))))
        if len(negatives) > limit:
            keep = sorted(rng.choice(len(negatives), size=limit, replace=False).tolist())
            negatives = [negatives[i] for i in keep]
        for rows, label in ((positives, 1), (negatives, 0)):
            out.rows += rows
            out.labels += [label] * len(rows)
            out.groups += [title] * len(rows)
    return out
