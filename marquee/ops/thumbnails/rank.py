"""Rank keyframes as thumbnail candidates: prominent character x good expression x image quality,
then pick a short, diverse list.

A frame qualifies when it shows at least one identified character (not a background cluster). Its
primary face is the one that makes the best thumbnail: the highest prominence x expression among the
characters' faces large enough to lead (so a frame where the lead is mid-blink can still be a good
picture of the second character); each such face is an alternative, so when its character has had
its share of picks the next face of that frame can still lead. Scores:
- ``prominence``: the primary character's screen-time share over the top character's (1 for the
  lead), times a face-size factor (a tiny lead in a wide shot makes a poor thumbnail);
- ``expression``: the expression model's score of the primary face;
- ``quality``: the keyframe's sharpness and exposure, as percentile ranks within the title.
The score is their product. Selection is greedy by score with diversity rules: at most
``per_character_share`` of the picks with the same primary character, ``per_shot`` per shot, none within
``min_gap_s`` of an earlier pick of the same character, and a time-spread bonus so picks do not all
come from one scene.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RankPolicy:
    """Everything that changes the ranking (part of the candidates' version)."""

    top_k: int = 20
    per_character_share: float = 0.4  # at most this share of the picks focus on one character
    per_shot: int = 2  # two moments of one long shot can both be good; the time gap keeps them apart
    min_gap_s: float = 3.0
    face_size_ref: float = 0.22  # primary face height / frame height at which the size factor is 1
    min_face_share: float = 0.05  # faces smaller than this share of the frame height never lead
    spread_weight: float = 0.15  # bonus for frames far (in time) from earlier picks


@dataclass
class FrameCandidate:
    """One keyframe's candidacy, before selection."""

    frame: int
    time_s: float
    shot_id: int
    primary_face_id: int
    primary_character: int
    character_ids: list[int]
    prominence: float
    expression: float
    eyes_open: float
    quality: float
    score: float = 0.0


def _percentile_ranks(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return (ranks + 1) / len(values)


def frame_candidates(
    faces: Sequence[Mapping[str, Any]],
    keyframes: Sequence[Mapping[str, Any]],
    prominence: Mapping[int, float],
    policy: RankPolicy | None = None,
) -> list[FrameCandidate]:
    """Candidates from face rows (``face_id, frame, time_s, shot_id, character_id, y1, y2,
    expression, eyes_open``), keyframe rows (``frame, sharpness, brightness, height`` in keyframe
    pixels, ``keyframe_scale`` optional) and character prominence (character id -> screen-time share)."""
    p = policy or RankPolicy()
    if not keyframes:
        return []
    top = max(prominence.values(), default=0.0) or 1.0
    kf = {int(k["frame"]): k for k in keyframes}
    frames = sorted(kf)
    sharp = _percentile_ranks(np.array([float(kf[f]["sharpness"]) for f in frames]))
    bright = np.array([float(kf[f]["brightness"]) for f in frames])
    exposure = np.clip(1.0 - np.abs(bright - 0.45) / 0.45, 0.2, 1.0)
    quality = {f: float(0.5 + 0.5 * s) * float(e) for f, s, e in zip(frames, sharp, exposure, strict=True)}
    by_frame: dict[int, list[Mapping[str, Any]]] = {}
    for r in faces:
        if int(r["character_id"]) in prominence and int(r["frame"]) in kf:
            by_frame.setdefault(int(r["frame"]), []).append(r)
    out = []
    for frame, fs in by_frame.items():
        height = float(kf[frame]["height"]) * float(kf[frame].get("keyframe_scale") or 1.0)

        def share(r: Mapping[str, Any], height: float = height) -> float:
            return (float(r["y2"]) - float(r["y1"])) / height

        leaders = [r for r in fs if share(r) >= p.min_face_share]
        if not leaders:
            continue

        def parts(r: Mapping[str, Any], height: float = height) -> tuple[float, float]:
            size = min(1.0, share(r, height) / p.face_size_ref) ** 0.5
            return prominence[int(r["character_id"])] / top * size, float(r["expression"])

        for r in leaders:  # one alternative per face: if its character is capped, the next can lead
            prom, expr = parts(r)
            cand = FrameCandidate(
                frame=frame,
                time_s=float(r["time_s"]),
                shot_id=int(r["shot_id"]),
                primary_face_id=int(r["face_id"]),
                primary_character=int(r["character_id"]),
                character_ids=sorted({int(x["character_id"]) for x in fs}),
                prominence=round(prom, 4),
                expression=round(expr, 4),
                eyes_open=round(float(r["eyes_open"]), 4),
                quality=round(quality[frame], 4),
            )
            cand.score = round(cand.prominence * cand.expression * cand.quality, 6)
            out.append(cand)
    return sorted(out, key=lambda c: (-c.score, c.frame))


def select_diverse(
    candidates: Sequence[FrameCandidate], duration_s: float, policy: RankPolicy | None = None
) -> list[FrameCandidate]:
    """Greedy diverse top-k (see the module notes); ranks follow the order returned."""
    p = policy or RankPolicy()
    chosen: list[FrameCandidate] = []
    per_character = max(1, math.ceil(p.per_character_share * p.top_k))
    per_char: Counter[int] = Counter()
    per_shot: Counter[int] = Counter()
    pool = list(candidates)
    span = max(duration_s, 1e-6)
    while pool and len(chosen) < p.top_k:
        best, best_value = None, -1.0
        taken = {o.frame for o in chosen}
        for c in pool:
            if c.frame in taken:
                continue
            if per_char[c.primary_character] >= per_character or per_shot[c.shot_id] >= p.per_shot:
                continue
            if any(
                (c.primary_character == o.primary_character or c.shot_id == o.shot_id)
                and abs(c.time_s - o.time_s) < p.min_gap_s
                for o in chosen
            ):  # one character, or one shot (a two-shot led by either face), once per time gap
                continue
            gap = min((abs(c.time_s - o.time_s) for o in chosen), default=span) / span
            value = c.score * (1.0 + p.spread_weight * min(1.0, 4 * gap))
            if value > best_value:
                best, best_value = c, value
        if best is None:
            break
        chosen.append(best)
        per_char[best.primary_character] += 1
        per_shot[best.shot_id] += 1
        pool.remove(best)
    return chosen
