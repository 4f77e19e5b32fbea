"""Scoring shot-boundary detection against ground truth (precision, recall, F1).

A predicted transition matches a true one when their frame spans, widened by ``tolerance`` frames,
overlap; matching is one-to-one, closest centres first. The kind (cut / dissolve / fade) is not
needed for a match; how often it is right among matches is reported separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from marquee.ops.timeline import Transition


@dataclass(frozen=True)
class Score:
    true: int
    predicted: int
    matched: int
    kind_correct: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.true + other.true,
            self.predicted + other.predicted,
            self.matched + other.matched,
            self.kind_correct + other.kind_correct,
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self) | {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


def match(
    truth: Sequence[Transition], predicted: Sequence[Transition], tolerance: int = 2
) -> list[tuple[Transition, Transition]]:
    """One-to-one pairs (true, predicted) whose widened spans overlap, closest centres first."""
    pairs = []
    for t in truth:
        for p in predicted:
            if p.start_frame - tolerance <= t.end_frame and t.start_frame - tolerance <= p.end_frame:
                gap = abs((t.start_frame + t.end_frame) - (p.start_frame + p.end_frame)) / 2
                pairs.append((gap, t, p))
    pairs.sort(key=lambda x: x[0])
    used_t: set[Transition] = set()
    used_p: set[Transition] = set()
    out = []
    for _, t, p in pairs:
        if t in used_t or p in used_p:
            continue
        used_t.add(t)
        used_p.add(p)
        out.append((t, p))
    return out


def score(truth: Sequence[Transition], predicted: Sequence[Transition], tolerance: int = 2) -> Score:
    pairs = match(truth, predicted, tolerance)
    return Score(len(truth), len(predicted), len(pairs), sum(t.kind == p.kind for t, p in pairs))
