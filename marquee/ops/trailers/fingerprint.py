"""Per-frame fingerprints for matching trailer shots back to film shots.

A trailer re-frames (crop, letterbox, pillarbox), re-grades (gamma, contrast, saturation, tint),
re-encodes at another size and prints text over its shots. The fingerprint is built to survive that:

* **Geometry.** Black bars are removed first (the film's once for the whole film, a trailer shot's per
  shot). The film's fingerprint then covers only a fixed central window (``WINDOW`` of its width and
  height) of the picture. Any trailer framing that is a centred crop of at least ``WINDOW`` of each
  side still shows that window in full, so the trailer side can cut the *same* window out of its own
  picture once it guesses the crop (``window_in_trailer``): its aspect ratio gives the ratio of the
  horizontal and vertical crops, a few zoom hypotheses give the rest.
* **Grading.** The window is reduced to a ``GRID`` of luma cell means and replaced by the *ranks* of the
  cells, centred and scaled to unit length. Ranks do not change under any monotonic tone curve
  (gamma, contrast, brightness, fades), luma barely changes with saturation and tint, and a dot
  product of two fingerprints is Spearman's rank correlation of the two grids.
* **Distinctiveness.** Codes are whitened with the film's own statistics (``whitening``), so the
  layout every frame shares stops counting as similarity.
* **Structure.** Ranks mean something only where the cells really differ. A black, white or flat frame,
  a sky (a smooth gradient) or a title card (text on a plain ground) has ranks that encoder noise, or the
  order of the cells in memory, decides, and two such frames from different films "match". So every
  frame's cells are first measured (``structure``): enough of them must stand apart from the frame's
  commonest level (``MIN_OFF_GROUND``) and from their neighbourhood's median (``MIN_DETAIL``), by more
  than ``STRUCTURE_LEVEL``. Frames that fail carry no fingerprint (a zero code: similarity 0 with
  anything), are left out of the film's whitening statistics, and on the trailer side are left out of
  voting and verification. Ties between cells get their mean rank, so a plain area says nothing rather
  than a raster-order ramp.
* **Size.** 144 cells stored as int8: 144 bytes a frame, 25 MB for a two-hour film at 24 fps (plus a
  2-byte structure score).

Cell means are exact area averages over fractional cell bounds (bilinear interpolation of the
integral image), so the film (64x36 thumbnails) and the trailer (128x72) sample the same areas.

``FilmFingerprinter`` is a streaming consumer (``process(index, small_rgb)``, ``finish()``), so it can
ride in the one decode pass that detects shots (``marquee.ops.shots.scan``); it keeps only the fingerprints
and, until it has decided where the film's bars are, a bounded buffer of small luma frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

#: Cells across and down of the fingerprint grid.
GRID = (16, 9)
#: The film's fingerprinted window: this share of the active width and height, centred.
WINDOW = 0.6
#: Size of the film thumbnails the fingerprinter wants (width, height).
FILM_FRAME_SIZE = (64, 36)
#: Luma above which a row or column is picture rather than bar (bars are near 0 after decoding).
BAR_LUMA = 28.0
#: Frames (with some picture in them) looked at before the film's bars are decided.
BAR_FRAMES = 240
#: Hard cap on buffered frames while deciding (a film opening on a long black stretch).
BAR_BUFFER_MAX = 1500

#: Regularisation of the whitening: added to every eigenvalue, as a share of their mean (0 is full
#: whitening, which amplified noise on short films; chosen on bench pairs among 0.02-1).
WHITEN_EPS = 0.3
#: Whitened unit vectors are stored as int8 times this (components beyond +-0.33 are clipped; they
#: are about N(0, 1/144)).
CODE_SCALE = 380.0

#: What stored fingerprints were made with: a change to any of these makes them unusable, and the
#: matcher then decodes the film again rather than compare codes of two kinds.
FINGERPRINTER = (
    f"rank-{GRID[0]}x{GRID[1]}-window{WINDOW}-{FILM_FRAME_SIZE[0]}x{FILM_FRAME_SIZE[1]}"
    f"-bars{BAR_FRAMES}-eps{WHITEN_EPS}-scale{CODE_SCALE:g}"
)

#: Luma levels (0-255) by which a cell must differ to count as structure: above the encoder noise of a
#: cell mean (about a level) and below the smallest steps of a dark but real picture.
STRUCTURE_LEVEL = 2.0
#: Share of cells that must lie outside the frame's commonest band of +-STRUCTURE_LEVEL. Chosen on
#: generated data and the shared clips that are neither the Sintel trailer nor Big Buck Bunny: 233 drawn
#: ``realistic`` title cards on plain grounds reach 0.48 (a few credits on a colour), frames of real
#: shots in the trailers of bench/trailers.py seeds 0 and 1 are at least 0.59, and the lowest value
#: that still excludes every card keeps the most of dark real footage (the darkest clip, a stage in the
#: dark, loses 1% of its frames at 0.5, 8% at 0.55). At 0.55 a held-out pair (seed 8, since counted as
#: calibration) lost a dark close-up whose grade had crushed half of it to black (0.53). A dense billing
#: block has more than this; it is fingerprinted and left to the similarity threshold.
MIN_OFF_GROUND = 0.5
#: Share of cells that must differ from the median of their 5x5 neighbourhood: smooth gradients (a sky,
#: a lit wall) have none; real frames in generated trailers have at least 0.32 (1% under 0.37). A
#: strong vignette on a plain title card is not smooth enough at this grid: a quarter of such cards
#: pass both tests (and then face the similarity threshold like any picture).
MIN_DETAIL = 0.15

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the image it refers to


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an HxWx3 uint8 RGB image, float32."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def cell_means(img: np.ndarray, box: Box, grid: tuple[int, int] = GRID) -> np.ndarray:
    """Mean of ``img`` (HxW float) over each cell of a ``grid`` laid over ``box`` (fractional pixels)."""
    h, w = img.shape
    integ = cv2.integral(img.astype(np.float64))  # (h+1) x (w+1)
    x0, y0, x1, y1 = box
    xs = np.clip(np.linspace(x0, x1, grid[0] + 1), 0, w)
    ys = np.clip(np.linspace(y0, y1, grid[1] + 1), 0, h)
    xi = np.minimum(np.floor(xs).astype(int), w - 1)
    yi = np.minimum(np.floor(ys).astype(int), h - 1)
    fx, fy = xs - xi, ys - yi
    # bilinear interpolation of the integral image at (ys, xs): exact for a pixel-constant image
    a = integ[yi][:, xi]
    b = integ[yi][:, xi + 1]
    c = integ[yi + 1][:, xi]
    d = integ[yi + 1][:, xi + 1]
    s = (a * (1 - fx) + b * fx) * (1 - fy)[:, None] + (c * (1 - fx) + d * fx) * fy[:, None]
    sums = s[1:, 1:] - s[:-1, 1:] - s[1:, :-1] + s[:-1, :-1]
    area = np.outer(np.diff(ys), np.diff(xs))
    return (sums / np.maximum(area, 1e-9)).astype(np.float32)


_POSITIONS = np.arange(GRID[0] * GRID[1], dtype=np.float32)


def rank_descriptor(cells: np.ndarray) -> np.ndarray:
    """Centred, unit-length ranks of the cells, as int8 (x127): the dot product / 127^2 is Spearman's rho.

    Equal cells share their mean rank, so a plain area contributes nothing (first-come ranks would give
    every plain area the same raster-order ramp, which "matches" any other plain area).
    """
    flat = cells.ravel()
    order = np.argsort(flat, kind="stable")
    v = flat[order]
    new = v[1:] != v[:-1]
    ranks = np.empty(flat.size, np.float32)
    if new.all():
        ranks[order] = _POSITIONS[: flat.size] if flat.size <= len(_POSITIONS) else np.arange(flat.size)
    else:  # ties: each run of equal cells gets the mean of its positions
        starts = np.flatnonzero(np.r_[True, new])
        mids = (starts + np.r_[starts[1:], flat.size] - 1) / 2.0
        ranks[order] = np.repeat(mids, np.diff(np.r_[starts, flat.size]))
    ranks -= ranks.mean()
    ranks /= max(float(np.linalg.norm(ranks)), 1e-9)
    return np.round(ranks * 127.0).clip(-127, 127).astype(np.int8)


def structure(cells: np.ndarray, valid: np.ndarray | None = None) -> float:
    """How much a frame's cells can say: 1 or more means enough structure to fingerprint.

    ``min(off-ground share / MIN_OFF_GROUND, detail share / MIN_DETAIL)``: the share of cells further than
    ``STRUCTURE_LEVEL`` from the frame's commonest level (its plain ground: black, white, a flat colour,
    the ground of a title card), and the share further than that from the median of their 5x5
    neighbourhood (which follows smooth gradients: skies, lighting falloff, a vignette). ``valid``
    (a boolean grid) leaves cells out, e.g. those under a caption.
    """
    c = np.ascontiguousarray(cells, np.float32)
    ok = np.ones(c.shape, bool) if valid is None else np.asarray(valid, bool)
    n = int(ok.sum())
    if n < 8:
        return 0.0
    v = np.sort(c[ok])
    in_band = np.searchsorted(v, v + 2 * STRUCTURE_LEVEL, side="right") - np.arange(n)
    off_ground = 1.0 - float(in_band.max()) / n
    med = cv2.medianBlur(c, 5) if min(c.shape) >= 3 else np.full_like(c, float(np.median(v)))
    detail = float((np.abs(c - med) > STRUCTURE_LEVEL)[ok].mean())
    return min(off_ground / MIN_OFF_GROUND, detail / MIN_DETAIL)


def raw_descriptor(cells: np.ndarray) -> np.ndarray:
    """The cells themselves (0..255 as uint8 -> int8 offset): the naive baseline, no normalisation."""
    return (np.round(cells.ravel()).clip(0, 255) - 128).astype(np.int8)


def active_box(max_luma_rows: np.ndarray, max_luma_cols: np.ndarray, min_share: float = 0.5) -> Box:
    """The picture inside black bars from per-row and per-column maxima of luma over many frames.

    One row/column more is dropped at each barred edge (resampling smears the bar edge). When what is
    left is under ``min_share`` of a side (a title card: text on black), no bars are assumed.
    """
    h, w = len(max_luma_rows), len(max_luma_cols)
    rows = np.nonzero(max_luma_rows > BAR_LUMA)[0]
    cols = np.nonzero(max_luma_cols > BAR_LUMA)[0]
    if len(rows) == 0 or len(cols) == 0:
        return 0.0, 0.0, float(w), float(h)
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    r0, c0 = r0 + (r0 > 0), c0 + (c0 > 0)
    r1, c1 = r1 - (r1 < h), c1 - (c1 < w)
    if (r1 - r0) < min_share * h:
        r0, r1 = 0, h
    if (c1 - c0) < min_share * w:
        c0, c1 = 0, w
    return float(c0), float(r0), float(c1), float(r1)


def central_window(box: Box, wx: float, wy: float) -> Box:
    """The centred sub-box of ``box`` covering ``wx`` of its width and ``wy`` of its height."""
    x0, y0, x1, y1 = box
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    return cx - wx * bw / 2, cy - wy * bh / 2, cx + wx * bw / 2, cy + wy * bh / 2


def window_in_trailer(trailer_aspect: float, film_aspect: float, zoom: float) -> tuple[float, float]:
    """Where the film's window lies in a trailer picture, as shares of its active width and height.

    The trailer picture is taken to be a centred crop of the film picture covering ``fx`` of its width
    and ``fy`` of its height, with ``fx / fy`` fixed by the aspect ratios and ``max(fx, fy) = zoom``.
    """
    r = trailer_aspect / film_aspect
    fx, fy = (zoom, zoom / r) if r >= 1 else (zoom * r, zoom)
    return min(1.0, WINDOW / fx), min(1.0, WINDOW / fy)


def whitening(codes: np.ndarray, sample: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and whitening matrix of a film's rank codes (PCA whitening, regularised by ``WHITEN_EPS``).

    Film frames share a layout (bright middle, dark corners, sky on top), so two unrelated frames
    already correlate at 0.3-0.6, as does a title card with anything. Removing the film's mean code and
    evening out the variance of its principal directions (partly: ``WHITEN_EPS``) leaves more of what
    tells frames apart. On the first generated pairs (bench/trailers.py) the best title card fell
    from 0.60 to 0.30 while the weakest true match went from 0.67 to 0.44 (before caption masking).
    """
    if len(codes) > sample:  # sample first: a two-hour film's codes as float64 would be 200 MB
        codes = codes[np.random.default_rng(seed).choice(len(codes), sample, replace=False)]
    x = codes.astype(np.float64) / 127.0
    mu = x.mean(axis=0)
    if len(x) < 2:
        return mu.astype(np.float32), np.eye(x.shape[1], dtype=np.float32)
    lam, u = np.linalg.eigh(np.cov((x - mu).T))
    lam = np.maximum(lam, 0.0)
    w = (u * (lam + WHITEN_EPS * max(float(lam.mean()), 1e-12)) ** -0.5) @ u.T
    return mu.astype(np.float32), w.astype(np.float32)


def project(codes: np.ndarray, mean: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Whitened, unit-length float32 versions of int8 rank codes."""
    y = (codes.astype(np.float32) / 127.0 - mean) @ transform
    return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-6)


@dataclass
class FilmFingerprints:
    """Fingerprints of every film frame, the film's active box and aspect ratio.

    ``codes`` (N x 144 int8) are whitened unit vectors times ``scale`` in ``rank`` mode (a query goes
    through ``project`` with ``mean`` and ``transform`` first), raw luma cells in ``raw`` mode.
    """

    codes: np.ndarray
    box: Box  # in FILM_FRAME_SIZE pixels
    aspect: float  # display aspect ratio of the active picture
    mode: str = "rank"
    mean: np.ndarray | None = None
    transform: np.ndarray | None = None
    scale: float = 1.0
    #: Per frame, ``structure`` of its cells (float16; None: not measured, every frame counts). Frames
    #: under 1 have zero codes in ``rank`` mode.
    structure: np.ndarray | None = None

    @property
    def frame_count(self) -> int:
        return len(self.codes)

    @property
    def textured(self) -> np.ndarray:
        """Per frame, whether it has enough structure to carry a fingerprint."""
        if self.structure is None:
            return np.ones(len(self.codes), bool)
        return self.structure >= 1.0

    def to_bytes(self, frame_times: np.ndarray) -> bytes:
        """These fingerprints and every frame's time as one ``.npz`` (what the shots pass stores for the
        trailer matcher: 146 bytes a frame, about 26 MB for a two-hour film)."""
        import io

        arrays: dict[str, np.ndarray] = {
            "codes": self.codes,
            "box": np.asarray(self.box, np.float64),
            "meta": np.asarray([self.aspect, self.scale], np.float64),
            "mode": np.asarray(self.mode),
            "frame_times": np.asarray(frame_times, np.float64),
        }
        for name in ("mean", "transform", "structure"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[FilmFingerprints, np.ndarray]:
        """What ``to_bytes`` wrote: the fingerprints and the frame times."""
        import io

        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            box = tuple(float(v) for v in z["box"])
            aspect, scale = (float(v) for v in z["meta"])
            fp = cls(
                z["codes"],
                (box[0], box[1], box[2], box[3]),
                aspect,
                str(z["mode"]),
                z.get("mean"),
                z.get("transform"),
                scale,
                z.get("structure"),
            )
            return fp, z["frame_times"]

    def query(self, codes: np.ndarray) -> np.ndarray:
        """Trailer codes (int8, this mode) as float32 vectors comparable with ``codes / scale``."""
        if self.mode == "rank" and self.mean is not None and self.transform is not None:
            return project(codes, self.mean, self.transform)
        return codes.astype(np.float32)


class _Rows:
    """An append-only array of fixed-width rows kept in blocks: no per-row Python object (a list of
    180,000 small arrays costs twice their bytes), one copy at the end."""

    def __init__(self, width: int, dtype: Any, block: int = 8192) -> None:
        self.width, self.dtype, self.block = width, dtype, block
        self._full: list[np.ndarray] = []
        self._cur = np.empty((block, width), dtype)
        self._n = 0

    def append(self, row: Any) -> None:
        if self._n == len(self._cur):
            if self._n:
                self._full.append(self._cur)
            self._cur, self._n = np.empty((self.block, self.width), self.dtype), 0
        self._cur[self._n] = row
        self._n += 1

    def take(self) -> np.ndarray:
        """All rows as one (n, width) array; the blocks are released."""
        out = (
            np.concatenate([*self._full, self._cur[: self._n]]) if self._full else self._cur[: self._n].copy()
        )
        self._full, self._cur, self._n = [], np.empty((0, self.width), self.dtype), 0
        return out


class FilmFingerprinter:
    """Streaming fingerprints of a film: ``process`` every frame in order, then ``finish``.

    ``display_aspect`` is the film's display aspect ratio (width / height of the picture as shown);
    frames arrive as ``frame_size`` RGB thumbnails. The bars are decided on the first ``BAR_FRAMES``
    frames with picture (films keep their bars), which are buffered meanwhile. ``mode="raw"`` gives the
    naive baseline: the whole frame, no bar removal, raw luma.
    """

    frame_size = FILM_FRAME_SIZE

    def __init__(self, display_aspect: float, mode: str = "rank") -> None:
        if mode not in ("rank", "raw"):
            raise ValueError(f"unknown fingerprint mode {mode!r}")
        self.display_aspect = display_aspect
        self.mode = mode
        self._pending: list[np.ndarray] = []
        self._seen_picture = 0
        self._row_max: np.ndarray | None = None
        self._col_max: np.ndarray | None = None
        self._box: Box | None = None
        self._codes = _Rows(GRID[0] * GRID[1], np.int8)  # 144 bytes a frame, in blocks
        self._structure = _Rows(1, np.float16)
        self._next = 0

    def process(self, index: int, small_rgb: np.ndarray) -> None:
        if index != self._next:
            raise ValueError(f"frames must arrive in order: expected {self._next}, got {index}")
        self._next += 1
        y = luma(small_rgb)
        if self._box is not None:
            self._codes.append(self._code(y))
            return
        self._pending.append(y)
        rm, cm = y.max(axis=1), y.max(axis=0)
        self._row_max = rm if self._row_max is None else np.maximum(self._row_max, rm)
        self._col_max = cm if self._col_max is None else np.maximum(self._col_max, cm)
        self._seen_picture += float(y.mean()) > 20.0
        if self._seen_picture >= BAR_FRAMES or len(self._pending) >= BAR_BUFFER_MAX:
            self._decide()

    def _decide(self) -> None:
        h, w = self._pending[0].shape if self._pending else self.frame_size[::-1]
        if self.mode == "raw" or self._row_max is None or self._col_max is None:
            self._box = (0.0, 0.0, float(w), float(h))
        else:
            self._box = active_box(self._row_max, self._col_max)
        for y in self._pending:
            self._codes.append(self._code(y))
        self._pending = []

    def _code(self, y: np.ndarray) -> np.ndarray:
        assert self._box is not None
        if self.mode == "raw":
            return raw_descriptor(cell_means(y, self._box))
        cells = cell_means(y, central_window(self._box, WINDOW, WINDOW))
        self._structure.append(np.float16(structure(cells)))
        return rank_descriptor(cells)

    def finish(self) -> FilmFingerprints:
        if self._box is None:
            self._decide()
        assert self._box is not None
        x0, y0, x1, y1 = self._box
        w, h = self.frame_size
        aspect = self.display_aspect * ((x1 - x0) / w) / ((y1 - y0) / h)
        codes = self._codes.take()
        if self.mode == "raw" or len(codes) == 0:
            return FilmFingerprints(codes, self._box, float(aspect), self.mode)
        struct = self._structure.take()[:, 0]
        textured = struct >= 1.0
        # the film's statistics come from frames that carry a fingerprint (black stretches, credits on
        # black and the like would otherwise make their own ramp a principal direction)
        mean, transform = whitening(codes[textured] if textured.sum() >= 2 else codes)
        for s in range(0, len(codes), 8192):  # in place, chunk by chunk: bounded extra memory
            y = project(codes[s : s + 8192], mean, transform) * textured[s : s + 8192, None]
            codes[s : s + 8192] = np.round(y * CODE_SCALE).clip(-127, 127).astype(np.int8)
        return FilmFingerprints(
            codes, self._box, float(aspect), self.mode, mean, transform, CODE_SCALE, struct
        )
