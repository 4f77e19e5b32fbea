"""dlib's face-descriptor ResNet, read from its own ``.dat`` file and run by torch, batched.

dlib's network (``dlib_face_recognition_resnet_model_v1.dat``, public domain, shipped offline in
``face_recognition_models``) is the only identity model that installs here. dlib runs it with its own
single-threaded CPU convolutions, about 80-180 ms a face on this machine, which made descriptors a
quarter of a two-hour film's run. The same weights in torch run batched on every core (or a GPU) at a
few milliseconds a face, and give the same descriptors to float rounding (``tests/test_dlib_resnet.py``
compares them with dlib's on real faces).

The file is dlib's ``serialize`` of the network object: layers from the input up, each as its name,
a float32 parameter tensor and its hyper-parameters (strides and paddings included), so the torch
network is built from what the file says rather than from a copy of the architecture. dlib's integers
and floats use its compact encoding: a byte whose low nibble counts the little-endian bytes that follow
(bit 7 = negative); a float is such a mantissa times two to such an exponent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The aligned chip size dlib's face network takes (``dlib.get_face_chip(..., size=150)``).
CHIP_SIZE = 150


class DlibFormatError(ValueError):
    """The file is not a dlib network of the layers this reader knows."""


@dataclass
class Layer:
    """One layer's details as stored: ``kind`` is dlib's serialised name without its version."""

    kind: str
    params: np.ndarray | None = None
    ints: dict[str, int] = field(default_factory=dict)


@dataclass
class DlibNet:
    """The input normalisation and the layers of a dlib network, input first."""

    means: tuple[float, float, float]
    size: tuple[int, int]
    layers: list[Layer]


class _Reader:
    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, why: str) -> DlibFormatError:
        return DlibFormatError(f"{self.path}: not a dlib network this reader knows ({why}, byte {self.pos})")

    def int(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("ends early")
        head = self.data[self.pos]
        n = head & 0x0F
        if n > 8:
            raise self.fail(f"bad integer header {head:#x}")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(mantissa) * 2.0**exponent

    def string(self) -> str:
        n = self.int()
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("expected a layer name") from None

    def bools(self, n: int) -> None:
        chunk = self.data[self.pos : self.pos + n]
        if len(chunk) != n or any(c not in b"01" for c in chunk):
            raise self.fail("expected layer flags")
        self.pos += n

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise self.fail("unknown tensor version")
        dims = [self.int() for _ in range(4)]
        count = int(np.prod(dims))
        end = self.pos + 4 * count
        if end > len(self.data):
            raise self.fail("tensor runs past the end")
        values = np.frombuffer(self.data, "<f4", count, self.pos).reshape(dims)
        self.pos = end
        return values

    def alias(self) -> list[int]:
        if self.int() != 1:
            raise self.fail("unknown alias-tensor version")
        return [self.int() for _ in range(4)]


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib ``loss_metric`` network of conv, affine, relu, max/avg pool, add_prev and fc layers.

    The nesting (one version number per layer, outermost first) comes before the layers' details; the
    details follow from the input up, each followed by three flags and three (empty) cached tensors.
    Tag and skip layers store nothing of their own: the residual wiring is inferred from the sequence
    (an ``add_prev`` closes the block opened after the previous ``relu``, an ``avg_pool`` just before it
    is the block's down-sampled shortcut).
    """
    p = Path(path)
    r = _Reader(p.read_bytes(), str(p))
    if r.int() != 1 or r.string() != "loss_metric_2":
        raise r.fail("expected a loss_metric network")
    r.float(), r.float()  # margin and distance threshold: training settings
    while True:  # the nesting: add_layer (2), tag/skip (1), down to the input layer (3)
        version = r.int()
        if version == 3:
            break
        if version not in (1, 2):
            raise r.fail(f"unknown layer version {version}")
    if r.string() != "input_rgb_image_sized":
        raise r.fail("expected input_rgb_image_sized")
    means = (r.float(), r.float(), r.float())
    size = (r.int(), r.int())
    layers: list[Layer] = []
    while r.pos < len(r.data):
        name = r.string()
        if name == "con_4":
            params = r.tensor()
            keys = ("filters", "nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
            ints = {k: r.int() for k in keys}
            ints["in"] = r.alias()[1]
            r.alias()
            for _ in range(4):
                r.float()
            layer = Layer("con", params.ravel(), ints)
        elif name == "affine_":
            params = r.tensor()
            r.alias(), r.alias()
            layer = Layer("affine", params.ravel(), {"mode": r.int()})
        elif name in ("max_pool_2", "avg_pool_2"):
            keys = ("nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
            layer = Layer(name[:-2], None, {k: r.int() for k in keys})
        elif name in ("relu_", "add_prev_"):
            layer = Layer(name[:-1])
        elif name == "fc_2":
            outputs, inputs = r.int(), r.int()
            params = r.tensor()
            layers.append(Layer("fc", params.reshape(-1)[: inputs * outputs], {"in": inputs, "out": outputs}))
            return DlibNet(means, size, layers)  # the top layer; what follows is training state
        else:
            raise r.fail(f"unknown layer {name!r}")
        r.bools(3)
        for _ in range(3):
            r.tensor()
        if not layers:
            r.int()  # the layer over the input also stores its sample expansion factor
        layers.append(layer)
    raise r.fail("no fc layer at the top")


def build_torch_net(net: DlibNet) -> Any:
    """A torch module computing the same descriptors as dlib for (N, 3, 150, 150) float RGB in 0-255."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def conv(layer: Layer, then: Layer) -> nn.Conv2d:
        """A convolution with the affine layer after it folded in (``gamma * (w * x + b) + beta``):
        dlib's inference-time batch norm costs nothing this way."""
        i = layer.ints
        kernel, stride, padding = (i["nr"], i["nc"]), (i["stride_y"], i["stride_x"]), (i["pad_y"], i["pad_x"])
        c = nn.Conv2d(i["in"], i["filters"], kernel, stride, padding)
        k = i["filters"]
        n_w = k * i["in"] * i["nr"] * i["nc"]
        if layer.params is None or then.params is None or then.kind != "affine" or then.ints["mode"] != 0:
            raise DlibFormatError("expected a convolution followed by a per-channel affine layer")
        gamma = then.params[:k].astype(np.float64)
        beta = then.params[k : 2 * k].astype(np.float64)
        weight = layer.params[:n_w].reshape(c.weight.shape).astype(np.float64) * gamma[:, None, None, None]
        bias = layer.params[n_w : n_w + k].astype(np.float64) * gamma + beta
        c.weight.data = torch.from_numpy(weight.astype(np.float32))
        c.bias.data = torch.from_numpy(bias.astype(np.float32))
        return c

    def pool(layer: Layer) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """A pooling layer's kernel, stride and padding."""
        i = layer.ints
        return (i["nr"], i["nc"]), (i["stride_y"], i["stride_x"]), (i["pad_y"], i["pad_x"])

    class Block(nn.Module):
        """conv, affine, relu, conv, affine, plus the input (average-pooled when the block strides),
        zero-padded to the larger shape as dlib's ``add_prev`` does, then relu."""

        def __init__(self, layers: list[Layer]) -> None:
            super().__init__()
            kinds = [x.kind for x in layers]
            if kinds[:5] != ["con", "affine", "relu", "con", "affine"] or kinds[-1] != "add_prev":
                raise DlibFormatError(f"unexpected residual block {kinds}")
            self.body = nn.Sequential(conv(layers[0], layers[1]), nn.ReLU(), conv(layers[3], layers[4]))
            self.shortcut = pool(layers[5]) if kinds[5] == "avg_pool" else None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.body(x)
            if self.shortcut is not None:
                k, s, p = self.shortcut
                x = F.avg_pool2d(x, k, s, p, count_include_pad=False)
            c, h, w = max(x.shape[1], y.shape[1]), max(x.shape[2], y.shape[2]), max(x.shape[3], y.shape[3])
            x = F.pad(x, (0, w - x.shape[3], 0, h - x.shape[2], 0, c - x.shape[1]))
            y = F.pad(y, (0, w - y.shape[3], 0, h - y.shape[2], 0, c - y.shape[1]))
            return F.relu(x + y)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers = list(net.layers)
            kinds = [x.kind for x in layers[:4]]
            if kinds != ["con", "affine", "relu", "max_pool"]:
                raise DlibFormatError(f"unexpected stem {kinds}")
            k, s, p = pool(layers[3])
            self.stem = nn.Sequential(conv(layers[0], layers[1]), nn.ReLU(), nn.MaxPool2d(k, s, p))
            blocks, current = [], []
            rest = layers[4:]
            for layer in rest[:-2]:
                current.append(layer)
                if layer.kind == "relu" and current[-2:-1] and current[-2].kind == "add_prev":
                    blocks.append(Block(current[:-1]))
                    current = []
            if current or [x.kind for x in rest[-2:]] != ["avg_pool", "fc"]:
                raise DlibFormatError("unexpected top: expected residual blocks, a global average pool, fc")
            if rest[-2].ints["nr"] != 0:
                raise DlibFormatError("expected avg_pool_everything before fc")
            self.blocks = nn.Sequential(*blocks)
            fc = rest[-1]
            assert fc.params is not None
            self.fc = nn.Linear(fc.ints["in"], fc.ints["out"], bias=False)
            self.fc.weight.data = torch.from_numpy(fc.params.reshape(fc.ints["in"], fc.ints["out"]).T.copy())
            self.register_buffer("mean", torch.tensor(net.means, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, rgb: torch.Tensor) -> torch.Tensor:
            x = (rgb - self.mean) / 256.0
            x = self.blocks(self.stem(x))
            return self.fc(x.mean(dim=(2, 3)))

    return Net().eval()


class DlibResnetTorch:
    """dlib's ResNet descriptor in torch: ``describe(chips)`` for aligned 150x150 RGB uint8 chips."""

    def __init__(self, path: str | Path, *, device: str = "cpu", batch_size: int = 32) -> None:
        import torch

        self._torch = torch
        self.device = device
        self.batch_size = max(1, int(batch_size))
        net = read_dlib_net(path)
        if net.size != (CHIP_SIZE, CHIP_SIZE):
            raise DlibFormatError(f"{path}: expects {net.size} chips, not {CHIP_SIZE}x{CHIP_SIZE}")
        self._net = build_torch_net(net).to(device)

    def describe(self, chips: list[np.ndarray]) -> np.ndarray:
        """(N, 128) float32 descriptors of ``chips`` (150x150x3 uint8 RGB), in batches."""
        torch = self._torch
        out = []
        for start in range(0, len(chips), self.batch_size):
            batch = np.stack(chips[start : start + self.batch_size]).astype(np.float32)
            with torch.inference_mode():
                x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)
                out.append(self._net(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 128), np.float32)
