"""Consistency checks on shots and keyframes tables (pure functions; the assets report them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def tiling_problems(shots: Sequence[Mapping[str, Any]], frame_count: int) -> list[str]:
    """Problems with shots that should cover frames ``0..frame_count-1`` exactly once, in order."""
    problems: list[str] = []
    if frame_count > 0 and not shots:
        return [f"no shots for {frame_count} frames"]
    expected = 0
    last_end_s = None
    for s in shots:
        if s["start_frame"] != expected:
            kind = "gap" if s["start_frame"] > expected else "overlap"
            problems.append(
                f"shot {s['shot_id']}: {kind} (starts at frame {s['start_frame']}, expected {expected})"
            )
        if s["end_frame"] < s["start_frame"]:
            problems.append(f"shot {s['shot_id']}: ends before it starts")
        if last_end_s is not None and abs(s["start_s"] - last_end_s) > 1e-6:
            problems.append(
                f"shot {s['shot_id']}: starts at {s['start_s']}s, previous ended at {last_end_s}s"
            )
        last_end_s = s["end_s"]
        expected = s["end_frame"] + 1
    if shots and expected != frame_count:
        problems.append(f"shots end at frame {expected - 1}, the title has {frame_count} frames")
    return problems


def keyframe_problems(
    keyframes: Sequence[Mapping[str, Any]], shot_ids: Sequence[int], exists: Callable[[str], bool]
) -> list[str]:
    """Keyframe rows whose image is missing, and shots without any keyframe."""
    problems = [
        f"frame {k['frame']}: image {k['image_key']} missing" for k in keyframes if not exists(k["image_key"])
    ]
    covered = {k["shot_id"] for k in keyframes}
    problems += [f"shot {s}: no keyframe" for s in shot_ids if s not in covered]
    return problems
