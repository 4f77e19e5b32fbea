"""The shot-detector interface, in the spirit of PySceneDetect's ``SceneDetector``.

A detector is fed every decoded frame of a video once, in order, as a small RGB image of the size it
asks for (``frame_size``), and returns its transitions when the stream ends. Detectors keep only
bounded state (ring buffers, running statistics), so a two-hour film never needs its frames in RAM,
and the same decode pass can serve other consumers (keyframe sampling) at the same time. Transitions
and shots themselves are the shared timeline types of ``marquee.ops.timeline``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from marquee.ops.timeline import Transition


class ShotDetector(ABC):
    """Online shot-boundary detector: ``process`` every frame in order, then ``finish``."""

    #: Stable identifier used in configuration and in the asset's code version.
    name: ClassVar[str]
    #: Bump when the algorithm changes in a way that changes results.
    version: ClassVar[str]
    #: (width, height) of the RGB frames this detector wants.
    frame_size: tuple[int, int] = (48, 27)

    @abstractmethod
    def process(self, index: int, frame: np.ndarray) -> None:
        """Consume frame ``index`` (HxWx3 uint8 RGB at ``frame_size``); indices arrive in order."""

    @abstractmethod
    def finish(self) -> list[Transition]:
        """Flush buffered frames and return all transitions, sorted by start frame."""

    def config(self) -> dict[str, Any]:
        """Parameters that change results; part of the version identity."""
        return {}

    @property
    def identity(self) -> str:
        """``name@version+confighash``: what a shots table was made with."""
        blob = json.dumps(self.config(), sort_keys=True, default=str).encode()
        return f"{self.name}@{self.version}+{hashlib.sha256(blob).hexdigest()[:8]}"
