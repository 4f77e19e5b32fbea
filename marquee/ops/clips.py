"""Short preview clips of a title's moments (H.264 + AAC in MP4), cut from the source video.

Why a re-encode and not a stream copy: a moment starts at a shot boundary, rarely on a keyframe, and
a copy would start at the previous keyframe (showing the wrong shot) or with a broken first second.
Clips are small (at most ``max_width`` pixels wide) because they are for choosing, not for the edit.

Each clip seeks to just before its start and decodes only its own span, so cutting ten moments out
of a two-hour film decodes a few minutes of it, not the film; memory holds one frame at a time.

Clips come out upright: a source with a display rotation (a phone video) is turned in the pixels,
since the re-encode does not carry the source's display matrix over and players would show it sideways.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from marquee.ops.errors import VideoError
from marquee.ops.video import DecodedFrame, open_container, read_rotation


@dataclass(frozen=True)
class ClipSpan:
    """A span of the source in seconds (presentation time), ``[start_s, end_s)``."""

    start_s: float
    end_s: float


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def write_clip(
    source: str | Path,
    span: ClipSpan,
    out: str | Path,
    *,
    max_width: int = 480,
    crf: int = 26,
    audio: bool = True,
) -> Path:
    """Cut ``span`` of ``source`` into ``out`` (MP4); returns ``out``.

    Raises ``VideoError`` naming the source when it cannot be read or the span holds no frame.
    """
    out = Path(out)
    if span.end_s <= span.start_s:
        raise ValueError(f"empty clip span {span}")
    rotation = read_rotation(source)
    with open_container(source) as inp:
        vin = next((s for s in inp.streams if s.type == "video"), None)
        if vin is None:
            raise VideoError(str(source), "no video stream")
        ain = next((s for s in inp.streams if s.type == "audio"), None) if audio else None
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        w, h = vin.codec_context.width, vin.codec_context.height
        if rotation in (90, 270):
            w, h = h, w  # the display size
        scale = min(1.0, max_width / max(w, 1))
        size = (_even(w * scale), _even(h * scale))
        vin.thread_type = "AUTO"
        written = 0
        with av.open(str(out), mode="w", format="mp4") as dst:
            vout = dst.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = size[0], size[1], "yuv420p"
            vout.options = {"crf": str(crf), "preset": "veryfast"}
            aout, resampler = None, None
            if ain is not None:
                aout = dst.add_stream("aac", rate=48000)
                aout.layout = "stereo"
                resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
            # Seek a little early (the demuxer lands on a keyframe at or before the target).
            inp.seek(max(0, int((span.start_s - 1.0) / vin.time_base)), stream=vin, backward=True)
            streams = [vin] + ([ain] if ain is not None else [])
            video_done, audio_done = False, ain is None
            audio_pts = 0
            for packet in inp.demux(*streams):
                # Audio that ends early must not make us read the rest of the film.
                if video_done and packet.pts is not None and _packet_time(packet) > span.end_s + 2:
                    break
                if packet.stream.type == "video" and not video_done:
                    for frame in packet.decode():
                        t = _time(frame, vin)
                        if t is None or t < span.start_s - 1e-6:
                            continue
                        if t >= span.end_s - 1e-6:
                            video_done = True
                            break
                        pic = _upright(frame, size, rotation)
                        pic.pts, pic.time_base = written, Fraction(1) / rate
                        for p in vout.encode(pic):
                            dst.mux(p)
                        written += 1
                elif packet.stream.type == "audio" and not audio_done and aout is not None:
                    for frame in packet.decode():
                        t = _time(frame, packet.stream)
                        if t is None or t < span.start_s - 0.05:
                            continue
                        if t >= span.end_s:
                            audio_done = True
                            break
                        for r in resampler.resample(frame):
                            r.pts, r.time_base = audio_pts, Fraction(1, 48000)
                            audio_pts += r.samples
                            for p in aout.encode(r):
                                dst.mux(p)
                if video_done and audio_done:
                    break
            for p in vout.encode(None):
                dst.mux(p)
            if aout is not None:
                for p in aout.encode(None):
                    dst.mux(p)
    if written == 0:
        out.unlink(missing_ok=True)
        raise VideoError(str(source), f"no frame between {span.start_s:.2f} s and {span.end_s:.2f} s")
    return out


def _upright(frame: av.VideoFrame, size: tuple[int, int], rotation: int) -> av.VideoFrame:
    """``frame`` scaled to the display ``size`` (width, height) and turned upright, in yuv420p.

    Unrotated frames go straight through swscale; rotated ones are scaled on their side, turned as RGB
    (``DecodedFrame.rgb``) and converted back, which costs little at preview sizes."""
    if rotation == 0:
        return frame.reformat(width=size[0], height=size[1], format="yuv420p")
    rgb = DecodedFrame(0, 0.0, frame, rotation).rgb(*size)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


def _time(frame: av.frame.Frame, stream: av.stream.Stream) -> float | None:
    if frame.pts is None:
        return None
    return float(frame.pts * stream.time_base) - _start(stream)


def _packet_time(packet: av.packet.Packet) -> float:
    return float(packet.pts * packet.stream.time_base) - _start(packet.stream)


def _start(stream: av.stream.Stream) -> float:
    """The stream's start time in seconds (titles' frame times count from the first frame)."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def clip_frame_count(path: str | Path) -> int:
    """Frames in a clip (for checks and tests)."""
    with open_container(path) as c:
        return sum(1 for _ in c.decode(video=0))
