"""The shot-detector interface, in the spirit of PySceneDetect's ``SceneDetector``.

A detector is fed every decoded frame of a video once, in order, as a small RGB image of the size it
asks for (``frame_size``), and returns its transitions when the stream ends. Detectors keep only
bounded state (ring buffers, running statistics), so a two-hour film never needs its frames in RAM,
and the same decode pass can serve other consumers (keyframe sampling) at the same time.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np

TransitionKind = Literal["cut", "dissolve", "fade"]
TRANSITION_KINDS: tuple[str, ...] = ("cut", "dissolve", "fade")


@dataclass(frozen=True, order=True)
class Transition:
    """A shot change over the inclusive frame span ``[start_frame, end_frame]``.

    For a hard cut ``start_frame == end_frame`` is the first frame of the new shot. For a gradual
    transition (dissolve, fade) the span covers the frames that are mixed or dark; the new shot is
    taken to begin after the span (or at its middle for dissolves, see ``shots_from_transitions``).
    """

    start_frame: int
    end_frame: int
    kind: str = "cut"
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if self.end_frame < self.start_frame:
            raise ValueError(f"transition ends before it starts: {self}")
        if self.kind not in TRANSITION_KINDS:
            raise ValueError(f"unknown transition kind {self.kind!r}; expected one of {TRANSITION_KINDS}")

    @property
    def span(self) -> tuple[int, int]:
        return (self.start_frame, self.end_frame)


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


@dataclass(frozen=True)
class Shot:
    """A shot as stored in the ``shots`` table (frame indices inclusive)."""

    shot_id: int
    start_frame: int
    end_frame: int
    transition: str  # the transition that begins this shot: "start" for the first shot
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shots_from_transitions(transitions: list[Transition], frame_count: int) -> list[Shot]:
    """Tile ``[0, frame_count)`` with shots separated by ``transitions``.

    A cut starts the new shot at its frame. A gradual transition is split at its middle frame: the
    frames of a dissolve belong half to each shot, which keeps shots contiguous (no gaps, no overlap)
    so that every frame of the title belongs to exactly one shot.
    """
    if frame_count <= 0:
        return []
    shots: list[Shot] = []
    start, kind, conf = 0, "start", 1.0
    for t in sorted(transitions):
        boundary = t.start_frame if t.kind == "cut" else (t.start_frame + t.end_frame + 1) // 2
        boundary = min(max(boundary, 0), frame_count)
        if boundary <= start:
            continue  # a transition at frame 0 or overlapping the previous one starts nothing new
        shots.append(Shot(len(shots), start, boundary - 1, kind, conf))
        start, kind, conf = boundary, t.kind, float(t.confidence)
    if start < frame_count:
        shots.append(Shot(len(shots), start, frame_count - 1, kind, conf))
    return shots
