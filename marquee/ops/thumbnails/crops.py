"""Artwork crops that keep the primary faces well placed, and a logo-safe area inside each crop.

Artwork comes in a few shapes (16:9 hero, 2:3 poster, 1:1 tile, 4:5 feed). For each, the crop is the
largest of that shape the frame allows, shrunk (never below ``min_zoom`` of that) until the primary
face fills a useful share of its height, then placed so the faces sit centred across and their eyes
near the upper third line, clamped to the frame. If the faces of several characters cannot all fit
(a 2:3 poster out of a wide two-shot), the crop keeps the most prominent one whole and never cuts
another face in half where a wider placement can avoid it.

The logo-safe area is where a title treatment can go: a band at the top or bottom of the crop (left,
centre or right), touching no face, with the least detail (mean gradient magnitude), so text stays
legible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: Artwork shapes: name -> width / height.
ASPECTS: dict[str, float] = {"16x9": 16 / 9, "2x3": 2 / 3, "1x1": 1.0, "4x5": 4 / 5}


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: ``x1, y1`` inclusive top-left, ``x2, y2`` exclusive bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def w(self) -> float:
        return self.x2 - self.x1

    @property
    def h(self) -> float:
        return self.y2 - self.y1

    @property
    def cx(self) -> float:
        return (self.x1 + self.x2) / 2

    @property
    def cy(self) -> float:
        return (self.y1 + self.y2) / 2

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x1, other.x1), min(self.y1, other.y1), max(self.x2, other.x2), max(self.y2, other.y2)
        )

    def expanded(self, share: float) -> Box:
        dx, dy = self.w * share, self.h * share
        return Box(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy)

    def overlap(self, other: Box) -> float:
        """Intersection area."""
        w = min(self.x2, other.x2) - max(self.x1, other.x1)
        h = min(self.y2, other.y2) - max(self.y1, other.y1)
        return max(0.0, w) * max(0.0, h)

    def contains(self, other: Box, tol: float = 0.5) -> bool:
        return (
            other.x1 >= self.x1 - tol
            and other.y1 >= self.y1 - tol
            and other.x2 <= self.x2 + tol
            and other.y2 <= self.y2 + tol
        )

    def rounded(self) -> Box:
        return Box(*(float(round(v)) for v in (self.x1, self.y1, self.x2, self.y2)))

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]


@dataclass(frozen=True)
class CropPolicy:
    """How crops frame faces (part of the thumbnails' version)."""

    face_share: float = 0.28  # wanted height of the primary face as a share of the crop height
    min_zoom: float = 0.55  # never crop smaller than this share of the largest crop (resolution)
    eye_line: float = 0.36  # where the faces' centre sits, from the top, as a share of the crop
    margin: float = 0.25  # room kept around the faces, as a share of their size


def largest_crop(width: int, height: int, aspect: float) -> tuple[float, float]:
    """Width and height of the largest crop of ``aspect`` (w/h) inside a ``width`` x ``height`` frame."""
    if width / height > aspect:
        return height * aspect, float(height)
    return float(width), width / aspect


def _place(size: tuple[float, float], centre: tuple[float, float], width: int, height: int) -> Box:
    w, h = size
    x1 = min(max(centre[0] - w / 2, 0.0), width - w)
    y1 = min(max(centre[1] - h / 2, 0.0), height - h)
    return Box(x1, y1, x1 + w, y1 + h)


def artwork_crop(
    width: int, height: int, faces: Sequence[Box], aspect: float, policy: CropPolicy | None = None
) -> Box:
    """The crop of ``aspect`` for a frame with ``faces`` (most prominent first; may be empty)."""
    p = policy or CropPolicy()
    max_w, max_h = largest_crop(width, height, aspect)
    if not faces:
        return _place((max_w, max_h), (width / 2, height / 2), width, height).rounded()
    keep = list(faces)
    while True:
        group = keep[0]
        for f in keep[1:]:
            group = group.union(f)
        need = group.expanded(p.margin)
        if (need.w <= max_w and need.h <= max_h) or len(keep) == 1:
            break
        keep = keep[:-1]  # the least prominent face goes first
    # Zoom: the primary face at ``face_share`` of the crop height, within [min_zoom, 1] of the largest.
    scale = keep[0].h / p.face_share / max_h if keep[0].h > 0 else 1.0
    scale = min(1.0, max(p.min_zoom, scale, need.w / max_w, need.h / max_h))
    w, h = max_w * scale, max_h * scale
    centre = (group.cx, group.cy + (0.5 - p.eye_line) * h)
    crop = _place((w, h), centre, width, height)
    # A face we had to leave out should be wholly in (without the margin) or wholly out, not halved,
    # where sliding the crop allows.
    for f in faces:
        if f in keep or not crop.overlap(f) or crop.contains(f):
            continue
        with_it = group.union(f)
        options = [(with_it.cx, crop.cy)] if with_it.w <= w and with_it.h <= h else []
        options += [(crop.cx + shift, crop.cy) for shift in (f.x2 - crop.x1, f.x1 - crop.x2)]
        for centre in options:
            moved = _place((w, h), centre, width, height)
            if all(moved.contains(k) for k in keep) and (moved.contains(f) or not moved.overlap(f)):
                crop = moved
                break
    return crop.rounded()


def detail_map(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel gradient magnitude of the luma, 0-1 (a proxy for "busy" picture areas)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return np.minimum(1.0, np.sqrt(gx * gx + gy * gy))


@dataclass(frozen=True)
class LogoArea:
    box: Box  # in frame pixels
    detail: float  # mean gradient magnitude inside (lower = calmer background)
    position: str  # e.g. "top-left", "bottom-centre"


def logo_safe_area(
    detail: np.ndarray,
    crop: Box,
    faces: Sequence[Box],
    *,
    size: tuple[float, float] = (0.42, 0.2),
    inset: float = 0.04,
    face_margin: float = 0.15,
) -> LogoArea | None:
    """The calmest top/bottom band region of ``crop`` (``size`` as shares of its width and height)
    that touches no face; None when every candidate touches a face. ``detail`` is ``detail_map`` of
    the whole frame."""
    w, h = crop.w * size[0], crop.h * size[1]
    mx, my = crop.w * inset, crop.h * inset
    xs = {"left": crop.x1 + mx, "centre": crop.cx - w / 2, "right": crop.x2 - mx - w}
    ys = {"top": crop.y1 + my, "bottom": crop.y2 - my - h}
    blocked = [f.expanded(face_margin) for f in faces]
    best: LogoArea | None = None
    for vname, y in ys.items():
        for hname, x in xs.items():
            box = Box(x, y, x + w, y + h).rounded()
            if any(box.overlap(b) > 0 for b in blocked):
                continue
            region = detail[int(box.y1) : int(box.y2), int(box.x1) : int(box.x2)]
            score = float(region.mean()) if region.size else 1.0
            if best is None or score < best.detail - 1e-9:
                best = LogoArea(box, round(score, 4), f"{vname}-{hname}")
    return best


def composite_logo(crop_rgb: np.ndarray, logo_rgba: np.ndarray, area: Box) -> np.ndarray:
    """``crop_rgb`` with the logo (RGBA, alpha-blended) fitted inside ``area`` (crop pixels), centred."""
    if logo_rgba.ndim != 3 or logo_rgba.shape[2] != 4:
        raise ValueError("the logo must be an RGBA image (PNG with alpha)")
    lh, lw = logo_rgba.shape[:2]
    scale = min(area.w / lw, area.h / lh)
    tw, th = max(1, int(lw * scale)), max(1, int(lh * scale))
    logo = cv2.resize(logo_rgba, (tw, th), interpolation=cv2.INTER_AREA)
    x0 = int(area.x1 + (area.w - tw) / 2)
    y0 = int(area.y1 + (area.h - th) / 2)
    out = crop_rgb.copy()
    region = out[y0 : y0 + th, x0 : x0 + tw].astype(np.float32)
    alpha = logo[: region.shape[0], : region.shape[1], 3:4].astype(np.float32) / 255.0
    colour = logo[: region.shape[0], : region.shape[1], :3].astype(np.float32)
    out[y0 : y0 + th, x0 : x0 + tw] = (colour * alpha + region * (1 - alpha)).round().astype(np.uint8)
    return out
