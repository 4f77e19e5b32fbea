"""One chosen candidate made into media: crops per artwork shape with logo-safe areas, and its row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from marquee.ops.thumbnails.crops import (
    ASPECTS,
    Box,
    CropPolicy,
    LogoArea,
    artwork_crop,
    composite_logo,
    detail_map,
    logo_safe_area,
)
from marquee.ops.thumbnails.rank import FrameCandidate


@dataclass
class RenderedCandidate:
    boxes: dict[str, Box]  # crop per shape, keyframe pixels
    logo_areas: dict[str, LogoArea | None]  # in keyframe pixels
    crops: dict[str, np.ndarray]
    with_logo: dict[str, np.ndarray]


def render_candidate(
    image: np.ndarray, faces: Sequence[np.ndarray], policy: CropPolicy, logo: np.ndarray | None = None
) -> RenderedCandidate:
    """Crops of ``image`` for every artwork shape around ``faces`` (boxes in image pixels, primary
    first), each with its logo-safe area and, when ``logo`` (RGBA) is given, a copy with the logo."""
    h, w = image.shape[:2]
    boxes = [Box(*(float(v) for v in b)) for b in faces]
    detail = detail_map(image)
    out = RenderedCandidate({}, {}, {}, {})
    for name, aspect in ASPECTS.items():
        crop = artwork_crop(w, h, boxes, aspect, policy)
        area = logo_safe_area(detail, crop, boxes)
        pixels = image[int(crop.y1) : int(crop.y2), int(crop.x1) : int(crop.x2)]
        out.boxes[name], out.logo_areas[name], out.crops[name] = crop, area, np.ascontiguousarray(pixels)
        if logo is not None and area is not None:
            local = Box(
                area.box.x1 - crop.x1, area.box.y1 - crop.y1, area.box.x2 - crop.x1, area.box.y2 - crop.y1
            )
            out.with_logo[name] = composite_logo(pixels, logo, local)
    return out


@dataclass
class CandidateMedia:
    rank: int
    candidate: FrameCandidate
    frame_key: str
    crop_keys: dict[str, str]
    logo_keys: dict[str, str]
    rendered: RenderedCandidate
    scale: float  # source pixels per keyframe pixel


def _scaled(box: Box | None, scale: float) -> list[float] | None:
    return None if box is None else [round(v * scale, 1) for v in box.as_list()]


def candidate_rows(media: Sequence[CandidateMedia]) -> list[dict[str, Any]]:
    """The ``thumbnail_candidates`` rows; boxes in source-video pixels."""
    rows = []
    for m in media:
        c = m.candidate
        row = {
            "rank": m.rank,
            "frame": c.frame,
            "time_s": round(c.time_s, 3),
            "shot_id": c.shot_id,
            "primary_character": c.primary_character,
            "character_ids": c.character_ids,
            "primary_face_id": c.primary_face_id,
            "prominence": c.prominence,
            "expression": c.expression,
            "eyes_open": c.eyes_open,
            "quality": c.quality,
            "score": c.score,
            "frame_key": m.frame_key,
        }
        for name in ASPECTS:
            area = m.rendered.logo_areas[name]
            row[f"crop_{name}_key"] = m.crop_keys[name]
            row[f"crop_{name}_box"] = _scaled(m.rendered.boxes[name], m.scale)
            row[f"logo_{name}_box"] = _scaled(area.box if area else None, m.scale)
            row[f"logo_{name}_detail"] = area.detail if area else None
            row[f"logo_{name}_key"] = m.logo_keys.get(name)
        rows.append(row)
    return rows
