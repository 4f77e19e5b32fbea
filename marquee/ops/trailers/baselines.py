"""Untrained scorers: the heuristic default and the random baseline the trained model must beat.

The heuristic is what a trailer editor would try first: loud, busy, eventful shots, preferably with
one of the leads on screen. It is the trailerness model used for titles when no trained model exists,
and a baseline in every evaluation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from marquee.ops.trailers.features import SCALAR_FEATURES, standardise_within_title


@dataclass(frozen=True)
class HeuristicModel:
    """A weighted sum of within-title z-scores, squashed to (0, 1) by a logistic.

    score = logistic(motion * z(motion) + loudness * z(mean dBFS) + peaks * z(max dBFS)
                     + onsets * z(onset rate) + faces * z(largest face share) + lead * top-2 character)
    Unknown inputs (no audio, no faces) contribute 0. ``score(x)`` expects one title's rows.
    """

    motion: float = 1.0
    loudness: float = 1.0
    peaks: float = 0.5
    onsets: float = 0.5
    faces: float = 0.3
    lead: float = 0.3

    kind = "heuristic"

    @property
    def version(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return f"heuristic-{hashlib.sha256(blob).hexdigest()[:8]}"

    def score(self, x: np.ndarray) -> np.ndarray:
        z = standardise_within_title(np.asarray(x, np.float64)[:, : len(SCALAR_FEATURES)])
        col = {name: z[:, i] for i, name in enumerate(SCALAR_FEATURES)}
        s = (
            self.motion * col["motion"]
            + self.loudness * col["loudness_mean_db"]
            + self.peaks * col["loudness_max_db"]
            + self.onsets * col["onset_rate"]
            + self.faces * col["largest_face_share"]
            + self.lead * col["top2_character"]
        )
        return 1.0 / (1.0 + np.exp(-s))


#: The bench's and CV's "motion/loudness" baseline: the heuristic without the face terms.
MOTION_LOUDNESS = HeuristicModel(faces=0.0, lead=0.0)


def random_scores(n: int, rng: np.random.Generator) -> np.ndarray:
    """One random ranking of ``n`` shots (the chance baseline; evaluate over many draws)."""
    return rng.random(n)
