"""The timeline every stage shares: transitions, shots, and frame <-> time.

In the spirit of PySceneDetect's ``FrameTimecode``: a video's frames have presentation times that need
not be evenly spaced (variable frame rate), so a frame index becomes seconds only through the decoded
frame times (``Timeline``). A shot's end in seconds is the time the frame *after* it begins, so shots
tile the title's duration with no gap.

The ``shots`` and ``trailer_shots`` tables, ``marquee shots`` and the trailer matcher all build and read
shot rows here (``shot_rows``, ``shots_from_rows``, ``transitions_from_rows``), so a fix lands once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

TransitionKind = Literal["cut", "dissolve", "fade"]
TRANSITION_KINDS: tuple[str, ...] = ("cut", "dissolve", "fade")

#: Frame duration assumed for a one-frame video (no spacing to measure).
_FALLBACK_FRAME_S = 0.04


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

    @property
    def boundary(self) -> int:
        """The first frame of the shot it begins: a cut's frame, a gradual transition's middle."""
        return self.start_frame if self.kind == "cut" else (self.start_frame + self.end_frame + 1) // 2


@dataclass(frozen=True)
class Shot:
    """A shot as stored in the ``shots`` table (frame indices inclusive)."""

    shot_id: int
    start_frame: int
    end_frame: int
    transition: str  # the transition that begins this shot: "start" for the first shot
    confidence: float

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shots_from_transitions(transitions: Iterable[Transition], frame_count: int) -> list[Shot]:
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
        boundary = min(max(t.boundary, 0), frame_count)
        if boundary <= start:
            continue  # a transition at frame 0 or overlapping the previous one starts nothing new
        shots.append(Shot(len(shots), start, boundary - 1, kind, conf))
        start, kind, conf = boundary, t.kind, float(t.confidence)
    if start < frame_count:
        shots.append(Shot(len(shots), start, frame_count - 1, kind, conf))
    return shots


@dataclass(frozen=True, eq=False)
class Timeline:
    """Presentation time (seconds) of every decoded frame, in order: frame <-> time for one video."""

    frame_times: np.ndarray

    @property
    def frame_count(self) -> int:
        return len(self.frame_times)

    @property
    def frame_step_s(self) -> float:
        """The typical time between frames (median of the last 50 gaps)."""
        if self.frame_count < 2:
            return _FALLBACK_FRAME_S
        return float(np.median(np.diff(self.frame_times[-50:])))

    @property
    def duration_s(self) -> float:
        """When the last frame ends."""
        return self.end_s(self.frame_count - 1) if self.frame_count else 0.0

    def start_s(self, frame: int) -> float:
        """When ``frame`` is shown."""
        return float(self.frame_times[frame])

    def end_s(self, frame: int) -> float:
        """When ``frame`` stops being shown: the next frame's time (the last one lasts one step)."""
        if frame + 1 < self.frame_count:
            return float(self.frame_times[frame + 1])
        return float(self.frame_times[-1]) + self.frame_step_s

    def span_s(self, first: int, last: int) -> tuple[float, float]:
        """Start and end in seconds of the inclusive frame range ``[first, last]``."""
        return self.start_s(first), self.end_s(last)

    def shot_span_s(self, shot: Shot) -> tuple[float, float]:
        return self.span_s(shot.start_frame, shot.end_frame)

    def frame_at(self, seconds: float) -> int:
        """The frame shown at ``seconds`` (clamped to the video)."""
        i = int(np.searchsorted(self.frame_times, seconds, side="right")) - 1
        return min(max(i, 0), max(self.frame_count - 1, 0))


def shot_rows(
    shots: Sequence[Shot],
    timeline: Timeline,
    transitions: Iterable[Transition] = (),
    *,
    motion: Sequence[float | None] | None = None,
    detector: str | None = None,
) -> list[dict[str, Any]]:
    """One row per shot, as the ``shots`` table stores it: frames, seconds (6 decimals), the transition
    that begins it with its frame span, confidence, and (when given) motion and detector."""
    by_boundary = {t.boundary: t for t in transitions}
    rows = []
    for i, shot in enumerate(shots):
        start_s, end_s = timeline.shot_span_s(shot)
        t = by_boundary.get(shot.start_frame)
        row: dict[str, Any] = {
            "shot_id": shot.shot_id,
            "start_frame": shot.start_frame,
            "end_frame": shot.end_frame,
            "start_s": round(start_s, 6),
            "end_s": round(end_s, 6),
            "duration_s": round(end_s - start_s, 6),
            "n_frames": shot.n_frames,
            "transition": shot.transition,
            "transition_start_frame": t.start_frame if t else None,
            "transition_end_frame": t.end_frame if t else None,
            "confidence": round(float(shot.confidence), 4),
        }
        if motion is not None:
            row["motion"] = motion[i]
        if detector is not None:
            row["detector"] = detector
        rows.append(row)
    return rows


def shots_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Shot]:
    """The shots of stored rows (``shots`` or ``trailer_shots``), in shot order."""
    return [
        Shot(
            int(r["shot_id"]),
            int(r["start_frame"]),
            int(r["end_frame"]),
            r["transition"],
            float(r["confidence"]),
        )
        for r in sorted(rows, key=lambda r: r["shot_id"])
    ]


def transitions_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Transition]:
    """The transitions stored in ``shots`` rows (each shot's beginning but the first)."""
    out = []
    for r in rows:
        if r["transition"] in TRANSITION_KINDS and r.get("transition_start_frame") is not None:
            out.append(
                Transition(
                    int(r["transition_start_frame"]),
                    int(r["transition_end_frame"]),
                    r["transition"],
                    float(r["confidence"]),
                )
            )
    return sorted(out)
