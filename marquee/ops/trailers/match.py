"""Which film shot each trailer shot comes from: the free labels of trailer-moment learning.

A trailer is cut from its film, so every trailer shot (title cards aside) shows a stretch of one film
shot, re-framed, re-graded, re-encoded, perhaps sped up or slowed down, perhaps under text. Matching
works on per-frame fingerprints (``fingerprint.py``: rank-normalised luma grids of a central window,
bars removed) in three steps per trailer shot:

1. **Framing hypotheses.** The shot's bars are found from the maxima of its frames; its aspect ratio
   against the film's fixes the ratio of the horizontal to the vertical crop, and ``ZOOMS`` try a few
   crop sizes (plus the uncropped frame when bars were found). Each gives the trailer shot's frames
   fingerprinted over the same film window. Cells under captions (very bright pixels with a strong
   local contrast) are set to the frame's median before ranking, so a title over a shot says nothing
   rather than something wrong. Frames without enough structure to fingerprint (black, white, flat,
   sky, text on a plain ground: ``fingerprint.structure``) are dropped here; a shot with under
   ``MIN_TEXTURED`` of its frames left is reported unmatched with that reason, whatever it resembles.
   The film's such frames have zero codes, so nothing can match them either.
2. **Retrieval and voting.** Every trailer frame's ``TOP_K`` most similar film frames vote, for each
   speed in ``SPEEDS``, for the film frame where the shot would start (a Hough transform of the
   line ``film = start + speed * k``).
3. **Temporal verification.** The best-voted (start, speed) pairs are refined and scored by the robust
   mean similarity along the line (the best ``KEEP`` share of frames, so a caption popping up or a
   frame of a neighbouring transition does not sink a shot). The best hypothesis wins; a score under
   ``THRESHOLD`` (title cards, shots not in the film) leaves the shot unmatched. Every unmatched shot
   says why (``reason``).

Each trailer shot also keeps its similarity to its best few film shots (``candidates``), which
``labels.soft_labels`` spreads into per-film-shot labels as in the paper.

Cost: one matrix product of a trailer shot's frames (at most ``MAX_QUERY_FRAMES``) against the film's
fingerprints per hypothesis (144-dimensional codes), about 3x10^11 multiply-adds for a two-hour film
and a two-minute trailer, in film chunks; memory is the film's codes (25 MB for two hours) plus one
shot's similarity rows.

``match_files`` decodes each file once: ``FrameTap`` hands ``scan_video``'s frames (in the place of a
keyframe spool) to the fingerprinter while the shot detector sees the same pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from marquee.ops.progress import ProgressFactory, ProgressFn, no_progress
from marquee.ops.shots.registry import make_detector
from marquee.ops.shots.scan import ScanResult, scan_video
from marquee.ops.timeline import Shot, Timeline
from marquee.ops.trailers.fingerprint import (
    FilmFingerprinter,
    FilmFingerprints,
    active_box,
    cell_means,
    central_window,
    rank_descriptor,
    raw_descriptor,
    structure,
    window_in_trailer,
)
from marquee.ops.video import DecodedFrame, probe_video

#: Size at which trailer frames are kept (luma) for fingerprinting under framing hypotheses.
TRAILER_FRAME_SIZE = (128, 72)
#: Crop hypotheses: the share of the film picture's larger relative side the trailer shows.
ZOOMS = (1.0, 0.93, 0.87)
SPEEDS = np.round(np.arange(0.5, 1.5001, 0.05), 3)
TOP_K = 8
#: Score given up per unit of speed away from 1 when choosing a line (ties on static pictures go to 1x).
SPEED_PRIOR = 0.06
#: Share of a shot's frames (the most similar) that its score averages.
KEEP = 0.8
#: Calibrated on generated pairs (bench/trailers.py seeds 0-2): true matches scored 0.44-1.0 (the lowest:
#: short shots under big captions), title cards at most 0.30; across 9 pairs title cards reach 0.35.
THRESHOLD = 0.37
#: The naive baseline's threshold (raw luma thumbnails: 1 - RMS difference / 64).
RAW_THRESHOLD = 0.75
#: Caption pixels: luma above TEXT_BRIGHT where the 3x3 range exceeds TEXT_CONTRAST; a cell with more
#: than TEXT_CELL_SHARE of them is left out of a trailer frame's ranks.
TEXT_BRIGHT = 200.0
TEXT_CONTRAST = 60.0
TEXT_CELL_SHARE = 0.1
#: At most this many frames of a trailer shot (evenly spread) are compared: bounds time and memory when
#: a long trailer shot meets a long film.
MAX_QUERY_FRAMES = 24
#: A part of a detected trailer shot matched on its own must have this many frames.
MIN_PART = 8
#: ... and its frames must score under this share of the threshold on the line of the rest.
SPLIT_BELOW = 0.6
#: Size of one block of the retrieval's similarity product (rows x film frames, float32).
BLOCK_BYTES = 16 << 20
#: Share of a trailer shot's sampled frames that must have enough structure to fingerprint
#: (``fingerprint.structure``); a shot under it (a title card, a black or white or sky shot) is never
#: matched. At least ``MIN_TEXTURED_FRAMES`` such frames, too.
MIN_TEXTURED = 0.5
MIN_TEXTURED_FRAMES = 3


@dataclass
class TrailerShotMatch:
    """Where one trailer shot comes from (film fields are None when it is unmatched)."""

    trailer_shot_id: int
    trailer_start_frame: int
    trailer_end_frame: int
    film_shot_id: int | None
    film_start_frame: int | None
    film_end_frame: int | None
    similarity: float
    speed: float | None
    matched: bool
    #: (film shot id, similarity) of the best few film shots, best first: the soft-label evidence.
    candidates: list[tuple[int, float]] = field(default_factory=list)
    framing: str = ""
    #: 0, or 1 for the second part of a detected trailer shot that turned out to hold two shots (a
    #: missed cut or dissolve in the trailer): both rows carry the detected shot's id.
    part: int = 0
    #: Why an unmatched shot is unmatched ("" when matched): too little structure to fingerprint, a best
    #: similarity under the threshold, or an empty film.
    reason: str = ""
    #: Share of the shot's sampled frames with enough structure to fingerprint.
    textured: float = 1.0


# --------------------------------------------------------------------------------------------------------
# Similarity


def _film_rows(film: FilmFingerprints, idx: np.ndarray | slice) -> np.ndarray:
    """Film fingerprints as float32 vectors comparable with ``film.query`` (any index shape)."""
    return film.codes[idx].astype(np.float32) / film.scale


def _block_similarity(q: np.ndarray, f: np.ndarray, mode: str) -> np.ndarray:
    """All pairs: (R x D) queries against (C x D) film rows."""
    if mode == "rank":
        return q @ f.T
    d2 = (q * q).sum(1)[:, None] + (f * f).sum(1)[None, :] - 2.0 * (q @ f.T)
    return 1.0 - np.sqrt(np.maximum(d2, 0) / q.shape[1]) / 64.0


def _pair_similarity(q: np.ndarray, f: np.ndarray, mode: str) -> np.ndarray:
    """Row by row: ``q`` (L x D) against ``f`` (... x L x D), giving (... x L)."""
    if mode == "rank":
        return np.einsum("...ld,ld->...l", f, q)
    return 1.0 - np.sqrt(((f - q) ** 2).mean(axis=-1)) / 64.0


def retrieve(q: np.ndarray, film: FilmFingerprints, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar film frames of every query row: (R x k) indices and similarities.

    One matrix product per chunk of the film for all rows at once (every trailer frame under every
    framing hypothesis), keeping a running top-k, so memory is one (rows x chunk) block.
    """
    n_r, n_f = len(q), film.frame_count
    k = max(1, min(k, n_f))
    best_v = np.full((n_r, k), -np.inf, np.float32)
    best_i = np.zeros((n_r, k), np.int64)
    chunk = int(np.clip(BLOCK_BYTES // (4 * max(n_r, 1)), 256, 1 << 16))
    for s in range(0, n_f, chunk):
        sim = _block_similarity(q, _film_rows(film, slice(s, s + chunk)), film.mode)
        kk = min(k, sim.shape[1])
        idx = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        vals = np.concatenate([best_v, np.take_along_axis(sim, idx, axis=1)], axis=1)
        alli = np.concatenate([best_i, idx + s], axis=1)
        sel = np.argpartition(-vals, k - 1, axis=1)[:, :k]
        best_v = np.take_along_axis(vals, sel, axis=1)
        best_i = np.take_along_axis(alli, sel, axis=1)
    return best_i, best_v


def _robust_means(v: np.ndarray) -> np.ndarray:
    """Mean of the best ``KEEP`` share of the last axis."""
    keep = max(1, math.ceil(KEEP * v.shape[-1]))
    return -np.sort(-v, axis=-1)[..., :keep].mean(axis=-1)


def align(
    q: np.ndarray, ks: np.ndarray, top_i: np.ndarray, top_v: np.ndarray, film: FilmFingerprints
) -> tuple[float, int, float]:
    """Best (score, start film frame, speed) of a line ``film = start + floor(speed * k)``.

    Each retrieved film frame of trailer frame ``ks[i]`` votes, per speed, for a start (Hough); the
    best-voted lines, and their neighbours in start and speed, are scored exactly: the robust mean
    similarity of the trailer frames to the film frames on the line, less a small prior for 1x.
    """
    n_q, n_f = len(ks), film.frame_count
    speeds = SPEEDS if n_q > 2 else np.array([1.0])
    starts = np.round(top_i[None] - speeds[:, None, None] * ks[None, :, None]).astype(np.int64)
    weights = np.broadcast_to(np.maximum(top_v, 0)[None], starts.shape).ravel()
    rows = np.broadcast_to(np.arange(len(speeds))[:, None, None], starts.shape).ravel()
    starts = starts.ravel()
    keys, ws = [], []
    for d in (-1, 0, 1):  # a vote counts for its neighbours too: rounding of the start
        s = starts + d
        ok = (s >= 0) & (s < n_f)
        keys.append(rows[ok] * n_f + s[ok])
        ws.append(weights[ok])
    all_keys = np.concatenate(keys)
    if not len(all_keys):
        return float(_robust_means(top_v.max(axis=1))), int(top_i[0, 0]), 1.0
    uniq, inv = np.unique(all_keys, return_inverse=True)
    votes = np.bincount(inv, weights=np.concatenate(ws))
    lines: set[tuple[int, float]] = set()
    for key in uniq[np.argsort(-votes)[:6]]:
        v0, a0 = float(speeds[key // n_f]), int(key % n_f)
        vs = (v0,) if n_q <= 2 else np.clip(v0 + np.array([-0.04, -0.02, 0, 0.02, 0.04]), 0.45, 1.55)
        lines.update((a, round(float(v), 4)) for v in vs for a in range(a0 - 2, a0 + 3))
    cand = sorted(lines)
    a_arr = np.array([a for a, _ in cand], np.int64)
    v_arr = np.array([v for _, v in cand])
    frames = a_arr[:, None] + np.floor(v_arr[:, None] * ks[None, :] + 1e-9).astype(np.int64)
    ok = (frames[:, 0] >= 0) & (frames[:, -1] < n_f)
    if not ok.any():  # the film is shorter than the shot: best frames alone
        return float(_robust_means(top_v.max(axis=1))), int(top_i[0, 0]), 1.0
    frames, a_arr, v_arr = frames[ok], a_arr[ok], v_arr[ok]
    scores = _robust_means(_pair_similarity(q, _film_rows(film, frames), film.mode))
    # a prior for normal speed: on a static picture every speed fits equally well
    best = int(np.argmax(scores - SPEED_PRIOR * np.abs(v_arr - 1.0)))
    return float(scores[best]), int(a_arr[best]), float(v_arr[best])


# --------------------------------------------------------------------------------------------------------
# Matching shots


def _text_mask(y: np.ndarray) -> np.ndarray:
    """Caption-like pixels: very bright with a strong local contrast (strokes of light text with an
    outline or shadow), grown by a pixel. Bright edges of real pictures get caught too: masking a few
    cells of a frame costs its fingerprint little."""
    k = np.ones((3, 3), np.uint8)
    contrast = cv2.dilate(y, k) - cv2.erode(y, k)
    hit = ((y > TEXT_BRIGHT) & (contrast > TEXT_CONTRAST)).astype(np.uint8)
    return cv2.dilate(hit, k).astype(np.float32)


def _caption_cells(text: np.ndarray) -> np.ndarray:
    """Cells (grid of caption-pixel shares) treated as under a caption; none when over half would be."""
    hit = text > TEXT_CELL_SHARE
    return hit if hit.any() and hit.mean() <= 0.5 else np.zeros_like(hit)


def _unmask(cells: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Cells under captions set to the median of the others, so that their ranks say nothing."""
    hit = _caption_cells(text)
    if not hit.any():
        return cells
    out = cells.copy()
    out[hit] = float(np.median(cells[~hit]))
    return out


def _trailer_code(y: np.ndarray, text: np.ndarray, box: Any) -> tuple[np.ndarray, float]:
    """A trailer frame's rank code over ``box``, captions masked, and its structure (captions left out)."""
    cells, caption = cell_means(y, box), cell_means(text, box)
    return rank_descriptor(_unmask(cells, caption)), structure(cells, ~_caption_cells(caption))


def _hypotheses(frames: np.ndarray, trailer_aspect: float, film: FilmFingerprints) -> list[tuple[str, Any]]:
    """(name, list of boxes... ) framing hypotheses for one trailer shot: each a box in its frames."""
    h, w = frames.shape[1:]
    full = (0.0, 0.0, float(w), float(h))
    if film.mode == "raw":
        return [("raw", full)]
    box = active_box(frames.max(axis=(0, 2)), frames.max(axis=(0, 1)))
    x0, y0, x1, y1 = box
    aspect = trailer_aspect * ((x1 - x0) / w) / ((y1 - y0) / h)
    out = []
    for z in ZOOMS:
        wx, wy = window_in_trailer(aspect, film.aspect, z)
        out.append((f"bars{'' if box == full else '-removed'}-zoom{z:g}", central_window(box, wx, wy)))
    if box != full:
        wx, wy = window_in_trailer(trailer_aspect, film.aspect, 1.0)
        out.append(("bars-kept", central_window(full, wx, wy)))
    return out


@dataclass
class _Query:
    """One trailer shot under one framing hypothesis: its sampled frames' fingerprints."""

    shot: int  # index into the trailer shots
    name: str
    ks: np.ndarray  # frame positions within the trimmed shot (those with structure)
    rows: slice  # its rows in the stacked query matrix


def _shot_frames(shot: Shot) -> tuple[int, int, np.ndarray]:
    """(frames in the shot, frames trimmed at each end, sampled positions after the trim)."""
    n_full = shot.end_frame - shot.start_frame + 1
    trim = max(0, min(2, (n_full - 4) // 4))  # a frame or two of a neighbouring transition
    n_in = n_full - 2 * trim
    ks = np.unique(np.linspace(0, n_in - 1, min(n_in, MAX_QUERY_FRAMES)).round().astype(np.int64))
    return n_full, trim, ks


def _queries(
    trailer_luma: np.ndarray, trailer_shots: list[Shot], trailer_aspect: float, film: FilmFingerprints
) -> tuple[list[_Query], np.ndarray, list[float]]:
    """Every shot under every framing hypothesis, fingerprinted and projected like the film's frames.

    Only frames with enough structure are kept (rank mode); a shot where under ``MIN_TEXTURED`` of the
    frames have it under the first (widest) hypothesis gets no query at all. Also returns each shot's
    share of frames with structure.
    """
    queries: list[_Query] = []
    blocks: list[np.ndarray] = []
    shares: list[float] = []
    n = 0
    for i, shot in enumerate(trailer_shots):
        _, trim, ks = _shot_frames(shot)
        frames = trailer_luma[shot.start_frame + trim + ks].astype(np.float32)
        text = [_text_mask(y) for y in frames] if film.mode == "rank" else []
        share = 1.0
        for h, (name, box) in enumerate(_hypotheses(frames, trailer_aspect, film)):
            keep = np.ones(len(ks), bool)
            if film.mode == "raw":
                codes = np.stack([raw_descriptor(cell_means(y, box)) for y in frames])
            else:
                coded = [_trailer_code(y, t, box) for y, t in zip(frames, text, strict=True)]
                codes = np.stack([c for c, _ in coded])
                keep = np.array([st >= 1.0 for _, st in coded])
                if h == 0:
                    share = float(keep.mean())
                    if share < MIN_TEXTURED or keep.sum() < min(MIN_TEXTURED_FRAMES, len(ks)):
                        break
                if not keep.any():
                    continue
            blocks.append(film.query(codes[keep]))
            queries.append(_Query(i, name, ks[keep], slice(n, n + int(keep.sum()))))
            n += int(keep.sum())
        shares.append(share)
    q = np.concatenate(blocks) if blocks else np.zeros((0, film.codes.shape[1]), np.float32)
    return queries, q, shares


def _shot_candidates(
    q: np.ndarray,
    top_i: np.ndarray,
    film: FilmFingerprints,
    film_shots: list[Shot],
    shot_of: np.ndarray,
    n: int,
) -> list[tuple[int, float]]:
    """The ``n`` film shots most similar to a trailer shot: robust mean over its frames of the best
    similarity within each film shot, for the film shots its frames retrieved."""
    ids = np.unique(shot_of[top_i.ravel()])
    sims = []
    for j in ids:
        fs = film_shots[int(j)]
        sim = _block_similarity(q, _film_rows(film, slice(fs.start_frame, fs.end_frame + 1)), film.mode)
        sims.append(float(_robust_means(sim.max(axis=1))))
    order = np.argsort(-np.asarray(sims))[:n]
    return [(int(ids[o]), round(sims[o], 4)) for o in order]


def _match_once(
    trailer_luma: np.ndarray,
    trailer_shots: list[Shot],
    trailer_aspect: float,
    film: FilmFingerprints,
    film_shots: list[Shot],
    *,
    threshold: float | None = None,
    n_candidates: int = 5,
) -> list[TrailerShotMatch]:
    """Match every trailer shot as detected (``match_shots`` adds the splitting of merged shots)."""
    n_f = film.frame_count
    shot_of = np.zeros(max(n_f, 1), np.int64)
    for s in film_shots:
        shot_of[s.start_frame : s.end_frame + 1] = s.shot_id
    queries, q, shares = _queries(trailer_luma, trailer_shots, trailer_aspect, film)
    if n_f == 0 or len(q) == 0:
        top_i, top_v = np.zeros((len(q), 1), np.int64), np.zeros((len(q), 1), np.float32)
    else:
        top_i, top_v = retrieve(q, film)
    best: dict[int, tuple[float, int, float, _Query]] = {}
    for qu in queries:
        if n_f == 0:
            break
        score, a, v = align(q[qu.rows], qu.ks, top_i[qu.rows], top_v[qu.rows], film)
        if qu.shot not in best or score > best[qu.shot][0]:
            best[qu.shot] = (score, a, v, qu)
    out = []
    for i, shot in enumerate(trailer_shots):
        n_full, trim, _ = _shot_frames(shot)
        score, a, v, qu = best.get(i, (0.0, 0, 1.0, None))  # type: ignore[arg-type]
        matched = qu is not None and score >= threshold and n_f > 0  # no query: nothing to match, ever
        if matched:
            reason = ""
        elif n_f == 0:
            reason = "empty film"
        elif qu is None:
            reason = f"too little structure to fingerprint ({shares[i]:.0%} of frames have it)"
        else:
            reason = f"no film frames similar enough (best {score:.2f} < {threshold:g})"
        f0 = int(np.clip(round(a - v * trim), 0, n_f - 1)) if n_f else 0
        f1 = int(np.clip(math.floor(a + v * (n_full - 1 - trim) + 1e-9), f0, n_f - 1)) if n_f else 0
        candidates = (
            _shot_candidates(q[qu.rows], top_i[qu.rows], film, film_shots, shot_of, n_candidates)
            if qu is not None and film_shots
            else []
        )
        out.append(
            TrailerShotMatch(
                trailer_shot_id=shot.shot_id,
                trailer_start_frame=shot.start_frame,
                trailer_end_frame=shot.end_frame,
                film_shot_id=int(shot_of[(f0 + f1) // 2]) if matched else None,
                film_start_frame=f0 if matched else None,
                film_end_frame=f1 if matched else None,
                similarity=round(float(score), 4),
                speed=round(v, 3) if matched else None,
                matched=bool(matched),
                candidates=candidates,
                framing=qu.name if qu is not None else "",
                reason=reason,
                textured=round(shares[i], 4),
            )
        )
    return out


def _line_similarities(
    trailer_luma: np.ndarray, trailer_aspect: float, film: FilmFingerprints, shot: Shot, m: TrailerShotMatch
) -> np.ndarray:
    """Similarity of every frame of a matched shot to the film frame its line puts it on (-1 off the film,
    NaN for frames without the structure to say)."""
    n_full, trim, ks = _shot_frames(shot)
    frames = trailer_luma[shot.start_frame : shot.end_frame + 1].astype(np.float32)
    box = dict(_hypotheses(frames[trim + ks], trailer_aspect, film))[m.framing]
    flat = np.zeros(n_full, bool)
    if film.mode == "raw":
        codes = np.stack([raw_descriptor(cell_means(y, box)) for y in frames])
    else:
        coded = [_trailer_code(y, _text_mask(y), box) for y in frames]
        codes = np.stack([c for c, _ in coded])
        flat = np.array([st < 1.0 for _, st in coded])
    assert m.film_start_frame is not None and m.speed is not None
    a = m.film_start_frame
    f = a + np.floor(m.speed * np.arange(n_full) + 1e-9).astype(np.int64)
    ok = (f >= 0) & (f < film.frame_count)
    sims = np.full(n_full, -1.0, np.float32)
    if ok.any():
        sims[ok] = _pair_similarity(film.query(codes[ok]), _film_rows(film, f[ok]), film.mode)
    sims[flat] = np.nan
    return sims


def _split_point(sims: np.ndarray, threshold: float) -> int | None:
    """Where a matched shot stops being explained by its line: the start of an unexplained head or tail
    of at least ``MIN_PART`` frames (that part is then matched on its own), or None. NaN (a frame
    without structure) explains nothing, and a part made only of those is not worth matching."""
    good = np.nan_to_num(sims, nan=-np.inf) >= threshold
    if good.sum() < MIN_PART:
        return None
    first, last = int(np.argmax(good)), len(good) - 1 - int(np.argmax(good[::-1]))
    head, tail = first, len(good) - 1 - last
    if max(head, tail) < MIN_PART:
        return None
    if tail >= head and _mean(sims[last + 1 :]) < SPLIT_BELOW * threshold:
        return last + 1
    if head > tail and _mean(sims[:first]) < SPLIT_BELOW * threshold:
        return first
    return None


def _mean(x: np.ndarray) -> float:
    """Mean of the non-NaN values; +inf when there are none (nothing to say)."""
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else math.inf


def match_shots(
    trailer_luma: np.ndarray,
    trailer_shots: list[Shot],
    trailer_aspect: float,
    film: FilmFingerprints,
    film_shots: list[Shot],
    *,
    threshold: float | None = None,
    n_candidates: int = 5,
) -> list[TrailerShotMatch]:
    """Match every trailer shot (frames of ``trailer_luma``, T x H x W uint8) to the film's shots.

    A detected trailer shot can hold two real ones (the detector missed a cut or a dissolve). When a
    matched shot's line explains only part of it, and the rest (``MIN_PART`` frames or more) matches
    somewhere else on its own, it is reported as two parts (``part`` 0 and 1, same trailer shot id).
    """
    if threshold is None:
        threshold = THRESHOLD if film.mode == "rank" else RAW_THRESHOLD
    kw = {"threshold": threshold, "n_candidates": n_candidates}
    out = _match_once(trailer_luma, trailer_shots, trailer_aspect, film, film_shots, **kw)
    pieces: list[tuple[int, Shot, Shot]] = []
    for i, (shot, m) in enumerate(zip(trailer_shots, out, strict=True)):
        if not m.matched or shot.end_frame - shot.start_frame + 1 < 2 * MIN_PART:
            continue
        cut = _split_point(_line_similarities(trailer_luma, trailer_aspect, film, shot, m), threshold)
        if cut is not None and MIN_PART <= cut <= shot.end_frame - shot.start_frame + 1 - MIN_PART:
            b = shot.start_frame + cut
            pieces.append((i, replace(shot, end_frame=b - 1), replace(shot, start_frame=b)))
    if not pieces:
        return out
    parts = _match_once(
        trailer_luma, [p for _, a, b in pieces for p in (a, b)], trailer_aspect, film, film_shots, **kw
    )
    result: list[list[TrailerShotMatch]] = [[m] for m in out]
    for n, (i, _, _) in enumerate(pieces):
        first, second = parts[2 * n], replace(parts[2 * n + 1], part=1)
        if first.matched and second.matched and first.film_shot_id != second.film_shot_id:
            result[i] = [first, second]
    return [m for ms in result for m in ms]


# --------------------------------------------------------------------------------------------------------
# Plain files


class FrameTap:
    """Feeds each frame of ``scan_video``'s one decode pass to consumers, as ``size`` RGB thumbnails.

    It stands where ``scan_video`` takes a keyframe spool (``offer`` every frame, ``close`` at the end),
    so shot detection and fingerprinting share a single decode of the file. ``seconds`` is the time
    spent here (thumbnails and consumers), which the caller books as fingerprinting.
    """

    def __init__(self, size: tuple[int, int], consumers: list[Callable[[int, np.ndarray], None]]) -> None:
        self.size = size
        self.consumers = consumers
        self.seconds = 0.0

    def offer(
        self, index: int, time_s: float, small: np.ndarray, luma: np.ndarray, frame: DecodedFrame
    ) -> None:
        t0 = time.perf_counter()
        rgb = frame.small_rgb(*self.size)
        for consume in self.consumers:
            consume(index, rgb)
        self.seconds += time.perf_counter() - t0

    def close(self) -> list[Any]:
        return []


class _LumaFrames:
    """Collects a trailer's frames as luma at ``TRAILER_FRAME_SIZE`` (a trailer is minutes long)."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def __call__(self, index: int, rgb: np.ndarray) -> None:
        self.frames.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _scan_through(
    path: str | Path, detector: str, tap: FrameTap, expected: int, progress: ProgressFn | None
) -> ScanResult:
    """The shots of ``path``, its frames handed to ``tap`` in the same decode."""
    return scan_video(
        path,
        detector=make_detector(detector),
        spool=tap,  # type: ignore[arg-type]
        expected_frames=expected,
        progress=progress,
    )


def scan_and_fingerprint(
    path: str | Path,
    detector: str,
    display_aspect: float,
    modes: tuple[str, ...] = ("rank",),
    progress: ProgressFn | None = None,
) -> tuple[ScanResult, dict[str, FilmFingerprints], float]:
    """Shots and fingerprints of a film in one decode pass; also the seconds spent fingerprinting."""
    expected = probe_video(path).frame_count
    fps = {m: FilmFingerprinter(display_aspect, m) for m in modes}
    tap = FrameTap(FilmFingerprinter.frame_size, [fp.process for fp in fps.values()])
    scan = _scan_through(path, detector, tap, expected, progress)
    t0 = time.perf_counter()
    out = {m: fp.finish() for m, fp in fps.items()}
    return scan, out, tap.seconds + time.perf_counter() - t0


def scan_trailer(
    path: str | Path, detector: str, progress: ProgressFn | None = None
) -> tuple[ScanResult, np.ndarray, float]:
    """Shots and small luma frames of a trailer in one decode pass; also the seconds spent on the frames."""
    expected = probe_video(path).frame_count
    frames = _LumaFrames()
    tap = FrameTap(TRAILER_FRAME_SIZE, [frames])
    scan = _scan_through(path, detector, tap, expected, progress)
    return scan, np.stack(frames.frames), tap.seconds


@dataclass
class TrailerMatchResult:
    """Matches of a trailer against its film, with both files' shots, frame times and film soft labels."""

    film: str
    trailer: str
    film_shots: list[Shot]
    trailer_shots: list[Shot]
    film_times: np.ndarray
    trailer_times: np.ndarray
    matches: list[TrailerShotMatch]
    soft_labels: np.ndarray  # one per film shot, in [0, 1]
    timings: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One row per trailer shot, two for a detected shot split in parts (``part`` 0 and 1); times in
        seconds, ``end_s`` being when the frame after the range begins; ``reason`` says why an unmatched
        shot is unmatched, ``textured`` the share of its frames with enough structure to fingerprint."""
        film, trailer = Timeline(self.film_times), Timeline(self.trailer_times)
        rows = []
        for m in self.matches:
            ok = m.matched and m.film_start_frame is not None and m.film_end_frame is not None
            rows.append(
                {
                    "trailer_shot_id": m.trailer_shot_id,
                    "trailer_start_s": round(trailer.start_s(m.trailer_start_frame), 6),
                    "trailer_end_s": round(trailer.end_s(m.trailer_end_frame), 6),
                    "trailer_start_frame": m.trailer_start_frame,
                    "trailer_end_frame": m.trailer_end_frame,
                    "film_shot_id": m.film_shot_id,
                    "film_start_s": round(film.start_s(m.film_start_frame), 6) if ok else None,
                    "film_end_s": round(film.end_s(m.film_end_frame), 6) if ok else None,
                    "film_start_frame": m.film_start_frame,
                    "film_end_frame": m.film_end_frame,
                    "similarity": m.similarity,
                    "speed": m.speed,
                    "matched": m.matched,
                    "part": m.part,
                    "reason": m.reason,
                    "textured": m.textured,
                }
            )
        return rows

    def label_rows(self) -> list[dict[str, Any]]:
        """The ``shot_labels`` rows: per film shot its span, soft label, and whether some trailer shot's
        match lies in it."""
        film = Timeline(self.film_times)
        used = {m.film_shot_id for m in self.matches if m.matched and m.film_shot_id is not None}
        rows = []
        for s in self.film_shots:
            start_s, end_s = film.shot_span_s(s)
            rows.append(
                {
                    "shot_id": s.shot_id,
                    "start_s": round(start_s, 6),
                    "end_s": round(end_s, 6),
                    "soft_label": round(float(self.soft_labels[s.shot_id]), 4),
                    "in_trailer": s.shot_id in used,
                }
            )
        return rows


def match_trailer(
    *,
    film: str,
    trailer: str,
    film_fingerprints: FilmFingerprints,
    film_shots: list[Shot],
    film_times: np.ndarray,
    trailer_luma: np.ndarray,
    trailer_shots: list[Shot],
    trailer_times: np.ndarray,
    trailer_aspect: float,
    threshold: float | None = None,
) -> TrailerMatchResult:
    """The trailer-matching stage, from decoded inputs: each trailer shot's film shot, and the film
    shots' soft labels. ``match_files`` (``marquee trailer-match``) and the ``trailer_matches`` asset
    both call it; they differ only in where the shots and frames come from (a decode, or tables)."""
    from marquee.ops.trailers.labels import soft_labels

    matches = match_shots(
        trailer_luma, trailer_shots, trailer_aspect, film_fingerprints, film_shots, threshold=threshold
    )
    return TrailerMatchResult(
        film=film,
        trailer=trailer,
        film_shots=film_shots,
        trailer_shots=trailer_shots,
        film_times=film_times,
        trailer_times=trailer_times,
        matches=matches,
        soft_labels=soft_labels(matches, len(film_shots)),
    )


def match_files(
    film: str | Path,
    trailer: str | Path,
    *,
    detector: str = "hybrid",
    threshold: float | None = None,
    baseline: bool = False,
    progress: ProgressFactory = no_progress,
) -> TrailerMatchResult:
    """Detect the shots of both files and match the trailer's shots to the film's.

    Each file is decoded once (shots and fingerprints or frames in the same pass). Bad files raise
    ``VideoError`` naming the file. ``timings`` splits the wall time into shot detection (decoding and
    detecting, both files), fingerprinting (thumbnails and fingerprints of the film, the trailer's
    small frames) and matching. ``baseline=True`` (benchmarks) also matches with the naive raw-thumbnail
    fingerprints, every shot "matched" whatever its score (``baseline_matches``), so that a benchmark
    can choose the baseline's threshold.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    film_info = probe_video(film)
    trailer_info = probe_video(trailer)
    modes = ("rank", "raw") if baseline else ("rank",)
    film_scan, fps, film_fp_s = scan_and_fingerprint(
        film, detector, film_info.width / max(film_info.height, 1), modes, progress("film", "frames")
    )
    trailer_scan, luma, trailer_fp_s = scan_trailer(trailer, detector, progress("trailer", "frames"))
    t1 = time.perf_counter()
    timings["fingerprint_s"] = film_fp_s + trailer_fp_s
    timings["shot_detection_s"] = (t1 - t0) - timings["fingerprint_s"]  # decoding and detecting
    aspect = trailer_info.width / max(trailer_info.height, 1)
    result = match_trailer(
        film=str(film),
        trailer=str(trailer),
        film_fingerprints=fps["rank"],
        film_shots=film_scan.shots,
        film_times=film_scan.frame_times,
        trailer_luma=luma,
        trailer_shots=trailer_scan.shots,
        trailer_times=trailer_scan.frame_times,
        trailer_aspect=aspect,
        threshold=threshold,
    )
    t2 = time.perf_counter()
    timings["matching_s"] = t2 - t1
    timings["total_s"] = t2 - t0
    result.timings = timings
    if baseline:
        t4 = time.perf_counter()
        result.baseline_matches = match_shots(  # type: ignore[attr-defined]
            luma, trailer_scan.shots, aspect, fps["raw"], film_scan.shots, threshold=-math.inf
        )
        timings["baseline_matching_s"] = time.perf_counter() - t4
    return result
