"""Face embedders (identity descriptors) and the choice of which faces to embed.

dlib's ResNet (public domain, shipped in ``face_recognition_models``) is the only identity model that
installs offline here. dlib's own runtime takes 80-180 ms a face on this CPU, single-threaded, so its
weights run in torch (``dlib_resnet``: the same descriptors, batched, a few ms a face, and on a GPU
with ``MARQUEE_DEVICE``); dlib still aligns the faces. We embed a few good faces per track
(``select_faces_to_embed``), never every detection. FaceNet (InceptionResnetV1) is supported when a
user puts its weights in the model store; facenet-pytorch would otherwise download them at runtime,
which we never do.

Embedders work in two steps so that callers can batch across keyframes without holding keyframes:
``prepare`` turns faces (each with its picture) into small model inputs, ``describe`` runs the model
on a batch of them; ``embed`` is both at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import cv2
import numpy as np

from marquee.ops.devices import batch_size_for, resolve_device
from marquee.ops.errors import ModelUnavailableError, UnknownChoiceError
from marquee.ops.faces.dlib_resnet import DlibResnetTorch
from marquee.ops.faces.quality import MIN_EMBED_SIZE, FaceCrop, FaceQuality
from marquee.ops.faces.types import spec_identity

DEFAULT_FACE_EMBEDDER = "dlib"


@runtime_checkable
class FaceEmbedder(Protocol):
    """Maps face crops to identity vectors; distances below ``threshold`` mean 'same person'."""

    name: str
    version: str
    dim: int
    #: A conventional same-person distance (euclidean) between two faces for this model.
    threshold: float
    #: The clustering threshold between track means (average linkage).
    track_threshold: float
    #: Whether descriptors are unit vectors (track means are then re-normalised).
    normalised: bool

    #: How many prepared faces ``describe`` takes at once to use the device well.
    batch_size: int

    def prepare(self, faces: Sequence[FaceCrop]) -> list[np.ndarray]: ...

    def describe(self, prepared: Sequence[np.ndarray]) -> np.ndarray: ...

    def embed(self, faces: Sequence[FaceCrop]) -> np.ndarray: ...

    def config(self) -> dict[str, Any]: ...


def embedder_identity(embedder: FaceEmbedder) -> str:
    """``name@version+confighash``: what a face_embeddings table was made with."""
    blob = json.dumps(embedder.config(), sort_keys=True, default=str).encode()
    return f"{embedder.name}@{embedder.version}+{hashlib.sha256(blob).hexdigest()[:8]}"


def _face_recognition_models_dir() -> Path | None:
    """The ``models`` folder of face_recognition_models, found without importing the package (its
    ``__init__`` imports ``pkg_resources``, deprecated and removed from setuptools 81)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class DlibEmbedder:
    """dlib's 128-D face descriptor: 5-point alignment, then the ResNet-29 metric network.

    The 5-point shape predictor was trained on boxes from dlib's own detectors, whose top edge sits
    lower than MTCNN's (brows rather than forehead); ``box_top_shift`` moves the top edge down by that
    share of the box height, which measurably tightens same-person distances.

    ``runtime="torch"`` (default) runs the ResNet's weights in torch on ``device`` (``MARQUEE_DEVICE``);
    ``runtime="dlib"`` runs dlib's own implementation (single-threaded CPU), kept to check against.
    Both give the same descriptors to float rounding, so the runtime, like the device, is not part of
    the embedder's identity and switching it does not make stored descriptors stale.
    """

    name: ClassVar[str] = "dlib_resnet"
    version: ClassVar[str] = "1"
    dim: int = 128
    threshold: float = 0.6
    #: Average-linkage threshold between track means (tuned on generated videos, see cluster.py).
    track_threshold: float = 0.6
    normalised: bool = False

    SHAPE_FILE: ClassVar[str] = "shape_predictor_5_face_landmarks.dat"
    RESNET_FILE: ClassVar[str] = "dlib_face_recognition_resnet_model_v1.dat"

    def __init__(
        self,
        *,
        model_dir: str | Path | None = None,
        num_jitters: int = 0,
        box_top_shift: float = 0.15,
        runtime: str = "torch",
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ModelUnavailableError("dlib is not installed; install dlib-bin") from exc
        folder = Path(model_dir) if model_dir is not None else _face_recognition_models_dir()
        if folder is None:
            raise ModelUnavailableError(
                "dlib face models not found: install face_recognition_models==0.3.0, or pass model_dir= a "
                f"folder (e.g. in the model store) holding {self.SHAPE_FILE} and {self.RESNET_FILE}"
            )
        paths = [folder / self.SHAPE_FILE, folder / self.RESNET_FILE]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ModelUnavailableError(
                f"dlib face model file(s) missing: {', '.join(missing)}. Install "
                f"face_recognition_models==0.3.0 or copy {self.SHAPE_FILE} and {self.RESNET_FILE} "
                f"into {folder}"
            )
        if runtime not in ("torch", "dlib"):
            raise UnknownChoiceError(f"unknown dlib descriptor runtime {runtime!r}; choose torch or dlib")
        if runtime == "torch" and num_jitters:
            raise UnknownChoiceError("num_jitters needs runtime='dlib' (the torch runtime does not jitter)")
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(paths[0]))
        self.runtime = runtime
        self.device = resolve_device(device) if runtime == "torch" else "cpu"
        self.batch_size = max(1, int(batch_size or batch_size_for(self.device, cpu=32, gpu=256)))
        if runtime == "torch":
            self._net: Any = DlibResnetTorch(paths[1], device=self.device, batch_size=self.batch_size)
        else:
            self._net = dlib.face_recognition_model_v1(str(paths[1]))
        self.num_jitters = int(num_jitters)
        self.box_top_shift = float(box_top_shift)

    def config(self) -> dict[str, Any]:
        return {"num_jitters": self.num_jitters, "box_top_shift": self.box_top_shift}

    def prepare(self, faces: Sequence[FaceCrop]) -> list[np.ndarray]:
        """Aligned 150x150 RGB chips (dlib's own alignment), one per face."""
        out = []
        for face in faces:
            x1, y1, x2, y2 = (float(v) for v in face.box)
            y1 += self.box_top_shift * (y2 - y1)
            rect = self._dlib.rectangle(round(x1), round(y1), round(x2), round(y2))
            image = np.ascontiguousarray(face.image, dtype=np.uint8)
            shape = self._shape(image, rect)
            out.append(self._dlib.get_face_chip(image, shape, size=150, padding=0.25))
        return out

    def describe(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 128) float32 descriptors of aligned chips; euclidean distance < 0.6 is dlib's
        same-person rule."""
        if not prepared:
            return np.zeros((0, self.dim), np.float32)
        if self.runtime == "torch":
            return self._net.describe(list(prepared))
        vectors = self._net.compute_face_descriptor(list(prepared), self.num_jitters)
        return np.asarray([np.asarray(v) for v in vectors], np.float32).reshape(len(prepared), self.dim)

    def embed(self, faces: Sequence[FaceCrop]) -> np.ndarray:
        """(N, 128) float32 descriptors of faces."""
        return self.describe(self.prepare(faces))


class FacenetEmbedder:
    """FaceNet (InceptionResnetV1, VGGFace2) from facenet-pytorch, with weights from the model store.

    The weights are not shipped in any installable package; facenet-pytorch would download them at
    runtime, which Marquee never does. Put ``20180402-114759-vggface2.pt`` (facenet-pytorch release
    v2.2.9) at ``<model_store>/facenet/``. Descriptors are L2-normalised, compared by euclidean distance.
    """

    name: ClassVar[str] = "facenet_vggface2"
    version: ClassVar[str] = "1"
    dim: int = 512
    threshold: float = 1.0
    #: Not tuned here (no weights available offline); facenet's usual same-person range on unit vectors.
    track_threshold: float = 0.9
    normalised: bool = True
    WEIGHTS_FILE: ClassVar[str] = "20180402-114759-vggface2.pt"

    def __init__(self, model_store: str | Path, *, margin: float = 0.1, batch_size: int = 16) -> None:
        path = self.weights_path(model_store)
        if not path.is_file():
            raise ModelUnavailableError(
                f"FaceNet weights not found at {path}: download {self.WEIGHTS_FILE} (facenet-pytorch "
                f"release v2.2.9) elsewhere and place it there, or use the 'dlib' embedder"
            )
        import torch
        from facenet_pytorch import InceptionResnetV1

        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        net = InceptionResnetV1(pretrained=None, classify=False)
        missing, _ = net.load_state_dict(state, strict=False)
        if missing:
            raise ModelUnavailableError(
                f"{path}: not an InceptionResnetV1 checkpoint (missing {missing[:3]}...)"
            )
        self._torch = torch
        self._net = net.eval()
        self.margin = float(margin)
        self.batch_size = int(batch_size)

    @classmethod
    def weights_path(cls, model_store: str | Path) -> Path:
        return Path(model_store) / "facenet" / cls.WEIGHTS_FILE

    def config(self) -> dict[str, Any]:
        return {"margin": self.margin}

    def _prepare(self, face: FaceCrop) -> np.ndarray:
        x1, y1, x2, y2 = (float(v) for v in face.box)
        mx, my = self.margin * (x2 - x1), self.margin * (y2 - y1)
        h, w = face.image.shape[:2]
        xa, ya = int(max(0, x1 - mx)), int(max(0, y1 - my))
        xb, yb = int(min(w, x2 + mx)), int(min(h, y2 + my))
        crop = face.image[ya:yb, xa:xb]
        if crop.size == 0:
            crop = np.zeros((160, 160, 3), np.uint8)
        crop = cv2.resize(np.ascontiguousarray(crop), (160, 160), interpolation=cv2.INTER_AREA)
        return (crop.astype(np.float32) - 127.5) / 128.0

    def prepare(self, faces: Sequence[FaceCrop]) -> list[np.ndarray]:
        return [self._prepare(f) for f in faces]

    def embed(self, faces: Sequence[FaceCrop]) -> np.ndarray:
        return self.describe(self.prepare(faces))

    def describe(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        if not prepared:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(prepared), self.batch_size):
            batch = np.stack(prepared[start : start + self.batch_size])
            with self._torch.inference_mode():
                x = self._torch.from_numpy(batch).permute(0, 3, 1, 2)
                out.append(self._net(x).numpy())
        v = np.concatenate(out).astype(np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


EMBEDDERS: dict[str, Callable[..., FaceEmbedder]] = {
    "dlib": DlibEmbedder,
    "facenet": FacenetEmbedder,
}


def embedder_spec(name: str = DEFAULT_FACE_EMBEDDER, **params: Any) -> str:
    """``name@version`` plus a hash of the non-default parameters, without loading the model (see
    ``detector_spec``)."""
    return spec_identity(embedder_class(name), params)


def embedder_class(name: str = DEFAULT_FACE_EMBEDDER) -> Any:
    """The embedder class for ``name`` (its ``track_threshold`` and ``normalised`` drive clustering)."""
    try:
        return EMBEDDERS[name]
    except KeyError:
        raise UnknownChoiceError(
            f"unknown face embedder {name!r}; choose one of {', '.join(EMBEDDERS)}"
        ) from None


def make_face_embedder(name: str = DEFAULT_FACE_EMBEDDER, **params: Any) -> FaceEmbedder:
    """A face embedder by name (``facenet`` needs ``model_store=``); ValueError for an unknown name."""
    try:
        factory = EMBEDDERS[name]
    except KeyError:
        raise UnknownChoiceError(
            f"unknown face embedder {name!r}; choose one of {', '.join(EMBEDDERS)}"
        ) from None
    return factory(**params)


#: Why a face was or was not embedded (stored per face, so an asset can say "embedded X of Y").
EMBED_CHOSEN = "chosen"
EMBED_NOT_CHOSEN = "not_chosen"
EMBED_TOO_SMALL = "too_small"


@dataclass(frozen=True)
class EmbedChoice:
    """Indices (into the track's faces) chosen for embedding, best first, and a reason per face."""

    chosen: list[int]
    reasons: list[str]


def select_faces_to_embed(
    track_faces: Sequence[FaceQuality], k: int = 2, *, min_size: float = MIN_EMBED_SIZE
) -> EmbedChoice:
    """The ``k`` best faces of one track by quality (sharp x frontal x large x confident).

    Faces smaller than ``min_size`` are never chosen: their descriptors are unreliable, and a track of
    only tiny faces stays unidentified rather than being merged with whoever is nearest.
    """
    reasons = [EMBED_TOO_SMALL if q.size < min_size else EMBED_NOT_CHOSEN for q in track_faces]
    eligible = [i for i, r in enumerate(reasons) if r != EMBED_TOO_SMALL]
    chosen = sorted(eligible, key=lambda i: (-track_faces[i].score, i))[: max(0, int(k))]
    for i in chosen:
        reasons[i] = EMBED_CHOSEN
    return EmbedChoice(chosen, reasons)
