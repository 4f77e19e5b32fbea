"""Typed face detections, in the spirit of ``supervision.Detections``.

Detectors, trackers and embedders exchange plain numpy arrays wrapped in one small dataclass, so that
each stage can filter or index all fields at once (``dets[dets.scores > 0.9]``) and nobody has to
remember which column of an ``(N, 15)`` array holds the nose.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Order of the five landmarks in ``FaceDetections.landmarks`` (the subject's left eye is on the
#: image's right for a frontal face; we follow MTCNN's order: image-left eye first).
LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


def _empty_scores() -> np.ndarray:
    return np.zeros((0,), np.float32)


def _empty_landmarks() -> np.ndarray:
    return np.zeros((0, 5, 2), np.float32)


@dataclass
class FaceDetections:
    """Faces found in one image: ``boxes`` (N, 4) x1, y1, x2, y2 in source pixels, ``scores`` (N,),
    ``landmarks`` (N, 5, 2) x, y in source pixels (see ``LANDMARK_NAMES``)."""

    boxes: np.ndarray = field(default_factory=_empty_boxes)
    scores: np.ndarray = field(default_factory=_empty_scores)
    landmarks: np.ndarray = field(default_factory=_empty_landmarks)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.scores = np.asarray(self.scores, np.float32).reshape(n)
        self.landmarks = np.asarray(self.landmarks, np.float32).reshape(n, 5, 2)

    @classmethod
    def empty(cls) -> FaceDetections:
        return cls()

    def __len__(self) -> int:
        return len(self.boxes)

    def __iter__(self) -> Iterator[tuple[np.ndarray, float, np.ndarray]]:
        for i in range(len(self)):
            yield self.boxes[i], float(self.scores[i]), self.landmarks[i]

    def __getitem__(self, index: np.ndarray | slice | list[int] | int) -> FaceDetections:
        """Select faces by boolean mask, index array, slice or a single index (kept as N=1)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return FaceDetections(self.boxes[index], self.scores[index], self.landmarks[index])

    @property
    def widths(self) -> np.ndarray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> np.ndarray:
        return self.boxes[:, 3] - self.boxes[:, 1]

    @property
    def area(self) -> np.ndarray:
        """Box areas in square source pixels."""
        return np.clip(self.widths, 0, None) * np.clip(self.heights, 0, None)

    @property
    def centres(self) -> np.ndarray:
        return np.stack(
            [(self.boxes[:, 0] + self.boxes[:, 2]) / 2, (self.boxes[:, 1] + self.boxes[:, 3]) / 2], 1
        )

    def filter(self, mask: np.ndarray) -> FaceDetections:
        """The faces where ``mask`` is true."""
        return self[np.asarray(mask, bool)]

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> FaceDetections:
        """Coordinates multiplied by ``factor`` then shifted by ``offset`` (x, y): maps detections made
        on a resized or cropped image back to the source."""
        ox, oy = offset
        boxes = self.boxes * factor + np.asarray([ox, oy, ox, oy], np.float32)
        landmarks = self.landmarks * factor + np.asarray([ox, oy], np.float32)
        return FaceDetections(boxes, self.scores.copy(), landmarks)

    def clipped(self, width: int, height: int) -> FaceDetections:
        """Boxes clipped to the image (detectors may return boxes reaching past the border)."""
        boxes = self.boxes.copy()
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
        return FaceDetections(boxes, self.scores.copy(), self.landmarks.copy())


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N, 4) and ``b`` (M, 4): an (N, M) array."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class FaceRecord:
    """One detected face of a title, as the faces table stores it, filled in stage by stage.

    ``track_id`` comes from tracking, ``embedded``/``embed_reason`` from the embedding stage,
    ``character_id`` from clustering (-1: not identified, e.g. every face of its track too small).
    """

    face_id: int
    frame: int
    time_s: float
    shot_id: int
    box: np.ndarray  # (4,) x1, y1, x2, y2, source pixels
    score: float
    landmarks: np.ndarray  # (5, 2)
    quality: float = 0.0
    sharpness: float = 0.0
    frontality: float = 0.0
    size: float = 0.0
    track_id: int = -1
    embedded: bool = False
    embed_reason: str = ""
    character_id: int = -1

    def as_row(self) -> dict[str, object]:
        """A flat dict for a table (boxes as lists, rounded)."""
        return {
            "face_id": self.face_id,
            "frame": self.frame,
            "time_s": round(float(self.time_s), 6),
            "shot_id": self.shot_id,
            "x1": round(float(self.box[0]), 2),
            "y1": round(float(self.box[1]), 2),
            "x2": round(float(self.box[2]), 2),
            "y2": round(float(self.box[3]), 2),
            "score": round(float(self.score), 4),
            "landmarks": [round(float(v), 2) for v in np.asarray(self.landmarks).ravel()],
            "quality": round(float(self.quality), 4),
            "sharpness": round(float(self.sharpness), 4),
            "frontality": round(float(self.frontality), 4),
            "size": round(float(self.size), 2),
            "track_id": self.track_id,
            "embedded": self.embedded,
            "embed_reason": self.embed_reason,
            "character_id": self.character_id,
        }


def spec_identity(model_class: Any, params: Mapping[str, Any]) -> str:
    """``name@version`` of a model class, plus ``+<hash>`` of explicitly given parameters."""
    spec = f"{model_class.name}@{model_class.version}"
    if params:
        blob = json.dumps(dict(params), sort_keys=True, default=str).encode()
        spec += f"+{hashlib.sha256(blob).hexdigest()[:8]}"
    return spec
