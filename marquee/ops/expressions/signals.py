"""Measured expression signals of one face: eyes open, mouth open, blur, head pose, size, exposure.

Landmarks come from MediaPipe FaceMesh (478 points with irises; Apache-2.0; model inside the
mediapipe wheel), run on a crop around the detected face box so that small faces in big frames get
enough pixels. From them:
- **eye openness** per eye: the eye aspect ratio (EAR, Soukupová and Čech 2016): the two vertical
  lid distances over twice the corner-to-corner width. Open eyes sit near 0.25-0.35, a blink near
  0.05-0.15, and the ratio does not depend on the face's size.
- **mouth openness**: the inner-lip gap over the mouth width (speech and singing open it; a closed
  smile does not).
- **head pose**: yaw, pitch and roll in degrees from the plane of the eyes and mouth in FaceMesh's
  3D landmarks.
- **sharpness**: variance of the Laplacian of the face at a fixed 64-px size over its contrast (as in
  ``marquee.ops.faces.quality``): motion blur and defocus lower it.
- **size** (face box height in source pixels) and **exposure** (mean luma, share of clipped pixels).
- **expression** (optional, from ``marquee.ops.expressions.emotion``, fer's mini-Xception on the 64x64
  grey face): ``smile`` is P(happy), which sees a closed-lip smile that the landmarks cannot tell from
  a neutral mouth; ``negative`` (angry + disgust + fear + sad), ``surprise`` and ``neutral`` beside it.
  NaN when no classifier is given.

Everything is a plain number so that the expression model (a rule or a trained classifier) can use
it, and so that a table can store it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from marquee.ops.errors import ModelUnavailableError
from marquee.ops.expressions.emotion import EmotionClassifier, emotion_signals
from marquee.ops.faces.quality import crop_sharpness
from marquee.ops.quiet import native_stderr_filtered

# FaceMesh indices. "Left"/"right" are the image's (the subject's right eye is on the image left).
EYE_IMAGE_LEFT = (33, 160, 158, 133, 153, 144)  # p1 outer corner, p2, p3 upper lid, p4 inner corner, p5, p6
EYE_IMAGE_RIGHT = (263, 387, 385, 362, 380, 373)
MOUTH_INNER = (13, 14)  # upper and lower inner lip, centre
MOUTH_CORNERS = (78, 308)
POSE_EYES = (33, 263)  # outer eye corners, image left then right
POSE_MOUTH = (61, 291)  # mouth corners


@dataclass(frozen=True)
class FaceSignals:
    """What was measured on one face; ``landmarks_found`` False leaves the landmark signals NaN."""

    landmarks_found: bool
    eye_open_left: float  # EAR of the image-left eye
    eye_open_right: float
    mouth_open: float  # inner-lip gap / mouth width
    yaw: float  # degrees, + = the face turns to the image right
    pitch: float  # degrees, + = looks up
    roll: float  # degrees, + = head tilted clockwise in the image
    sharpness: float
    size: float  # face box height, source pixels
    brightness: float  # mean luma of the face box, 0-1
    clipped: float  # share of face pixels at <= 2% or >= 98% luma
    # From the expression CNN (NaN without one): probabilities in [0, 1].
    smile: float = math.nan  # P(happy)
    negative: float = math.nan  # P(angry) + P(disgust) + P(fear) + P(sad)
    surprise: float = math.nan
    neutral: float = math.nan

    @property
    def eye_open(self) -> float:
        """Eye openness of the face: see ``eye_openness``."""
        return eye_openness(self.eye_open_left, self.eye_open_right, self.yaw)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["eye_open"] = self.eye_open
        return d


def eye_openness(left: float, right: float, yaw: float, frontal_within: float = 10.0) -> float:
    """One eye-openness value from the EARs of the image-left and image-right eyes.

    A turned face foreshortens the far eye's width and inflates its EAR (0.6 at 45 degrees with the
    lids wide open or shut), so the near eye's EAR is used (yaw > 0: the face turns to the image
    right, its image-left eye is the near one); within ``frontal_within`` degrees, the mean. On the
    labelled crops (bench/expressions.py) this separated the real blinks best: AUC 1.0, against 0.90
    for the larger EAR.
    """
    if math.isnan(left) or math.isnan(right):
        return right if math.isnan(left) else left
    if math.isnan(yaw) or abs(yaw) < frontal_within:
        return (left + right) / 2
    return left if yaw > 0 else right


def eye_aspect_ratio(points: np.ndarray) -> float:
    """EAR of six eye points ``p1..p6`` (corner, upper, upper, corner, lower, lower)."""
    p1, p2, p3, p4, p5, p6 = points[:, :2]
    width = float(np.linalg.norm(p1 - p4))
    if width < 1e-6:
        return math.nan
    return float((np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2.0 * width))


def mouth_openness(marks: np.ndarray) -> float:
    gap = float(np.linalg.norm(marks[MOUTH_INNER[0], :2] - marks[MOUTH_INNER[1], :2]))
    width = float(np.linalg.norm(marks[MOUTH_CORNERS[0], :2] - marks[MOUTH_CORNERS[1], :2]))
    return gap / width if width > 1e-6 else math.nan


def head_pose(marks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from FaceMesh's 3D landmarks.

    The face plane is spanned by the eye-corner line and the eyes-to-mouth line; its normal gives yaw
    (+: the face turns towards the image right) and pitch (+: looks up); roll is the eye line's angle
    (+: clockwise in the image). A generic-model PnP fit was tried first and flipped between Euler
    branches on frontal faces; this needs no model and is stable.
    """
    across = marks[POSE_EYES[1]] - marks[POSE_EYES[0]]
    down = (marks[POSE_MOUTH[0]] + marks[POSE_MOUTH[1]]) / 2 - (marks[POSE_EYES[0]] + marks[POSE_EYES[1]]) / 2
    normal = np.cross(across, down)  # points into the screen for a face looking at the camera
    length = float(np.linalg.norm(normal))
    if length < 1e-9:
        return math.nan, math.nan, math.nan
    nx, ny, nz = normal / length
    yaw = math.degrees(math.atan2(-nx, nz))
    pitch = math.degrees(math.atan2(ny, nz))
    roll = math.degrees(math.atan2(across[1], across[0]))
    return yaw, pitch, roll


def exposure_stats(image: np.ndarray, box: np.ndarray) -> tuple[float, float]:
    """(mean luma 0-1, share of clipped pixels) of the face box."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    region = image[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)]
    if region.size == 0:
        return math.nan, math.nan
    grey = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    return float(grey.mean()), float(((grey <= 0.02) | (grey >= 0.98)).mean())


class FaceMeshLandmarker:
    """MediaPipe FaceMesh on a crop around each face box; ~5 ms per face.

    The crop (the box plus ``margin`` on every side, scaled so the face is ``face_px`` tall) gives
    FaceMesh's own detector one big face to find; its landmarks are mapped back to source pixels. If
    the crop holds several faces, the one nearest the box centre is kept.
    """

    name = "facemesh"
    version = "0.10.21"

    def __init__(self, *, margin: float = 0.6, face_px: int = 192, min_confidence: float = 0.3) -> None:
        try:
            with native_stderr_filtered():
                from mediapipe.python.solutions import face_mesh
        except ImportError as exc:
            raise ModelUnavailableError(
                "MediaPipe FaceMesh is not installed: run scripts/setup.sh (it installs "
                "requirements/mediapipe-no-deps.txt)"
            ) from exc
        self.margin, self.face_px = float(margin), int(face_px)
        with native_stderr_filtered():
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=3,
                refine_landmarks=True,
                min_detection_confidence=float(min_confidence),
            )
            # The graph loads its models on threads of its own and prints as it does: wait for that
            # inside the filter (a blank frame), and filter the first real inference's warnings too.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._warmed = False

    def config(self) -> dict[str, Any]:
        return {"margin": self.margin, "face_px": self.face_px}

    def close(self) -> None:
        self._mesh.close()

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """(478, 3) landmarks in source pixels (z in the same scale, relative), or None."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        bw, bh = x2 - x1, y2 - y1
        if bw < 4 or bh < 4:
            return None
        cx1, cy1 = max(0, int(x1 - self.margin * bw)), max(0, int(y1 - self.margin * bh))
        cx2 = min(w, math.ceil(x2 + self.margin * bw))
        cy2 = min(h, math.ceil(y2 + self.margin * bh))
        crop = image[cy1:cy2, cx1:cx2]
        scale = self.face_px / bh
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(
            np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        )
        if self._warmed:
            result = self._mesh.process(crop)
        else:
            with native_stderr_filtered():
                result = self._mesh.process(crop)
            self._warmed = True
        if not result.multi_face_landmarks:
            return None
        centre = np.array([(x1 + x2) / 2 - cx1, (y1 + y2) / 2 - cy1]) * scale
        best, best_d = None, math.inf
        for face in result.multi_face_landmarks:
            pts = np.array([(p.x * size[0], p.y * size[1], p.z * size[0]) for p in face.landmark], np.float64)
            d = float(np.linalg.norm(pts[:, :2].mean(0) - centre))
            if d < best_d:
                best, best_d = pts, d
        if best is None or best_d > 0.5 * self.face_px:
            return None
        best[:, :2] = best[:, :2] / scale + np.array([cx1, cy1])
        best[:, 2] /= scale
        return best


def measure_face(
    image: np.ndarray,
    box: np.ndarray,
    landmarker: FaceMeshLandmarker,
    emotions: EmotionClassifier | None = None,
) -> FaceSignals:
    """All signals of the face in ``box`` (source pixels) of the RGB ``image``."""
    return measure_faces(image, [box], landmarker, emotions)[0]


def measure_faces(
    image: np.ndarray,
    boxes: Sequence[np.ndarray],
    landmarker: FaceMeshLandmarker,
    emotions: EmotionClassifier | None = None,
) -> list[FaceSignals]:
    """Signals of every face in ``boxes`` of one RGB ``image``; the expression CNN (when given) sees
    all of them in one batch, FaceMesh one face at a time (it runs on a crop around each box)."""
    expression = (
        emotion_signals(emotions.predict_faces(image, boxes)) if emotions is not None else [{}] * len(boxes)
    )
    return [
        _measure(image, np.asarray(box, np.float64), landmarker, extra)
        for box, extra in zip(boxes, expression, strict=True)
    ]


def _measure(
    image: np.ndarray, box: np.ndarray, landmarker: FaceMeshLandmarker, extra: dict[str, float]
) -> FaceSignals:
    brightness, clipped = exposure_stats(image, box)
    common = {
        "sharpness": float(crop_sharpness(image, box)),
        "size": float(box[3] - box[1]),
        "brightness": brightness,
        "clipped": clipped,
        **extra,
    }
    marks = landmarker.landmarks(image, box)
    if marks is None:
        nan = math.nan
        return FaceSignals(False, nan, nan, nan, nan, nan, nan, **common)
    yaw, pitch, roll = head_pose(marks)
    return FaceSignals(
        True,
        eye_aspect_ratio(marks[list(EYE_IMAGE_LEFT)]),
        eye_aspect_ratio(marks[list(EYE_IMAGE_RIGHT)]),
        mouth_openness(marks),
        yaw,
        pitch,
        roll,
        **common,
    )
