"""Render PNG contact sheets and candidate strips from frames.npy for eye verification.

Usage:
  python render.py sheets OUT_DIR [--per-row 10] [--rows 15]
      every frame of the video, numbered, in order (sheet_00000.png, ...)
  python render.py strips OUT_DIR [--spans FILE.csv] [--scale 2] [--per-image 3] [--prefix strip]
      12+ consecutive frames around every span (start,end[,note] rows; default OUT_DIR/candidates.csv),
      upscaled, with the span and its note written above each strip
  python render.py cuts OUT_DIR CUTS_TXT [--scale 2] [--per-image 8]
      frames c-3..c+2 (one row) for every frame index c listed in CUTS_TXT, to confirm each hard cut
  python render.py range OUT_DIR START END [--scale 2]
      frames START..END (inclusive), upscaled, 6 per row (or --per-row)

OUT_DIR is the folder written by signals.py. Images go to OUT_DIR/sheets, OUT_DIR/strips, OUT_DIR/cuts,
OUT_DIR/ranges.

Any mode: --tile-width W resizes every frame to W pixels wide (aspect kept) instead of using --scale (or
scale 1 for sheets), for videos whose frames are too large to read many to an image (e.g. 854x480 and up).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

LABEL_H = 14


TILE_WIDTH = 0  # set by --tile-width; 0 = use the scale


def tile(frame: np.ndarray, idx: int, scale: int) -> Image.Image:
    img = Image.fromarray(frame)
    if TILE_WIDTH:
        img = img.resize((TILE_WIDTH, max(1, round(img.height * TILE_WIDTH / img.width))), Image.BILINEAR)
    elif scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    out = Image.new("RGB", (img.width, img.height + LABEL_H), (255, 255, 255))
    out.paste(img, (0, LABEL_H))
    ImageDraw.Draw(out).text((2, 1), str(idx), fill=(0, 0, 0))
    return out


def grid(frames: np.ndarray, idxs: list[int], per_row: int, scale: int, gap: int = 3) -> Image.Image:
    tiles = [tile(frames[i], i, scale) for i in idxs]
    tw, th = tiles[0].size
    rows = (len(tiles) + per_row - 1) // per_row
    sheet = Image.new("RGB", (per_row * (tw + gap), rows * (th + gap)), (90, 90, 90))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % per_row) * (tw + gap), (k // per_row) * (th + gap)))
    return sheet


def caption(text: str, width: int) -> Image.Image:
    img = Image.new("RGB", (width, 14), (255, 255, 200))
    ImageDraw.Draw(img).text((2, 1), text, fill=(0, 0, 0))
    return img


def stack(images: list[Image.Image], gap: int = 10) -> Image.Image:
    w = max(i.width for i in images)
    h = sum(i.height for i in images) + gap * (len(images) - 1)
    out = Image.new("RGB", (w, h), (200, 0, 0))
    y = 0
    for i in images:
        out.paste(i, (0, y))
        y += i.height + gap
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["sheets", "strips", "cuts", "range"])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("args", nargs="*")
    ap.add_argument("--per-row", type=int, default=0, help="frames per row (sheets 10, range 6)")
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--per-image", type=int, default=3)
    ap.add_argument("--spans", type=Path)
    ap.add_argument("--prefix", default="strip")
    ap.add_argument("--tile-width", type=int, default=0, help="resize frames to this width (overrides scale)")
    a = ap.parse_args()
    global TILE_WIDTH
    TILE_WIDTH = a.tile_width
    frames = np.load(a.out_dir / "frames.npy")
    n = len(frames)
    if a.mode == "sheets":
        dst = a.out_dir / "sheets"
        dst.mkdir(exist_ok=True)
        a.per_row = a.per_row or 10
        per = a.per_row * a.rows
        for s in range(0, n, per):
            grid(frames, list(range(s, min(n, s + per))), a.per_row, 1).save(dst / f"sheet_{s:05d}.png")
    elif a.mode == "strips":
        dst = a.out_dir / "strips"
        dst.mkdir(exist_ok=True)
        with open(a.spans or a.out_dir / "candidates.csv") as fh:
            rows = list(csv.reader(fh))
        spans = [(int(r[0]), int(r[1]), r[2] if len(r) > 2 else "") for r in rows if r and r[0].isdigit()]
        strips = []
        for s0, s1, note in spans:
            mid = (s0 + s1) // 2
            lo = max(0, min(s0 - 2, mid - 6))
            hi = min(n - 1, max(s1 + 2, lo + 11))
            body = grid(frames, list(range(lo, hi + 1)), 6, a.scale)
            strips.append(stack([caption(f"span {s0}-{s1} {note}", body.width), body], gap=0))
        for k in range(0, len(strips), a.per_image):
            stack(strips[k : k + a.per_image]).save(dst / f"{a.prefix}_{k // a.per_image:03d}.png")
    elif a.mode == "cuts":
        dst = a.out_dir / "cuts"
        dst.mkdir(exist_ok=True)
        cuts = [int(x) for x in Path(a.args[0]).read_text().split()]
        rows = []
        for c in cuts:
            body = grid(frames, [i for i in range(c - 3, c + 3) if 0 <= i < n], 6, a.scale)
            rows.append(stack([caption(f"cut at {c}", body.width), body], gap=0))
        for k in range(0, len(rows), a.per_image):
            stack(rows[k : k + a.per_image]).save(dst / f"cuts_{k // a.per_image:03d}.png")
    else:
        lo, hi = (int(x) for x in a.args)
        dst = a.out_dir / "ranges"
        dst.mkdir(exist_ok=True)
        img = grid(frames, list(range(lo, min(n - 1, hi) + 1)), a.per_row or 6, a.scale)
        img.save(dst / f"range_{lo:05d}_{hi:05d}.png")


if __name__ == "__main__":
    main()
