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
