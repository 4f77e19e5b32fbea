"""Trailer moments: the best-scoring shots grown into short runs of adjacent shots, spread over the film.

Why runs: a trailer often lifts a beat that spans a cut (a line and its reaction), so a moment may join
a high-scoring shot with its best neighbours while they score nearly as well. Why a gap: ten moments
from the same fight are less useful to an editor than ten from across the film, so moments keep
``min_gap_s`` apart where enough good ones exist; when they do not, the gap is relaxed (never overlap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Moment:
    rank: int  # 1 = best
    shot_ids: tuple[int, ...]
    start_frame: int
    end_frame: int  # inclusive
    start_s: float
    end_s: float
    score: float  # the best shot's score (the moment was chosen for it)
    mean_score: float  # over its shots

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shot_ids"] = list(self.shot_ids)
        return d


def _get(shot: Any, key: str) -> Any:
    return shot[key] if isinstance(shot, Mapping) else getattr(shot, key)


def rank_moments(
    scores: Sequence[float] | np.ndarray,
    shots: Sequence[Any],
    *,
    top_k: int = 10,
    max_shots: int = 3,
    min_gap_s: float = 5.0,
    extend_ratio: float = 0.75,
    max_len_s: float = 12.0,
) -> list[Moment]:
    """Up to ``top_k`` non-overlapping moments, best first.

    ``shots`` are in time order, mappings or objects with ``shot_id``, ``start_frame``, ``end_frame``
    (inclusive), ``start_s`` and ``end_s``; ``scores`` one per shot. Greedy: the best unused shot seeds
    a moment, which grows towards its better free neighbour while that neighbour scores at least
    ``extend_ratio`` of the seed, the moment has fewer than ``max_shots`` shots and stays within
    ``max_len_s``. A seed closer than ``min_gap_s`` to a chosen moment waits for a second pass, in which
    only overlap is forbidden.
    """
    s = np.asarray(scores, np.float64)
    if len(s) != len(shots):
        raise ValueError(f"{len(s)} scores for {len(shots)} shots")
    start = np.array([float(_get(x, "start_s")) for x in shots])
    end = np.array([float(_get(x, "end_s")) for x in shots])
    used = np.zeros(len(s), bool)
    chosen: list[tuple[int, int]] = []  # inclusive shot index ranges
    order = np.argsort(-np.nan_to_num(s, nan=-np.inf), kind="stable")

    def too_close(a: int, b: int, gap: float) -> bool:
        return any(start[a] < end[d] + gap and end[b] > start[c] - gap for c, d in chosen)

    for gap in (min_gap_s, 0.0):
        for i in order.tolist():
            if len(chosen) >= top_k:
                break
            if used[i] or not np.isfinite(s[i]) or too_close(i, i, gap):
                continue
            a = b = i
            while b - a + 1 < max_shots:
                options = [j for j in (a - 1, b + 1) if 0 <= j < len(s) and not used[j] and np.isfinite(s[j])]
                options = [
                    j
                    for j in options
                    if s[j] >= extend_ratio * s[i]
                    and max(end[b], end[j]) - min(start[a], start[j]) <= max_len_s
                    and not too_close(min(a, j), max(b, j), gap)
                ]
                if not options:
                    break
                j = max(options, key=lambda j: s[j])
                a, b = min(a, j), max(b, j)
            used[a : b + 1] = True
            chosen.append((a, b))
    # Second-pass moments may outscore late first-pass ones: rank all by the score that chose them.
    chosen.sort(key=lambda r: -float(s[r[0] : r[1] + 1].max()))
    moments = []
    for rank, (a, b) in enumerate(chosen, start=1):
        moments.append(
            Moment(
                rank=rank,
                shot_ids=tuple(int(_get(shots[j], "shot_id")) for j in range(a, b + 1)),
                start_frame=int(_get(shots[a], "start_frame")),
                end_frame=int(_get(shots[b], "end_frame")),
                start_s=round(float(start[a]), 6),
                end_s=round(float(end[b]), 6),
                score=round(float(s[a : b + 1].max()), 6),
                mean_score=round(float(s[a : b + 1].mean()), 6),
            )
        )
    return moments
