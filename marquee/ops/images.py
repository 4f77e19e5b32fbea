"""Pictures to and from bytes (object storage holds JPEG/PNG; the stages work on RGB arrays)."""

from __future__ import annotations

import cv2
import numpy as np


def decode_rgb(data: bytes, name: str = "image") -> np.ndarray:
    """RGB uint8 array of an encoded picture; ValueError naming ``name`` when it cannot be decoded."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{name}: not a decodable image ({len(data)} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 array."""
    ok, buf = cv2.imencode(
        ".jpg",
        cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
        [
            cv2.IMWRITE_JPEG_QUALITY,
            int(quality),
        ],
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB array
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_rgba(data: bytes, name: str = "image") -> np.ndarray:
    """RGBA uint8 array of a picture with an alpha channel (a logo); ValueError when it has none."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        raise ValueError(f"{name}: not a picture with an alpha channel (use a PNG with transparency)")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
