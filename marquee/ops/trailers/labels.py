"""Soft per-film-shot labels from trailer matches, as in "Learning Trailer Moments" (ECCV 2020).

Hard labels ("this film shot is in the trailer") are brittle: a film often holds near-duplicate shots
(the same set-up filmed twice, a reaction shot reused) and the matcher cannot always say which one the
trailer used. The paper therefore lets each trailer shot spread its vote over the film shots by a
softmax of similarity with a temperature (a similarity-based attention); a film shot's label is the
largest share any trailer shot gives it. A clear match gives its shot about 1, near-duplicates share,
and shots no trailer shot resembles get about 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

#: Similarities are cosine-like (rank correlation, up to 1): at 0.05 a shot 0.15 less similar than the
#: best gets e^-3 = 5% of its weight.
DEFAULT_TEMPERATURE = 0.05


class _Match(Protocol):
    matched: bool
    candidates: list[tuple[int, float]]


def soft_labels(
    matches: Sequence[_Match], n_film_shots: int, temperature: float = DEFAULT_TEMPERATURE
) -> np.ndarray:
    """Per film shot, in [0, 1]: the max over matched trailer shots of its softmax share of similarity.

    Unmatched trailer shots (title cards, shots not found in the film) give no weight to anything.
    ``candidates`` are (film shot id, similarity) pairs; film shots missing from a trailer shot's
    candidates get no share from it (they are far below its best, so their share would be ~0 anyway).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    labels = np.zeros(n_film_shots, np.float64)
    for m in matches:
        if not m.matched or not m.candidates:
            continue
        ids = np.array([c[0] for c in m.candidates], np.int64)
        sims = np.array([c[1] for c in m.candidates], np.float64)
        w = np.exp((sims - sims.max()) / temperature)
        w /= w.sum()
        ok = (ids >= 0) & (ids < n_film_shots)
        np.maximum.at(labels, ids[ok], w[ok])
    return np.clip(labels, 0.0, 1.0)
