"""Probing and streaming decode of video files with PyAV.

Why PyAV: it exposes presentation timestamps (variable frame rate films keep exact times), decodes
with FFmpeg's frame threading, and lets us read the luma plane and ask swscale for a tiny RGB frame
without ever converting the full-resolution picture, which is where most per-frame time would go.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from marquee.ops.errors import VideoError

log = logging.getLogger(__name__)

#: Share of the demuxed packets that must decode before a file is called truncated/corrupt.
MIN_DECODED_SHARE = 0.98

#: Fewest frames a title may have. The shot detector tells a cut from a one-frame flash (or a corrupt
#: frame) only with a frame on each side of the change (``FastDetector._judge_cut``), so a file with
#: fewer has no shot structure to find; it is a still or an export gone wrong, not a title.
MIN_FRAMES = 3

#: FFmpeg demuxers that read image files, besides the ``*_pipe`` ones (``jpeg_pipe``, ``png_pipe``...):
#: a JPEG, PNG or GIF named ``.mp4`` still opens (FFmpeg probes the content, not the name) and
#: decodes as a "video" of one frame, or a few.
_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe", "gif", "apng", "ico"})


def is_image_format(demuxer: str) -> bool:
    """True for FFmpeg demuxers that read image files (``container.format.name``, e.g. ``png_pipe``)."""
    return demuxer.endswith("_pipe") or bool(set(demuxer.split(",")) & _IMAGE_DEMUXERS)


@dataclass(frozen=True)
class VideoInfo:
    """What the ``title`` asset records about a video file."""

    path: str
    container: str
    codec: str
    width: int  # display width (after rotation)
    height: int  # display height (after rotation)
    coded_width: int
    coded_height: int
    rotation: int  # degrees clockwise the picture must be turned for display: 0, 90, 180, 270
    fps: float  # average frame rate (frames / duration)
    nominal_fps: float  # the stream's declared rate
    variable_frame_rate: bool
    frame_count: int
    duration_s: float
    has_audio: bool
    audio_codec: str | None
    audio_channels: int | None
    audio_sample_rate: int | None
    size_bytes: int
    pix_fmt: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(str(path), "file not found")
    if not path.is_file():
        raise VideoError(str(path), "not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(str(path), "file is empty (0 bytes)")


def open_container(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open ``path`` for reading, turning FFmpeg's errors into a VideoError naming the file."""
    p = Path(path)
    _check_file(p)
    try:
        return av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        raise VideoError(str(p), f"not a readable media file ({_ffmpeg_reason(exc)})") from exc


def _ffmpeg_reason(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc)


def _video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    """The first video stream; a file with none, or an image file renamed, raises VideoError.

    Checked on opening, before any demuxing or decoding: an image would otherwise pass as a
    one-frame video and fail deep inside the shot detector."""
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise VideoError(path, f"no video stream (streams found: {', '.join(kinds)})")
    stream = container.streams.video[0]
    demuxer = str(container.format.name)
    if is_image_format(demuxer):
        kind, frames = f"{demuxer}/{stream.codec_context.name}", int(stream.frames or 0)
        what = f"an animated image ({kind}, {frames} frames)" if frames > 1 else f"a still image ({kind})"
        raise VideoError(path, f"{what}, not a video")
    return stream


def _too_short(path: str, frames: int) -> VideoError:
    return VideoError(
        path,
        f"only {frames} frame{'' if frames == 1 else 's'}: a title needs at least {MIN_FRAMES} frames "
        "for shot detection (a cut is told from a one-frame flash only with a frame on each side)",
    )


def _rotation(stream: av.video.stream.VideoStream, frame: av.VideoFrame | None) -> int:
    """Display rotation in degrees clockwise (0, 90, 180 or 270) of ``stream``, whose first decoded
    frame is ``frame``.

    Where FFmpeg puts it: the container's display matrix (an MP4 ``tkhd`` matrix, as phones write) is
    stream side data, which PyAV (18) does not expose on the stream; the decoder attaches it to every
    decoded frame, where PyAV reads it as ``VideoFrame.rotation``, counter-clockwise (FFmpeg's
    ``av_display_rotation_get``, -90 for a phone held upright), hence the minus sign. Then the legacy
    ``rotate`` tag (clockwise), which older FFmpeg demuxers set and Matroska files can carry, and the
    stream side data of PyAV versions that had it. Angles are snapped to a quarter turn; mirroring in
    the matrix is not applied.
    """
    ccw = int(getattr(frame, "rotation", 0) or 0) if frame is not None else 0
    if ccw:
        return _quarter(-ccw)
    # Case-insensitive, as FFmpeg's own lookup: Matroska tags come back upper case ("ROTATE").
    tag = next((v for k, v in stream.metadata.items() if k.lower() == "rotate"), None)
    if tag is not None:
        try:
            return _quarter(float(tag))
        except ValueError:
            return 0
    side = getattr(stream, "side_data", None)
    if side:
        for key, value in dict(side).items():
            if "DISPLAYMATRIX" in str(key).upper():
                try:
                    return _quarter(-float(value))  # counter-clockwise, as on frames
                except (TypeError, ValueError):
                    return 0
    return 0


def _quarter(degrees: float) -> int:
    return round(degrees / 90) * 90 % 360


def rotate(picture: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a picture (H x W or H x W x C) ``rotation`` degrees clockwise: a coded picture upright.

    The picture itself when ``rotation`` is 0, else a new contiguous array (OpenCV's rotate also takes
    strided views, such as a subsampled luma plane)."""
    if rotation % 360 == 0:  # the hot path: most videos
        return picture
    r = _quarter(rotation)
    return cv2.rotate(picture, _CV2_ROTATE[r]) if r else picture


_CV2_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def read_rotation(path: str | os.PathLike[str]) -> int:
    """Display rotation (degrees clockwise) of the first video stream of ``path``.

    Decodes the first frame, since that is where PyAV shows the display matrix; for callers (preview
    clips) that need it before decoding the span they want."""
    p = Path(path)
    container = open_container(p)
    try:
        stream = _video_stream(container, str(p))
        return _rotation(stream, _first_frame(container, stream, p))
    finally:
        container.close()


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a video file, checking that it demuxes completely and that its first frame decodes.

    The packet scan is cheap (no decoding) and gives the exact frame count and the real timestamps,
    so variable-frame-rate files get a true average rate and a flag; a file whose packets stop early
    or fail to read is reported as truncated or corrupt. An image file (whatever its name) is refused
    on opening, and a video of fewer than ``MIN_FRAMES`` frames once its packets are counted, so that
    neither reaches the decode pass. Width and height are in display orientation (``rotation``).
    """
    p = Path(path)
    container = open_container(p)
    try:
        stream = _video_stream(container, str(p))
        declared = int(stream.frames or 0)
        pts: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    pts.append(int(packet.pts))
        except av.error.FFmpegError as exc:
            raise VideoError(
                str(p), f"corrupt or truncated: demux failed after {len(pts)} packets ({_ffmpeg_reason(exc)})"
            ) from exc
        if not pts:
            raise VideoError(str(p), "video stream has no frames")
        if len(pts) < MIN_FRAMES:
            raise _too_short(str(p), len(pts))
        if declared and len(pts) < declared * MIN_DECODED_SHARE:
            raise VideoError(
                str(p), f"truncated: container declares {declared} frames, only {len(pts)} are present"
            )
        pts.sort()
        tb = stream.time_base or Fraction(1, 1000)
        deltas = np.diff(np.asarray(pts, dtype=np.int64)) if len(pts) > 1 else np.asarray([], np.int64)
        nominal = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0) or 25.0
        typical = float(np.median(deltas)) if deltas.size else float(1 / (nominal * tb))
        duration_s = float((pts[-1] - pts[0] + typical) * tb)
        fps = len(pts) / duration_s if duration_s > 0 else nominal
        # VFR: frame durations that vary by more than a quarter of the typical one, beyond rounding.
        vfr = bool(deltas.size and (np.abs(deltas - typical) > max(1.0, 0.25 * typical)).mean() > 0.01)
        codec_ctx = stream.codec_context
        cw, ch = int(codec_ctx.width), int(codec_ctx.height)
        audio = container.streams.audio[0] if container.streams.audio else None
        info = VideoInfo(
            path=str(p),
            container=str(container.format.name),
            codec=str(codec_ctx.name),
            width=cw,
            height=ch,
            coded_width=cw,
            coded_height=ch,
            rotation=0,  # known once the first frame is decoded, below
            fps=round(fps, 6),
            nominal_fps=round(nominal, 6),
            variable_frame_rate=vfr,
            frame_count=len(pts),
            duration_s=round(duration_s, 6),
            has_audio=audio is not None,
            audio_codec=str(audio.codec_context.name) if audio is not None else None,
            audio_channels=int(audio.codec_context.channels) if audio is not None else None,
            audio_sample_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
            size_bytes=p.stat().st_size,
            pix_fmt=str(codec_ctx.pix_fmt) if codec_ctx.pix_fmt else None,
        )
    finally:
        container.close()
    # The display matrix comes with decoded frames; decoding the first one also checks that it decodes.
    rotation = read_rotation(p)
    if rotation:
        w, h = (ch, cw) if rotation in (90, 270) else (cw, ch)
        info = replace(info, width=w, height=h, rotation=rotation)
    return info


def _first_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> av.VideoFrame:
    """The first decoded frame of ``stream``; VideoError when none decodes."""
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise VideoError(
            str(path), f"corrupt: the first frame does not decode ({_ffmpeg_reason(exc)})"
        ) from exc
    raise VideoError(str(path), "no video frame could be decoded")


def file_sha256(path: str | os.PathLike[str], chunk: int = 8 << 20) -> str:
    """Content hash of a file, streamed (films are many GB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class DecodedFrame:
    """One decoded frame: its index in presentation order, its time, the PyAV frame and the stream's
    display rotation (degrees clockwise, ``VideoInfo.rotation``).

    Every method returns the picture as displayed, turned by ``rotation`` (a phone video shot upright
    is coded sideways), and sizes asked for are display sizes, so widths, heights, boxes and crops
    downstream all agree with ``VideoInfo.width``/``height``. ``frame`` is the coded picture: read
    pixels through the methods, never from it. Scaling happens before turning, so a turn costs a copy
    of the small result only; unrotated frames take exactly the path they always did.
    """

    index: int
    time_s: float
    frame: av.VideoFrame
    rotation: int = 0

    @property
    def width(self) -> int:
        """Display width in pixels."""
        return self.frame.height if self.rotation in (90, 270) else self.frame.width

    @property
    def height(self) -> int:
        """Display height in pixels."""
        return self.frame.width if self.rotation in (90, 270) else self.frame.height

    def _coded(self, width: int, height: int) -> tuple[int, int]:
        """The coded picture's (width, height) that turns into a ``width`` x ``height`` display."""
        return (height, width) if self.rotation in (90, 270) else (width, height)

    def luma(self, max_width: int = 480) -> np.ndarray:
        """The Y plane as a uint8 array, strided down to at most ``max_width`` columns (no copy
        of the full picture, no colour conversion) for cheap sharpness and brightness measures."""
        f = self.frame
        if f.format.name in _PLANAR_YUV:
            plane = f.planes[0]
            y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : f.width]
        else:
            y = f.to_ndarray(format="gray")
        columns = y.shape[0] if self.rotation in (90, 270) else y.shape[1]
        step = max(1, -(-columns // max_width))
        return rotate(y[::step, ::step], self.rotation)

    def rgb(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """HxWx3 uint8 RGB, scaled by swscale when a size is given (area averaging for small sizes)."""
        if width is None or height is None:
            return rotate(self.frame.to_ndarray(format="rgb24"), self.rotation)
        w, h = self._coded(width, height)
        rgb = self.frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        return rotate(rgb, self.rotation)

    def small_rgb(self, width: int, height: int) -> np.ndarray:
        """A tiny HxWx3 uint8 RGB thumbnail (e.g. 48x27) for shot detection, at a fraction of the cost.

        Area-averaging a 720p picture reads every one of its bytes, which costs as much as decoding it.
        For 8-bit planar YUV we instead pick ``_SAMPLES`` x ``_SAMPLES`` evenly spread samples per output
        pixel from each plane (a nearest-neighbour resize, which reads only those), average them with
        an integer-factor area resize, and convert the tiny YUV to RGB with one affine transform. Both
        OpenCV calls work on the plane in place (row stride and all), so no full-size copy is made.
        The result differs from a full area resize by a little aliasing (a few levels of 255), which
        frame differences and TransNetV2 do not notice. A non-integer area resize of a strided copy,
        as before, cost more than our whole per-frame shot detection.
        """
        f = self.frame
        if f.format.name not in _SUBSAMPLE_YUV:
            return self.rgb(width, height)
        width, height = self._coded(width, height)
        planes = []
        for k in range(3):
            plane = f.planes[k]
            arr = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
            if min(arr.shape[1] // width, arr.shape[0] // height) >= _SAMPLES:  # else small: use it all
                n = _SAMPLES
                arr = cv2.resize(arr, (width * n, height * n), interpolation=cv2.INTER_NEAREST)
            planes.append(cv2.resize(arr, (width, height), interpolation=cv2.INTER_AREA))
        full = f.format.name.startswith("yuvj")
        rgb = cv2.transform(cv2.merge(planes), _YUV2RGB_AFFINE_FULL if full else _YUV2RGB_AFFINE_LIMITED)
        return rotate(rgb, self.rotation)

    def thumbnail(self, width: int, height: int) -> np.ndarray:
        """The shot detector's HxWx3 uint8 RGB view of the frame (e.g. 48x27), as cheaply as its size allows.

        Up to ``SWSCALE_MAX_PIXELS`` (720p) swscale's area filter reads every pixel and still costs
        less than ``small_rgb``'s six OpenCV calls (360p: about 135 vs 310 us a frame; 160x90: 35 vs
        75 us), and it averages every pixel (no aliasing). It must run single-threaded with a reused
        context: swscale's default "auto" threads start threads for every frame, which is what made
        it look slow before. Above that size reading every pixel costs more than sampling a few, so
        larger 8-bit YUV pictures take ``small_rgb``.
        """
        f = self.frame
        if f.width * f.height > SWSCALE_MAX_PIXELS and f.format.name in _SUBSAMPLE_YUV:
            return self.small_rgb(width, height)
        reformatter = getattr(_local, "reformatter", None)
        if reformatter is None:
            reformatter = _local.reformatter = VideoReformatter()
        w, h = self._coded(width, height)  # scaled on its side, then turned: the shape is as asked
        rgb = reformatter.reformat(f, width=w, height=h, format="rgb24", interpolation="AREA", threads=1)
        return rotate(rgb.to_ndarray(), self.rotation)


#: Largest picture (width x height) that ``DecodedFrame.thumbnail`` scales with swscale.
SWSCALE_MAX_PIXELS = 1280 * 720
#: One reused swscale context per thread (a context is not safe to share between threads).
_local = threading.local()

#: Samples kept per output pixel, in each direction, by ``small_rgb``: enough to tame aliasing.
_SAMPLES = 6
_SUBSAMPLE_YUV = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})

# BT.601 (FFmpeg's default when a stream does not say otherwise), for limited and full range.
_YUV2RGB_LIMITED = np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]], np.float32)
_YUV2RGB_FULL = np.array([[1.0, 0.0, 1.402], [1.0, -0.344, -0.714], [1.0, 1.772, 0.0]], np.float32)


def _affine(matrix: np.ndarray, offset: tuple[float, float, float]) -> np.ndarray:
    """``matrix @ (yuv - offset)`` as the 3x4 affine matrix ``cv2.transform`` applies (it rounds and
    saturates to uint8 itself)."""
    m = matrix.astype(np.float64)
    return np.hstack([m, -(m @ np.asarray(offset))[:, None]])


_YUV2RGB_AFFINE_LIMITED = _affine(_YUV2RGB_LIMITED, (16.0, 128.0, 128.0))
_YUV2RGB_AFFINE_FULL = _affine(_YUV2RGB_FULL, (0.0, 128.0, 128.0))


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, *, full_range: bool = False) -> np.ndarray:
    """Convert equally sized Y, U, V planes (uint8) to an HxWx3 uint8 RGB image."""
    yuv = np.stack([y, u, v], axis=-1).astype(np.float32)
    yuv -= np.array([0.0 if full_range else 16.0, 128.0, 128.0], np.float32)
    rgb = yuv @ (_YUV2RGB_FULL if full_range else _YUV2RGB_LIMITED).T
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


_PLANAR_YUV = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "yuv420p10le", "gray"}
)


def decode_threads() -> int:
    """Decoder threads for one stream: at least six, or one more than the usable cores.

    FFmpeg's own choice is cores + 1 frame threads. With few cores that leaves them idle: a frame
    thread waits for rows of the frames it references, and the main thread's own work per frame
    (thumbnails, detection) waits on the decoder. On 2 cores six threads made the fast shots pass
    over ``bench/shots.py``'s four files about 10% faster (three interleaved runs); above five cores
    this is FFmpeg's choice. Each extra thread holds a few frames, so memory stays bounded.
    """
    return min(16, max(6, usable_cores() + 1))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers set), else all of them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def decode_frames(
    path: str | os.PathLike[str], *, threads: int | None = None, expected_frames: int | None = None
) -> Iterator[DecodedFrame]:
    """Stream every frame of the first video stream once, in presentation order, bounded memory.

    ``threads``: decoder threads (default ``decode_threads()``; 0 lets FFmpeg pick). Frame times come
    from timestamps, so variable-frame-rate files keep true times. Frames carry the stream's display
    rotation (read from the first frame), so their pictures come out upright. A decode error, a stream
    that stops well short of ``expected_frames``, an image file or a video of fewer than
    ``MIN_FRAMES`` frames raises VideoError naming the file and the reason (an image on opening).
    """
    p = Path(path)
    container = open_container(p)
    try:
        stream = _video_stream(container, str(p))
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = decode_threads() if threads is None else threads
        tb = float(stream.time_base or Fraction(1, 1000))
        nominal = float(stream.average_rate or stream.guessed_rate or 25)
        start_pts: int | None = None
        rotation = 0
        index = 0
        try:
            for frame in container.decode(stream):
                if index == 0:
                    rotation = _rotation(stream, frame)
                if frame.pts is None:
                    t = index / nominal
                else:
                    if start_pts is None:
                        start_pts = int(frame.pts)
                    t = (int(frame.pts) - start_pts) * tb
                yield DecodedFrame(index, t, frame, rotation)
                index += 1
        except av.error.FFmpegError as exc:
            raise VideoError(str(p), f"decode failed at frame {index} ({_ffmpeg_reason(exc)})") from exc
        if index == 0:
            raise VideoError(str(p), "no video frame could be decoded")
        if index < MIN_FRAMES:
            raise _too_short(str(p), index)
        if expected_frames and index < expected_frames * MIN_DECODED_SHARE:
            raise VideoError(str(p), f"truncated or corrupt: decoded {index} of {expected_frames} frames")
    finally:
        container.close()
