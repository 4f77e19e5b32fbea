"""The default detector: the fast pass everywhere, TransNetV2 only where the fast pass is unsure.

Most cuts are unmistakable (a frame difference many times its neighbourhood's) and most frames are
nowhere near a transition, so running a learnt model on every frame spends its time confirming the
obvious. Here the fast pass judges every frame; for each unsure place (a weak cut, a possible flash,
something that may be a dissolve) it copies a short window of 48x27 frames from its ring buffer,
and those windows go to TransNetV2 in batches. The model sees a few percent of the frames, the
decode pass stays close to plain decode speed, and memory stays bounded (pending windows are flushed
every ``batch`` windows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marquee.ops.shots.fast import Candidate, FastDetector
from marquee.ops.shots.transnet import TransNetV2Model

CUT_WINDOW = 48
DISSOLVE_WINDOW = 48


class HybridDetector(FastDetector):
    """FastDetector whose unsure candidates are settled by TransNetV2 on short windows."""

    name = "hybrid"
    version = "1"

    def __init__(
        self,
        tn_cut: float = 0.5,
        tn_cut_low: float = 0.05,
        tn_cut_low_ratio: float = 1.8,
        tn_dissolve: float = 0.4,
        batch: int = 8,
        weights: str | None = None,
        device: str = "cpu",
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
        self.model_calls = 0

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
        window = self.track.window(c.frame - length // 2, length)
        queue = self._pending[length]
        queue.append((c, window))
        if len(queue) >= self.batch:
            self._ask_model(length)

    def settle(self, unsure: list[Candidate]) -> None:
        for length in list(self._pending):
            if self._pending[length]:
                self._ask_model(length)

    def _ask_model(self, length: int) -> None:
        queue, self._pending[length] = self._pending[length], []
        model = TransNetV2Model.shared(self.weights, self.device)
        single, many = model.predict(np.stack([w for _, w in queue]))
        self.model_frames += single.size
        self.model_calls += 1
        centre = length // 2
        for k, (c, _) in enumerate(queue):
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
