"""Linking faces on consecutive keyframes of one shot into tracks.

A track is "one person, continuously on screen in one shot". Clustering tracks instead of loose faces
is what makes the character stage robust and cheap: faces of one track are one person by
construction, two tracks seen in the same keyframe are two people (a cannot-link), and only a few
faces per track need an identity descriptor. Keyframes are sparse (about one a second in long shots),
so motion between them can be large: a face links to a track when the boxes overlap (IoU) or, failing
that, when the centres are close relative to the face size and the sizes agree; an appearance
distance, when given, must agree as well (on the generated benchmark videos, the colour signature of
one person on two keyframes of a shot is at most 0.14 apart, of two people in one shot at least 0.19
and 95% above 0.38; the gate is 0.4). Assignment is globally optimal per keyframe (Hungarian). Tracks
never cross shots: a cut ends every track.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from marquee.ops.faces.types import box_iou

_BLOCKED = 1e6


@dataclass(frozen=True)
class TrackerParams:
    """Gates for linking a face to a track's last face (within a shot)."""

    min_iou: float = 0.3  # boxes overlapping this much link on geometry alone
    max_centre_dist: float = 1.5  # ... else centres at most this many (mean) face sizes apart
    max_size_ratio: float = 1.6  # ... and box sizes within this ratio
    max_appearance_dist: float | None = 0.4  # appearance gate (Hellinger), when features are given
    max_missed: int = 2  # keyframes a track may go unseen inside a shot before it ends


@dataclass
class _Active:
    track_id: int
    box: np.ndarray
    feature: np.ndarray | None
    missed: int = 0


def _geometry_cost(prev: np.ndarray, new: np.ndarray, params: TrackerParams) -> np.ndarray:
    """Cost of linking each previous box (rows) to each new box (columns); ``_BLOCKED`` when gated."""
    iou = box_iou(prev, new)
    ps = np.sqrt(np.clip((prev[:, 2] - prev[:, 0]) * (prev[:, 3] - prev[:, 1]), 1e-6, None))
    ns = np.sqrt(np.clip((new[:, 2] - new[:, 0]) * (new[:, 3] - new[:, 1]), 1e-6, None))
    pc = np.stack([(prev[:, 0] + prev[:, 2]) / 2, (prev[:, 1] + prev[:, 3]) / 2], 1)
    nc = np.stack([(new[:, 0] + new[:, 2]) / 2, (new[:, 1] + new[:, 3]) / 2], 1)
    dist = np.linalg.norm(pc[:, None] - nc[None], axis=2) / ((ps[:, None] + ns[None]) / 2)
    ratio = np.maximum(ps[:, None], ns[None]) / np.minimum(ps[:, None], ns[None])
    ok = (iou >= params.min_iou) | ((dist <= params.max_centre_dist) & (ratio <= params.max_size_ratio))
    return np.where(ok, (1.0 - iou) + 0.5 * dist, _BLOCKED)


class FaceTracker:
    """Online tracker: call ``update`` for every keyframe in time order (with its shot id).

    Returns a track id per face; ids are unique over the tracker's life (one tracker per title).
    ``pop_finished`` hands over the ids of tracks that can no longer grow, so a caller can embed and
    drop their faces while the title is still being processed.
    """

    def __init__(self, params: TrackerParams | None = None, first_id: int = 0) -> None:
        self.params = params or TrackerParams()
        self._next_id = int(first_id)
        self._shot: int | None = None
        self._active: list[_Active] = []
        self._finished: list[int] = []

    def update(self, shot_id: int, boxes: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if features is not None:
            features = np.asarray(features, np.float64).reshape(len(boxes), -1)
        if shot_id != self._shot:
            self._end([a.track_id for a in self._active])
            self._active = []
            self._shot = shot_id
        ids = np.full(len(boxes), -1, np.int64)
        matched_tracks: set[int] = set()
        if self._active and len(boxes):
            cost = _geometry_cost(np.stack([a.box for a in self._active]), boxes, self.params)
            gate = self.params.max_appearance_dist
            if features is not None and gate is not None:
                for r, a in enumerate(self._active):
                    if a.feature is None:
                        continue
                    d = appearance_distance(a.feature, features)
                    cost[r] = np.where(d <= gate, cost[r] + d / gate, _BLOCKED)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] >= _BLOCKED:
                    continue
                a = self._active[r]
                ids[c] = a.track_id
                a.box, a.missed = boxes[c], 0
                if features is not None:
                    a.feature = features[c]
                matched_tracks.add(a.track_id)
        ended = []
        for a in self._active:
            if a.track_id not in matched_tracks:
                a.missed += 1
                if a.missed > self.params.max_missed:
                    ended.append(a.track_id)
        self._active = [a for a in self._active if a.track_id not in set(ended)]
        self._end(ended)
        for c in np.flatnonzero(ids < 0):
            ids[c] = self._next_id
            feature = features[c] if features is not None else None
            self._active.append(_Active(self._next_id, boxes[c], feature))
            self._next_id += 1
        return ids

    def _end(self, track_ids: Iterable[int]) -> None:
        self._finished.extend(track_ids)

    def pop_finished(self) -> list[int]:
        """Ids of tracks ended since the last call (their shot is over or they were lost)."""
        out, self._finished = self._finished, []
        return out

    def close(self) -> list[int]:
        """End every track (the title is over); returns all ids not yet handed over."""
        self._end([a.track_id for a in self._active])
        self._active = []
        return self.pop_finished()

    @property
    def next_id(self) -> int:
        return self._next_id


def track_faces(
    keyframes: Iterable[tuple[int, np.ndarray]], params: TrackerParams | None = None
) -> list[np.ndarray]:
    """Track ids for the boxes of each keyframe, given ``(shot_id, boxes)`` in time order."""
    tracker = FaceTracker(params)
    return [tracker.update(shot_id, boxes) for shot_id, boxes in keyframes]


def appearance_feature(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A cheap colour signature of a face and its surroundings (hair, collar): a hue-saturation
    histogram of the box widened by half its size. Only used to veto links between different people
    standing where the other one was; identity comes from the embedder."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    xa, ya = int(max(0, x1 - 0.25 * bw)), int(max(0, y1 - 0.25 * bh))
    xb, yb = int(min(w, x2 + 0.25 * bw)), int(min(h, y2 + 0.5 * bh))
    crop = image[ya:yb, xa:xb]
    if crop.size == 0:
        return np.full(64, 1 / 64, np.float32)
    if max(crop.shape[:2]) > 64:
        s = 64 / max(crop.shape[:2])
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * s)), max(1, int(crop.shape[0] * s))))
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 4], [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def appearance_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hellinger distance in [0, 1] between histogram ``a`` and each row of ``b``."""
    b = np.atleast_2d(b)
    bc = np.sqrt(np.clip(a, 0, None))[None] * np.sqrt(np.clip(b, 0, None))
    return np.sqrt(np.clip(1.0 - bc.sum(axis=1), 0.0, 1.0))
