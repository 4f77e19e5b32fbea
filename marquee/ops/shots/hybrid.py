"""The default detector: the fast pass everywhere, TransNetV2 only where the fast pass is unsure.

Most cuts are unmistakable (a frame difference many times its neighbourhood's) and most frames are
nowhere near a transition, so running a learnt model on every frame spends its time confirming the
obvious. Here the fast pass judges every frame; for each unsure place (a weak cut, a possible flash,
something that may be a dissolve) it copies a short window of 48x27 frames from its ring buffer,
and those windows go to TransNetV2 in batches. The model sees a few percent of the frames, the
decode pass stays close to plain decode speed, and memory stays bounded (pending windows are flushed
every ``batch`` windows).

A window costs as much as decoding hundreds of small frames, so before asking, each unsure candidate
waits until the fades around it are known for certain (``FADE_REACH`` frames each side of any dark or
white plateau near it): a candidate inside a fade is moot, since fades take precedence in the output
(the dissolve-like ramps and cut-like steps of a fade are where most unsure candidates come from).
An unsure dissolve whose span overlaps one already asked about is the same dissolve seen from another
peak of the far difference (long dissolves have two): it takes that answer instead of a window.

The model calls run in the pass's idle time (``marquee.ops.background.IdleTimeCalls``): on a
background thread at idle priority with one torch thread, which gets a core only while the pass
leaves one free, so the pass keeps its speed. Verdicts are only needed at ``finish``, where every
call not yet done runs batched on every core.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marquee.ops.background import IdleTimeCalls
from marquee.ops.shots.fast import FADE_REACH, Candidate, FastDetector, fade_runs
from marquee.ops.shots.transnet import TransNetV2Model

CUT_WINDOW = 48
DISSOLVE_WINDOW = 48


class HybridDetector(FastDetector):
    """FastDetector whose unsure candidates are settled by TransNetV2 on short windows."""

    name = "hybrid"
    version = "3"

    def __init__(
        self,
        tn_cut: float = 0.5,
        tn_cut_low: float = 0.05,
        tn_cut_low_ratio: float = 1.8,
        tn_dissolve: float = 0.4,
        batch: int = 1,
        weights: str | None = None,
        device: str | None = None,  # None: MARQUEE_DEVICE (marquee.ops.devices), when the model loads
        **fast_params: Any,
    ) -> None:
        super().__init__(**fast_params)
        self.tn_cut = tn_cut
        self.tn_cut_low = tn_cut_low
        self.tn_cut_low_ratio = tn_cut_low_ratio
        self.tn_dissolve = tn_dissolve
        self.batch = batch
        self.weights = weights
        self.device = device
        self._pending: dict[int, list[tuple[Candidate, np.ndarray]]] = {CUT_WINDOW: [], DISSOLVE_WINDOW: []}
        self._waiting: list[tuple[Candidate, np.ndarray]] = []  # unsure, until the fades near are known
        self._asked: list[Candidate] = []  # recent dissolves sent to the model (their spans dedupe)
        self._twins: dict[int, list[Candidate]] = {}  # id(asked dissolve) -> overlapping ones it answers
        self._calls: IdleTimeCalls[list[Candidate]] | None = None  # model calls, in the pass's idle time
        self.model_calls = 0
        self.moot = 0  # unsure candidates inside a fade, never asked about
        self.twins = 0  # unsure dissolves answered by an overlapping one's window

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "tn_cut": self.tn_cut,
            "tn_cut_low": self.tn_cut_low,
            "tn_cut_low_ratio": self.tn_cut_low_ratio,
            "tn_dissolve": self.tn_dissolve,
            "cut_window": CUT_WINDOW,
            "dissolve_window": DISSOLVE_WINDOW,
        }

    def on_candidate(self, c: Candidate) -> None:
        super().on_candidate(c)
        if c.verdict != "unsure":
            return
        length = CUT_WINDOW if c.kind == "cut" else DISSOLVE_WINDOW
        self._waiting.append((c, self.track.window(c.frame - length // 2, length)))

    def process(self, index: int, frame: np.ndarray) -> None:
        super().process(index, frame)
        if self._waiting and len(self.track) >= self._waiting[0][0].end + self._margin:
            self._release(final=False)

    #: Frames either side of a candidate whose plateaus (and their ramps) are checked for fades.
    _margin = 2 * FADE_REACH + 4

    def _release(self, final: bool) -> None:
        """Queue for the model the waiting candidates whose surroundings are known, minus the moot."""
        n = len(self.track)
        still: list[tuple[Candidate, np.ndarray]] = []
        for c, window in self._waiting:
            if not final and n < c.end + self._margin:
                still.append((c, window))
                continue
            if self._in_fade(c, n, final):
                c.verdict = "no"  # moot: the fade is output instead (its span covers this one)
                self.moot += 1
                continue
            if c.kind == "dissolve":
                twin = next((a for a in self._asked if not (c.end < a.start or c.start > a.end)), None)
                if twin is not None:
                    self._twins.setdefault(id(twin), []).append(c)
                    self.twins += 1
                    continue
                self._asked = [*self._asked[-7:], c]
            queue = self._pending[len(window)]
            queue.append((c, window))
            if len(queue) >= self.batch:
                self._ask_model(len(window))
        self._waiting = still

    def _in_fade(self, c: Candidate, n: int, final: bool) -> bool:
        """True when a fade that ``find_fades`` will surely output overlaps the candidate's span.

        Only plateaus lying wholly inside the frames looked at, a full ramp's reach from both ends of
        them, count: those are judged exactly as on the whole title (``fade_runs``)."""
        lo, hi = max(0, c.start - self._margin), min(n, c.end + self._margin)
        track = self.track
        for i, j, fade in fade_runs(track.luma[lo:hi], track.luma_std[lo:hi], self.params, first=lo):
            known = (i - FADE_REACH >= lo or lo == 0) and (j + FADE_REACH + 1 <= hi or (final and hi == n))
            if known and not (c.end < fade.start_frame - 1 or c.start > fade.end_frame + 1):
                return True
        return False

    def settle(self, unsure: list[Candidate]) -> None:
        self._release(final=True)
        for length in list(self._pending):
            if self._pending[length]:
                self._ask_model(length)
        if self._calls is not None:
            calls, self._calls = self._calls, None
            for asked, (single, many) in calls.finish():
                self._apply(asked, single, many, single.shape[1])

    def _ask_model(self, length: int) -> None:
        """Hand the pending windows of ``length`` frames to the model's idle-time calls."""
        queue, self._pending[length] = self._pending[length], []
        model = self._model()  # loaded here, in the caller's thread: load errors surface now
        if self._calls is None:
            self._calls = IdleTimeCalls(model.predict, setup=_one_torch_thread, name="marquee-hybrid")
        windows = np.stack([w for _, w in queue])
        self._calls.submit(windows, [c for c, _ in queue])
        self.model_frames += windows.shape[0] * windows.shape[1]
        self.model_calls += 1

    def _model(self) -> TransNetV2Model:
        return TransNetV2Model.shared(self.weights, self.device)

    def _apply(self, asked: list[Candidate], single: np.ndarray, many: np.ndarray, length: int) -> None:
        """Settle the asked candidates (and the dissolves they answer for) from the model's output."""
        centre = length // 2
        for k, c in enumerate(asked):
            if c.kind == "cut":
                # TransNetV2 marks the last frame of the outgoing shot: frame c.frame - 1.
                p = float(single[k, centre - 2 : centre + 1].max())
                c.model_score = p
                accept = p >= self.tn_cut or (p >= self.tn_cut_low and c.score >= self.tn_cut_low_ratio)
                c.verdict = "yes" if accept else "no"
            else:
                half = (c.end - c.start) // 2 + 4
                p = float(single[k, max(0, centre - half) : centre + half + 1].max())
                c.model_score = p
                c.verdict = "yes" if p >= self.tn_dissolve else "no"
                if span := self._model_span(many[k], centre, c.frame):
                    c.start, c.end = span
                for twin in self._twins.pop(id(c), []):
                    twin.model_score, twin.verdict, twin.start, twin.end = (
                        c.model_score,
                        c.verdict,
                        c.start,
                        c.end,
                    )

    @staticmethod
    def _model_span(many: np.ndarray, centre: int, frame: int) -> tuple[int, int] | None:
        """The run of frames TransNetV2 calls transitional around the window centre, in title frames."""
        if many[centre] < 0.5:
            return None
        a = b = centre
        while a > 0 and many[a - 1] >= 0.5:
            a -= 1
        while b + 1 < len(many) and many[b + 1] >= 0.5:
            b += 1
        return frame - centre + a, frame - centre + b


def _one_torch_thread() -> None:
    """The background thread computes with one torch thread (the setting is per thread): its calls
    are small, and one thread at idle priority is what the pass can spare."""
    import torch

    torch.set_num_threads(1)
