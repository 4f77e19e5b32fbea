"""Labelled face crops for the expression signals (eyes open/closed, mouth open/closed, sharp/blurred).

Why this exists: the expression stage measures eye openness, mouth openness and blur from landmarks
and pixels, and its thresholds and its learnable model are only as good as the truth they are judged
on. Synthetic faces would make that truth circular (a rendered blink is whatever the renderer thinks
a blink is), so the dataset is made of real frames of real footage and photos from ``shared/media``
(MIT / CC-BY 3.0, so crops may be kept in the repository), each labelled by a person looking at an
enlarged crop. Only blur is ever made synthetically, and only where it looks like real blur: a linear
motion kernel or a Gaussian defocus applied to a sharp real crop (recorded per item as ``synthetic``).
No closed eye is painted: there are exactly as many closed-eye crops as real blinks were found.

The dataset lives in ``tests/data/expressions/``: ``labels.json`` (format name, the crop rule and a
list of items) and one JPEG per item under ``crops/``. Each item records where its pixels come from
(media file relative to ``shared/media``, frame index in decode order, face box in source pixels) so
that ``rebuild_dataset`` re-extracts every crop from the media, and the face box in crop pixels so
that landmark models can be run on the crop with a known face box. Labels are ``"open"``/``"closed"``
(eyes, mouth), ``"sharp"``/``"blurred"`` or ``None`` where a person could not judge.

    from marquee.synth.expressions import load_labelled_crops
    crops = load_labelled_crops()           # list[LabelledCrop], decoded RGB
    eyes_closed = [c for c in crops if c.labels["eyes"] == "closed"]

Rebuild (re-extract every crop from ``shared/media``; says so and stops where the media are absent):

    .venv/bin/python -m marquee.synth.expressions [--media DIR] [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

FORMAT = "marquee.expression-crops/1"
#: Label names and their allowed values (``None`` = not judgeable).
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "eyes": ("open", "closed"),
    "mouth": ("open", "closed"),
    "sharp": ("sharp", "blurred"),
}
#: Crop rule: a square around the face box whose side is ``1 + MARGIN`` times the box's longer side
#: (clipped at the image border), shrunk so its longer side is at most ``MAX_SIDE``; JPEG quality.
MARGIN = 0.4
MAX_SIDE = 256
JPEG_QUALITY = 92
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}


def default_root() -> Path:
    """The dataset folder inside the repository (``tests/data/expressions``)."""
    return Path(__file__).resolve().parents[2] / "tests" / "data" / "expressions"


@dataclass
class LabelledCrop:
    """One labelled face crop: ``image`` RGB uint8 (H, W, 3); ``box`` the face box (x1, y1, x2, y2) in
    crop pixels; ``labels`` {"eyes", "mouth", "sharp"} -> value or None; ``source`` the media file
    (relative to ``shared/media``) and ``frame`` its frame index; ``how`` how pixels and labels were
    obtained; ``synthetic`` the blur applied (None for a real crop)."""

    id: str
    image: np.ndarray
    box: tuple[float, float, float, float]
    labels: dict[str, str | None]
    source: str
    frame: int
    how: str
    identity: str | None = None
    source_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    synthetic: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_synthetic(self) -> bool:
        return self.synthetic is not None


def read_labels(root: Path | None = None) -> dict[str, Any]:
    """``labels.json`` of the dataset, checked for its format name."""
    root = Path(root) if root is not None else default_root()
    doc = json.loads((root / "labels.json").read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{root / 'labels.json'}: format {doc.get('format')!r}, expected {FORMAT!r}")
    return doc


def load_labelled_crops(root: Path | None = None) -> list[LabelledCrop]:
    """Every labelled crop of the dataset at ``root`` (default: the repository's), decoded to RGB."""
    root = Path(root) if root is not None else default_root()
    out = []
    for item in read_labels(root)["items"]:
        path = root / item["file"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"crop {path} of item {item['id']} is missing or does not decode")
        out.append(
            LabelledCrop(
                id=item["id"],
                image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                box=tuple(float(v) for v in item["box"]),
                labels={k: item["labels"].get(k) for k in ATTRIBUTES},
                source=item["source"],
                frame=int(item["frame"]),
                how=item["how"],
                identity=item.get("identity"),
                source_box=tuple(float(v) for v in item["source_box"]),
                synthetic=item.get("synthetic"),
                extra={k: v for k, v in item.items() if k not in _KNOWN_KEYS},
            )
        )
    return out


_KNOWN_KEYS = {
    "id",
    "file",
    "box",
    "labels",
    "source",
    "frame",
    "how",
    "identity",
    "source_box",
    "synthetic",
    "crop_region",
}


def class_counts(crops: list[LabelledCrop]) -> dict[str, dict[str, dict[str, int]]]:
    """``{attribute: {value: {"real": n, "synthetic": n}}}`` (value ``"null"`` for unjudged)."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for attr, values in ATTRIBUTES.items():
        per = {v: {"real": 0, "synthetic": 0} for v in (*values, "null")}
        for c in crops:
            value = c.labels.get(attr) or "null"
            per[value]["synthetic" if c.is_synthetic else "real"] += 1
        counts[attr] = per
    return counts


# --------------------------------------------------------------------------------------------------
# Rebuilding the crops from the media


def crop_region(width: int, height: int, box: list[float] | tuple[float, ...]) -> tuple[int, int, int, int]:
    """Square region (x1, y1, x2, y2, source pixels) around ``box`` with the crop rule's margin, clipped
    to the image (so it is a rectangle where the face is near a border)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1.0 + MARGIN)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return (
        max(0, round(cx - side / 2)),
        max(0, round(cy - side / 2)),
        min(width, round(cx + side / 2)),
        min(height, round(cy + side / 2)),
    )


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Normalised linear motion-blur kernel: a line of ``length`` pixels at ``angle_deg`` (0 = horizontal),
    anti-aliased by drawing it at 8x and shrinking."""
    size = math.ceil(length) | 1
    big = np.zeros((size * 8, size * 8), np.float32)
    c = size * 4 - 0.5
    dx, dy = math.cos(math.radians(angle_deg)) * length * 4, -math.sin(math.radians(angle_deg)) * length * 4
    p1 = (round((c - dx) * 16), round((c - dy) * 16))
    p2 = (round((c + dx) * 16), round((c + dy) * 16))
    cv2.line(big, p1, p2, 1.0, thickness=8, lineType=cv2.LINE_AA, shift=4)
    kernel = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return kernel / max(float(kernel.sum()), 1e-9)


def apply_blur(image: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """``image`` blurred as ``spec`` says: ``{"kind": "motion", "length": px, "angle": deg}`` or
    ``{"kind": "defocus", "sigma": px}`` (pixels of the image given)."""
    if spec["kind"] == "motion":
        return cv2.filter2D(
            image, -1, motion_kernel(spec["length"], spec["angle"]), borderType=cv2.BORDER_REFLECT
        )
    if spec["kind"] == "defocus":
        return cv2.GaussianBlur(image, (0, 0), float(spec["sigma"]), borderType=cv2.BORDER_REFLECT)
    raise ValueError(f"unknown synthetic blur {spec['kind']!r}")


def extract_crop(
    frame_rgb: np.ndarray, source_box: list[float], synthetic: dict[str, Any] | None = None
) -> tuple[np.ndarray, tuple[int, int, int, int], tuple[float, float, float, float]]:
    """The crop of one face: RGB image, its region in source pixels and the face box in crop pixels.

    Synthetic blur is applied at the crop's final scale (blur sizes are crop pixels) to a region padded
    on every side, so the crop's border holds real smeared neighbours instead of reflected pixels.
    """
    h, w = frame_rgb.shape[:2]
    region = crop_region(w, h, source_box)
    rx1, ry1, rx2, ry2 = region
    scale = min(1.0, MAX_SIDE / max(rx2 - rx1, ry2 - ry1))
    out_w, out_h = max(1, round((rx2 - rx1) * scale)), max(1, round((ry2 - ry1) * scale))
    if synthetic is None:
        patch = frame_rgb[ry1:ry2, rx1:rx2]
        crop = cv2.resize(patch, (out_w, out_h), interpolation=cv2.INTER_AREA) if scale < 1 else patch.copy()
    else:
        pad = math.ceil(max(synthetic.get("length", 0), 4 * synthetic.get("sigma", 0)) / scale) + 2
        px1, py1, px2, py2 = max(0, rx1 - pad), max(0, ry1 - pad), min(w, rx2 + pad), min(h, ry2 + pad)
        patch = frame_rgb[py1:py2, px1:px2]
        big_w, big_h = max(1, round((px2 - px1) * scale)), max(1, round((py2 - py1) * scale))
        small = cv2.resize(patch, (big_w, big_h), interpolation=cv2.INTER_AREA) if scale < 1 else patch
        blurred = apply_blur(np.ascontiguousarray(small), synthetic)
        ox, oy = round((rx1 - px1) * scale), round((ry1 - py1) * scale)
        crop = np.ascontiguousarray(blurred[oy : oy + out_h, ox : ox + out_w])
    sx, sy = crop.shape[1] / (rx2 - rx1), crop.shape[0] / (ry2 - ry1)
    bx1, by1, bx2, by2 = source_box
    box = (
        round(max(0.0, (bx1 - rx1) * sx), 1),
        round(max(0.0, (by1 - ry1) * sy), 1),
        round(min(crop.shape[1], (bx2 - rx1) * sx), 1),
        round(min(crop.shape[0], (by2 - ry1) * sy), 1),
    )
    return crop, region, box


def read_frames(path: Path, frames: set[int]) -> dict[int, np.ndarray]:
    """RGB frames of a video by index in decode order (the numbering used by ``labels.json``), or the
    image itself as frame 0 of a photo."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read image {path}")
        return {0: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)}
    import av

    out: dict[int, np.ndarray] = {}
    last = max(frames)
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in frames:
                out[index] = frame.to_ndarray(format="rgb24")
            if index >= last:
                break
    missing = frames - out.keys()
    if missing:
        raise ValueError(f"{path}: frames {sorted(missing)[:5]} not found (the file has fewer frames)")
    return out


def rebuild_dataset(
    root: Path | None = None, media: Path | None = None, *, check: bool = False
) -> dict[str, Any]:
    """Re-extract every crop of ``labels.json`` from the shared media and rewrite the crops and the
    derived fields (``file``, ``crop_region``, ``box``) of ``labels.json``.

    Labels, sources, frames, source boxes and synthetic blur specs are the hand-made input and are never
    changed. With ``check=True`` nothing is written: each re-extracted crop is compared with the stored
    JPEG (mean absolute difference, 0-255) and the report lists the worst. Raises FileNotFoundError
    naming the folder where the shared media are absent, because real pixels cannot be invented.
    """
    from marquee.synth.media import shared_media_dir

    root = Path(root) if root is not None else default_root()
    media = Path(media) if media is not None else shared_media_dir()
    doc = read_labels(root)
    items = doc["items"]
    sources = sorted({it["source"] for it in items})
    absent = [s for s in sources if not (media / s).is_file()]
    if absent:
        raise FileNotFoundError(
            f"shared media absent: {len(absent)} source(s) not found under {media} (e.g. {absent[0]}); "
            f"set MARQUEE_SHARED_MEDIA to the shared/media folder to rebuild the expression crops"
        )
    wanted: dict[str, set[int]] = defaultdict(set)
    for it in items:
        wanted[it["source"]].add(int(it["frame"]))
    (root / "crops").mkdir(parents=True, exist_ok=True)
    diffs: list[tuple[float, str]] = []
    for source in sources:
        frames = read_frames(media / source, wanted[source])
        for it in (i for i in items if i["source"] == source):
            crop, region, box = extract_crop(frames[int(it["frame"])], it["source_box"], it.get("synthetic"))
            it["file"] = f"crops/{it['id']}.jpg"
            it["crop_region"] = list(region)
            it["box"] = list(box)
            bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
            if check:
                stored = cv2.imread(str(root / it["file"]), cv2.IMREAD_COLOR)
                if stored is None or stored.shape != bgr.shape:
                    diffs.append((255.0, it["id"]))
                else:
                    diffs.append(
                        (float(np.abs(stored.astype(np.int16) - bgr.astype(np.int16)).mean()), it["id"])
                    )
            else:
                cv2.imwrite(str(root / it["file"]), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not check:
        doc["crop_rule"] = {"margin": MARGIN, "max_side": MAX_SIDE, "jpeg_quality": JPEG_QUALITY}
        (root / "labels.json").write_text(json.dumps(doc, indent=1) + "\n")
        keep = {Path(it["file"]).name for it in items}
        for stale in (root / "crops").glob("*.jpg"):
            if stale.name not in keep:
                stale.unlink()
    counts = Counter((a, it["labels"].get(a)) for it in items for a in ATTRIBUTES)
    report: dict[str, Any] = {
        "items": len(items),
        "counts": {f"{a}={v}": n for (a, v), n in sorted(counts.items(), key=str)},
    }
    if check:
        diffs.sort(reverse=True)
        report["worst_mean_abs_diff"] = diffs[:5]
    return report


def main(argv: list[str] | None = None) -> int:
    """CLI: rebuild (or ``--check``) the expression crops from the shared media."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=None, help="shared/media folder")
    parser.add_argument(
        "--out", type=Path, default=None, help="dataset folder (default tests/data/expressions)"
    )
    parser.add_argument("--check", action="store_true", help="compare with the stored crops, write nothing")
    args = parser.parse_args(argv)
    try:
        report = rebuild_dataset(args.out, args.media, check=args.check)
    except FileNotFoundError as exc:
        print(f"cannot rebuild: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
