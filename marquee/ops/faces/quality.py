"""How good a detected face is for identification and for showing: sharpness, frontality, size.

Embedding every face of a long track costs time and adds little: a few sharp, frontal, large
faces describe a person better than many blurred profiles. These scores choose them, and choose the
face shown for a character. Also here: the crops that carry a face from detection to embedding, so
the keyframe is never needed again.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Faces whose shorter box side is below this (source pixels) are not embedded: dlib's descriptor of
#: a 20-px face mostly encodes blur, and would glue unrelated people together.
MIN_EMBED_SIZE = 28.0


@dataclass(frozen=True)
class FaceQuality:
    """Per-face quality terms in [0, 1] (``sharpness`` is unbounded; ``score`` is the product used)."""

    sharpness: float
    frontality: float
    size: float  # shorter box side, source pixels
    score: float
    brightness: float = 0.5  # mean grey of the face box in [0, 1]


def frontality(landmarks: np.ndarray) -> float:
    """1 for a frontal face, towards 0 for a profile or a strongly tilted head, from five points.

    Yaw: where the nose projects on the eye line (half-way for a frontal face). Pitch: where the nose
    sits between the eye line and the mouth (a bit above half-way when level).
    """
    pts = np.asarray(landmarks, np.float64).reshape(5, 2)
    e1, e2, nose, m1, m2 = pts
    eye_vec = e2 - e1
    eye_len2 = float(eye_vec @ eye_vec)
    if eye_len2 < 1e-6:
        return 0.0
    t = float((nose - e1) @ eye_vec) / eye_len2
    yaw = float(np.clip(1.0 - 2.0 * abs(t - 0.5), 0.0, 1.0))
    eye_mid, mouth_mid = (e1 + e2) / 2, (m1 + m2) / 2
    span = float(np.linalg.norm(mouth_mid - eye_mid))
    if span < 1e-6:
        return 0.0
    r = float(np.linalg.norm(nose - eye_mid)) / span
    pitch = float(np.clip(1.0 - abs(r - 0.55) / 0.45, 0.0, 1.0))
    return yaw * (0.5 + 0.5 * pitch)


def crop_sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """Laplacian variance of the face region at a fixed 64-px size, over its contrast.

    A fixed size makes big and small faces comparable; dividing by the grey variance (plus a floor)
    keeps a high-contrast face from looking sharp just for its contrast.
    """
    return _crop_stats(image, box)[0]


def _crop_stats(image: np.ndarray, box: np.ndarray) -> tuple[float, float]:
    """(sharpness, mean grey in [0, 1]) of the face box."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return 0.0, 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
    _, lap_std = cv2.meanStdDev(lap)
    g_mean, g_std = cv2.meanStdDev(grey)
    return float(lap_std[0, 0] ** 2 / (g_std[0, 0] ** 2 + 100.0)), float(g_mean[0, 0] / 255.0)


def exposure(brightness: float) -> float:
    """1 for a well-exposed face, down to 0.2 for a face in near darkness or blown out."""
    return float(np.clip(min(brightness / 0.3, (1.0 - brightness) / 0.1, 1.0), 0.2, 1.0))


def face_quality(
    image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, det_score: float = 1.0
) -> FaceQuality:
    """Quality of one face: confidence x frontality x sharpness x size x exposure terms."""
    side = float(min(box[2] - box[0], box[3] - box[1]))
    sharp, bright = _crop_stats(image, box)
    front = frontality(landmarks)
    score = (
        float(det_score)
        * exposure(bright)
        * (0.2 + 0.8 * front)
        * (sharp / (sharp + 0.5))
        * min(1.0, max(side, 0.0) / 80.0)
        * (1.0 if side >= MIN_EMBED_SIZE else 0.1)
    )
    return FaceQuality(sharpness=sharp, frontality=front, size=side, score=float(score), brightness=bright)


@dataclass
class FaceCrop:
    """A face cut out with context, shrunk so the face is at most ``max_face_px`` wide; ``box`` and
    ``landmarks`` are in the crop's pixels. Enough for alignment and embedding later."""

    image: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray


def face_crop(
    image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, *, margin: float = 0.6, max_face_px: int = 200
) -> FaceCrop:
    """Cut ``box`` plus ``margin`` x its size on every side (alignment rotates and pads the face)."""
    h, w = image.shape[:2]
    box = np.asarray(box, np.float32)
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    x1 = int(max(0, np.floor(box[0] - margin * bw)))
    y1 = int(max(0, np.floor(box[1] - margin * bh)))
    x2 = int(min(w, np.ceil(box[2] + margin * bw)))
    y2 = int(min(h, np.ceil(box[3] + margin * bh)))
    crop = image[y1:y2, x1:x2]
    offset = np.asarray([x1, y1], np.float32)
    cbox = box - np.concatenate([offset, offset])
    clm = np.asarray(landmarks, np.float32).reshape(5, 2) - offset
    scale = min(1.0, max_face_px / max(bw, bh, 1.0))
    if scale < 1.0 and crop.size:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        sx, sy = size[0] / (x2 - x1), size[1] / (y2 - y1)
        cbox = cbox * np.asarray([sx, sy, sx, sy], np.float32)
        clm = clm * np.asarray([sx, sy], np.float32)
    return FaceCrop(np.ascontiguousarray(crop), cbox, clm)


def face_thumbnail(image: np.ndarray, box: np.ndarray, size: int = 112, margin: float = 0.25) -> np.ndarray:
    """A square RGB thumbnail around the face (for reports and the character graph)."""
    h, w = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * (0.5 + margin)
    x1, y1 = round(float(cx - half)), round(float(cy - half))
    x2, y2 = round(float(cx + half)), round(float(cy + half))
    pad = max(0, -x1, -y1, x2 - w, y2 - h)
    src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
    crop = src[y1 + pad : y2 + pad, x1 + pad : x2 + pad]
    if crop.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_AREA)
