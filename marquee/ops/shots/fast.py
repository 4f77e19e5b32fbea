"""The fast shot detector: adaptive frame differences for cuts, blend and luma tests for gradual ones.

Cuts: a frame whose difference to the previous one is a local peak, well above the usual level of
differences around it (so fast action does not fire, quiet scenes stay sensitive), and not a one-frame
flash (the frames either side of it must differ too). Dissolves: over ``lag`` frames, the middle
frame is close to the average of the two ends while the ends differ a lot. Fades: a dip to a dark,
flat frame entered or left by a monotone ramp of brightness.

Each candidate gets a verdict, ``yes``, ``no`` or ``unsure``: the fast detector settles the unsure ones
with a middle threshold; the hybrid detector (``hybrid.py``) asks TransNetV2 about those only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from marquee.ops.shots.base import ShotDetector
from marquee.ops.shots.signals import GRADUAL_LAG, SignalTrack
from marquee.ops.timeline import Transition

Verdict = Literal["yes", "no", "unsure"]


@dataclass(frozen=True)
class FastParams:
    """Thresholds of the fast pass (part of the detector identity)."""

    window: int = 12  # frames either side for the local level of differences
    min_diff: float = 0.03  # a cut changes at least this much (mean abs RGB / 255)
    level_percentile: float = 75.0  # the local level: robust to cuts nearby and to animation on twos
    ratio_no: float = 1.6  # below this ratio to the local level: not a cut
    ratio_yes: float = 2.6  # at or above: a cut without asking anyone
    ratio_mid: float = 1.8  # the fast detector's decision for unsure cuts
    flash_ratio: float = 0.45  # frames either side of a flash differ less than this share of its peak
    hist_confirm: float = 2.0  # colour change (to its local level) that confirms a cut from ratio_mid up
    dissolve_far: float = 0.06  # ends of a dissolve differ at least this much
    dissolve_hist_unsure: float = 0.1  # ... and their colours at least this much (camera moves don't)
    dissolve_hist_yes: float = 0.25  # ... or this much for the fast pass to say dissolve on its own
    dissolve_blend_yes: float = 0.15  # blend error (share of far) below which the fast pass says dissolve
    dissolve_blend_unsure: float = 0.3  # ... below which it is worth a second opinion
    dissolve_blend_mid: float = 0.2  # the fast detector's decision for unsure dissolves
    dissolve_min_span: int = 3  # a dissolve mixes at least this many frames, each changing from the last
    dark_luma: float = 0.07  # a fade reaches frames darker than this
    dark_std: float = 0.05  # ... and this flat
    white_luma: float = 0.6  # a fade to white reaches frames brighter than this
    white_std: float = 0.025  # ... and this uniform
    min_ramp: int = 3  # frames of monotone brightness change into or out of the dark
    ramp_step: float = 0.003  # ... changing brightness and contrast at least this much a frame on average


@dataclass
class Candidate:
    """A place the fast pass looked at closely."""

    kind: str  # "cut" or "dissolve"
    frame: int  # cut: first frame of the new shot; dissolve: its middle frame
    verdict: Verdict
    score: float
    start: int = 0
    end: int = 0
    model_score: float | None = None  # TransNetV2's probability, where the hybrid asked it
    flash: bool = False  # the frames either side are alike: a flash or a glitch, not a new shot


def _local_level(values: np.ndarray, centre: int, window: int, percentile: float) -> float:
    """A high percentile of the values around ``centre`` (excluding it).

    The 75th percentile rather than the median: where frames change only every other frame
    (animation on twos, duplicated frames, jerky motion) half of the differences are near zero, and
    a median would make every real change look like a cut.
    """
    lo, hi = max(0, centre - window), min(len(values), centre + window + 1)
    around = np.concatenate([values[lo:centre], values[centre + 1 : hi]])
    return float(np.percentile(around, percentile)) if around.size else 0.0


class FastDetector(ShotDetector):
    """Cuts, dissolves and fades from cheap signals; candidates are judged online, a short delay behind."""

    name = "fast"
    version = "3"
    frame_size = (48, 27)
    #: How far behind the newest frame candidates are judged: enough for the median window and lag.
    delay = 32

    def __init__(self, **params: Any) -> None:
        self.params = FastParams(**params)
        self.track = SignalTrack(keep_frames=2 * self.delay + 64)
        self.candidates: list[Candidate] = []
        self._judged = 0  # frames up to here have been looked at
        self.model_frames = 0

    def config(self) -> dict[str, Any]:
        return asdict(self.params)

    # ---- streaming ---------------------------------------------------------------------------------
    def process(self, index: int, frame: np.ndarray) -> None:
        self.track.push(frame)
        ready = len(self.track) - self.delay
        if ready > self._judged:
            self._judge_range(self._judged, ready, final=False)
            self._judged = ready

    def finish(self) -> list[Transition]:
        self.track.flush()
        if len(self.track) > self._judged:
            self._judge_range(self._judged, len(self.track), final=True)
            self._judged = len(self.track)
        self.settle([c for c in self.candidates if c.verdict == "unsure"])
        return self.transitions()

    # ---- judging -----------------------------------------------------------------------------------
    def _judge_range(self, a: int, b: int, final: bool) -> None:
        """Judge frames a..b-1, finding the few worth a closer look with whole-array tests first.

        Frame t is judged as if the newest frame were ``t + delay`` (or the last one, at the end), so
        results do not depend on how many frames the signal blocks happen to have computed."""
        diff, far = self.track.diff, self.track.far
        n_all = len(diff)
        p = self.params
        t = np.arange(a, b)
        limit = np.full(len(t), n_all) if final else np.minimum(t + self.delay + 1, n_all)
        d = diff[a:b]
        before = diff[np.maximum(t - 1, 0)]
        after = np.where(t + 1 < limit, diff[np.minimum(t + 1, n_all - 1)], -1.0)
        cut = (t > 0) & (d >= p.min_diff) & (d >= before) & (d >= after)
        half = GRADUAL_LAG // 2
        end = t + half  # the blend signal for middle frame t is stored at index t + lag/2
        ok = (t >= half) & (end < limit)
        gradual = np.zeros(len(t), bool)
        gradual[ok] = far[end[ok]] >= p.dissolve_far
        for k in np.flatnonzero(cut | gradual):
            n = int(limit[k])
            if cut[k]:
                self._judge_cut(int(t[k]), n)
            if gradual[k]:
                self._judge_dissolve(int(t[k]), int(end[k]), n)

    def _judge_cut(self, t: int, n: int) -> None:
        p = self.params
        diff = np.asarray(self.track.diff[max(0, t - p.window) : min(n, t + p.window + 1)], np.float32)
        centre = min(t, p.window)
        s = float(diff[centre])
        ratio = s / (_local_level(diff, centre, p.window, p.level_percentile) + 0.01)
        if ratio < p.ratio_no:
            return
        # A flash (or a single corrupt frame) differs from both neighbours; across a cut the frames on
        # each side differ from each other as much as the cut itself.
        try:
            before, after = self.track.frame(t - 1), self.track.frame(min(t + 1, n - 1))
            across = float(np.abs(after.astype(np.int16) - before).mean()) / 255.0
        except IndexError:
            across = s
        flash = across < p.flash_ratio * s
        verdict: Verdict = "yes" if ratio >= p.ratio_yes and not flash else "unsure"
        if verdict == "unsure" and ratio >= p.ratio_mid and not flash:
            # A second, independent witness: camera and subject motion move pixels but keep the colours,
            # so a frame difference from motion leaves the colour histogram near its usual change; a
            # cut replaces the colours. When the colours jump too, the cut needs no second opinion.
            hist = np.asarray(self.track.hist[max(0, t - p.window) : min(n, t + p.window + 1)], np.float32)
            colours = float(hist[centre]) / (_local_level(hist, centre, p.window, p.level_percentile) + 0.01)
            if colours >= p.hist_confirm:
                verdict = "yes"
        self.on_candidate(Candidate("cut", t, verdict, ratio, t, t, flash=flash))

    def _judge_dissolve(self, mid: int, at: int, n: int) -> None:
        p = self.params
        far = self.track.far
        if far[at] < p.dissolve_far:
            return
        lo, hi = max(0, at - GRADUAL_LAG), min(n, at + GRADUAL_LAG + 1)
        if far[at] < far[lo:hi].max():
            return  # not the peak of the far difference
        blend = self.track.blend[at]
        colours = self.track.hist_far[at]
        if blend >= p.dissolve_blend_unsure or colours < p.dissolve_hist_unsure:
            return
        half = GRADUAL_LAG // 2
        diffs = self.track.diff[mid - half + 1 : at + 1]
        if diffs.max() > 0.5 * far[at]:
            return  # one frame-to-frame jump explains the change: a cut, judged as such
        sure = blend < p.dissolve_blend_yes and colours >= p.dissolve_hist_yes
        verdict: Verdict = "yes" if sure else "unsure"
        start, end = self._gradual_span(mid, n)
        if end - start + 1 < p.dissolve_min_span:
            return  # the frames around do not keep changing: a blend by chance (e.g. a pan's ends)
        self.on_candidate(Candidate("dissolve", mid, verdict, 1.0 - blend, start, end))

    def _gradual_span(self, mid: int, n: int) -> tuple[int, int]:
        """Frames around ``mid`` whose difference to their predecessor stays raised."""
        diff = self.track.diff
        lo, hi = max(1, mid - 40), min(n, mid + 41)
        outside = np.concatenate([diff[lo : max(lo, mid - 15)], diff[min(hi, mid + 16) : hi]])
        base = float(np.median(outside)) if outside.size else 0.0
        core = float(np.mean(diff[max(1, mid - 2) : min(n, mid + 3)]))
        level = base + 0.35 * max(0.0, core - base)
        a = mid
        while a - 1 >= lo and diff[a - 1] > level and mid - a < 30:
            a -= 1
        b = mid
        while b + 1 < hi and diff[b + 1] > level and b - mid < 30:
            b += 1
        # diff[a] is the step from the last clean frame into the first mixed one; diff[b] the step
        # from the last mixed frame into the new shot.
        return a, max(a, b - 1)

    def on_candidate(self, c: Candidate) -> None:
        """Record a candidate (the hybrid detector also snapshots frames for unsure ones)."""
        self.candidates.append(c)

    def settle(self, unsure: list[Candidate]) -> None:
        """Decide unsure candidates: here with the middle thresholds, no model."""
        p = self.params
        for c in unsure:
            if c.kind == "cut":
                c.verdict = "yes" if c.score >= p.ratio_mid and not c.flash else "no"
            else:  # score = 1 - blend error
                c.verdict = "yes" if c.score >= 1.0 - p.dissolve_blend_mid else "no"

    # ---- output ------------------------------------------------------------------------------------
    def transitions(self) -> list[Transition]:
        """Fades from the brightness curve, then accepted dissolves and cuts outside them."""
        p = self.params
        fades = find_fades(self.track.arrays(), p)
        taken = [(f.start_frame, f.end_frame) for f in fades]
        out = list(fades)

        def free(a: int, b: int) -> bool:
            return all(b < s - 1 or a > e + 1 for s, e in taken)

        for c in sorted(self.candidates, key=lambda c: (c.kind != "dissolve", -c.score)):
            if c.verdict != "yes":
                continue
            a, b = c.start, c.end  # a cut's span is its own frame
            if not free(a, b):
                continue
            conf = min(1.0, c.score / 6.0) if c.kind == "cut" else min(1.0, max(0.0, c.score))
            out.append(Transition(a, b, c.kind, round(conf, 4)))
            taken.append((a, b))
        return sorted(out)


def find_fades(signals: dict[str, np.ndarray], p: FastParams) -> list[Transition]:
    """Fades to or from black or white: plain runs entered or left by a steady ramp.

    The plateau is a run of near-black frames, or of bright, almost perfectly uniform ones (a
    white-out; a plain sky is rarely that flat). The ramp is measured as the distance from the
    plateau's brightness plus the contrast, which both shrink steadily as a picture fades out.
    """
    return sorted(t for _, _, t in fade_runs(signals["luma"], signals["luma_std"], p))


#: Frames a fade's ramp may reach beyond its plateau (``_fades_into`` looks no further).
FADE_REACH = 60


def fade_runs(
    luma: np.ndarray, spread: np.ndarray, p: FastParams, first: int = 0
) -> list[tuple[int, int, Transition]]:
    """Fades as (plateau start, plateau end, fade), in title frames, from signals of frames
    ``first``.. on. A fade whose plateau starts ``FADE_REACH`` frames or more after the first frame
    given and ends that far (plus one) before the last is exactly what ``find_fades`` finds on the
    whole title: each plateau is judged on its own, from the frames within that reach."""
    dark = (luma < p.dark_luma) & (spread < p.dark_std)
    white = (luma > p.white_luma) & (spread < p.white_std)
    return _fades_into(luma, spread, dark, p, first) + _fades_into(luma, spread, white, p, first)


def _fades_into(
    luma: np.ndarray, spread: np.ndarray, plateau: np.ndarray, p: FastParams, first: int = 0
) -> list[tuple[int, int, Transition]]:
    n = len(luma)
    out: list[tuple[int, int, Transition]] = []
    i = 0
    while i < n:
        if not plateau[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and plateau[j + 1]:
            j += 1
        base = float(np.median(luma[i : j + 1]))
        lo, hi = max(0, i - FADE_REACH), min(n, j + FADE_REACH + 1)  # ramps are at most this long
        # Distance from the plateau, over frames lo..hi-1 only: it grows as a picture emerges.
        away = np.abs(luma[lo:hi] - base) + spread[lo:hi]
        a, b = i - lo, j - lo  # local indices of the plateau's ends
        while a > 0 and away[a - 1] > away[a] + 0.0005:  # back through the fade-out
            a -= 1
        while b + 1 < len(away) and away[b + 1] > away[b] + 0.0005:  # on through the fade-in
            b += 1
        ramp_in = i - lo - a if _is_ramp(away, a, i - lo, p.ramp_step) else 0
        ramp_out = b - (j - lo) if _is_ramp(away, j - lo, b, p.ramp_step) else 0
        # A title that opens on black and fades in has no transition there; one that fades out at
        # its end does (the last shot ends in a fade).
        if i + first > 0 and max(ramp_in, ramp_out) >= p.min_ramp:
            fade = Transition(first + i - ramp_in, first + min(n - 1, j + ramp_out), "fade", 1.0)
            out.append((first + i, first + j, fade))
        i = j + 1
    return out


def _is_ramp(values: np.ndarray, a: int, b: int, min_step: float) -> bool:
    """True when ``values`` change steadily between frames a and b: by at least ``min_step`` a frame
    on average, with no single step carrying most of the change (that would be a cut to black)."""
    if b - a < 2:
        return False
    total = float(abs(values[b] - values[a]))
    seg = np.abs(np.diff(values[a : b + 1]))
    return total >= min_step * (b - a) and float(seg.max()) < 0.6 * total + 0.01
