"""Small videos made on the fly for tests (no external media needed).

Each scene is a distinct smooth colour texture that drifts (camera-like motion); scenes are joined by
hard cuts unless a dissolve length is given. Ground truth is exact by construction.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def scene_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random colour field larger than the frame, so that it can pan."""
    small = rng.integers(0, 256, size=(h // 16 + 4, w // 16 + 4, 3)).astype(np.float32)
    import cv2

    big = cv2.resize(small, (w + 64, h + 64), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, 255)


def write_video(
    path: Path,
    scene_lengths: list[int],
    *,
    size: tuple[int, int] = (192, 108),
    fps: int = 25,
    dissolve: int = 0,
    seed: int = 0,
    audio: bool = False,
) -> list[int]:
    """Write an H.264 mp4 of scenes; returns the first frame index of each scene after the first."""
    w, h = size
    rng = np.random.default_rng(seed)
    textures = [scene_texture(rng, h, w) for _ in scene_lengths]
    frames: list[np.ndarray] = []
    boundaries: list[int] = []
    for si, n in enumerate(scene_lengths):
        tex = textures[si]
        scene = [tex[(i // 2) % 32 : (i // 2) % 32 + h, i % 64 : i % 64 + w] for i in range(n)]
        if si and dissolve:
            boundaries.append(len(frames) - dissolve // 2)
            for k in range(dissolve):
                a = (k + 1) / (dissolve + 1)
                frames[-dissolve + k] = (1 - a) * frames[-dissolve + k] + a * scene[k]
            scene = scene[dissolve:]
        elif si:
            boundaries.append(len(frames))
        frames.extend(scene)
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.options = {"crf": "18", "preset": "veryfast"}
    astream = None
    if audio:
        astream = container.add_stream("aac", rate=22050)
    for f in frames:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f.astype(np.uint8)), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    if astream is not None:
        n = int(22050 * len(frames) / fps)
        samples = (0.1 * np.sin(np.arange(n) * 2 * np.pi * 440 / 22050)).astype(np.float32)[None, :]
        aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        aframe.sample_rate = 22050
        for packet in astream.encode(aframe):
            container.mux(packet)
        for packet in astream.encode():
            container.mux(packet)
    container.close()
    return boundaries


def write_audio_only(path: Path, seconds: float = 1.0) -> None:
    container = av.open(str(path), mode="w")
    astream = container.add_stream("aac", rate=22050)
    n = int(22050 * seconds)
    aframe = av.AudioFrame.from_ndarray(np.zeros((1, n), np.float32), format="fltp", layout="mono")
    aframe.sample_rate = 22050
    for packet in astream.encode(aframe):
        container.mux(packet)
    for packet in astream.encode():
        container.mux(packet)
    container.close()


def write_frames(
    path: Path,
    frames: list[np.ndarray],
    *,
    fps: int = 25,
    display_rotation: int = 0,
    pix_fmt: str = "yuv420p",
) -> None:
    """Write RGB pictures as they are coded into an H.264 mp4 (CRF 18); ``display_rotation`` (degrees
    clockwise) goes into the display matrix, as a phone records it; ``yuv444p`` for odd sizes.

    A rotation other than 0 needs ``VideoStream.set_display_rotation`` (recent PyAV).
    """
    h, w = frames[0].shape[:2]
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
    stream.options = {"crf": "18", "preset": "veryfast"}
    if display_rotation:
        # PyAV takes the counter-clockwise angle (FFmpeg's av_display_rotation_get convention).
        stream.set_display_rotation(-display_rotation)
    for f in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def coded_sideways(picture: np.ndarray, rotation: int) -> np.ndarray:
    """How a camera codes ``picture`` (as displayed) when it records a display rotation of ``rotation``
    degrees clockwise: turned that much the other way."""
    import cv2

    codes = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    return cv2.rotate(picture, codes[rotation]) if rotation else picture


#: Face crops (256 x 256, one face each) of the repository's labelled expression data: real faces that
#: need no external media. Photos of different people, all found by MTCNN on their own at 128 px.
FACE_CROPS = (
    "photo_alex_lacamoire_img1_0.jpg",
    "photo_angelina_jolie_img1_0.jpg",
    "photo_biden_biden_0.jpg",
    "photo_kate_siegel_img1_0.jpg",
    "photo_obama_obama_0.jpg",
    "photo_paul_rudd_img1_0.jpg",
)


def face_collage(tile: int = 128, columns: int = 2, shift: int = 0) -> np.ndarray:
    """An upright portrait RGB picture of the ``FACE_CROPS`` in a grid on grey, ``shift`` pixels right
    (for motion between frames); the size is even, as yuv420p wants."""
    import cv2

    crops = Path(__file__).parent / "data" / "expressions" / "crops"
    rows = -(-len(FACE_CROPS) // columns)
    out = np.full((rows * tile + 32, columns * tile + 16 + 8, 3), 40, np.uint8)
    for i, name in enumerate(FACE_CROPS):
        bgr = cv2.imread(str(crops / name))
        if bgr is None:
            raise FileNotFoundError(crops / name)
        face = cv2.cvtColor(cv2.resize(bgr, (tile, tile), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        r, c = divmod(i, columns)
        x = 4 + c * tile + min(shift, 8)
        out[16 + r * tile : 16 + (r + 1) * tile, x : x + tile] = face
    return out


def write_image(path: Path, kind: str, *, frames: int = 1, size: tuple[int, int] = (192, 108)) -> None:
    """Write an image file of ``kind`` ("jpeg", "png" or "gif"; ``frames`` > 1 makes an animated GIF)
    to ``path`` whatever its name, as a user's still renamed ``.mp4`` would be."""
    import io

    from PIL import Image

    w, h = size
    rng = np.random.default_rng(0)
    base = scene_texture(rng, h, w).astype(np.uint8)
    pictures = [Image.fromarray(np.ascontiguousarray(base[k : k + h, k : k + w])) for k in range(frames)]
    buf = io.BytesIO()
    if kind == "gif":
        pictures[0].save(buf, format="GIF", save_all=frames > 1, append_images=pictures[1:], duration=40)
    else:
        pictures[0].save(buf, format={"jpeg": "JPEG", "png": "PNG"}[kind])
    path.write_bytes(buf.getvalue())
