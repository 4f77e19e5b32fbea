"""Scoring character results against truth: face matching, BCubed, prominence order.

BCubed (Bagga & Baldwin 1998; Amigó et al. 2009) scores a clustering item by item: precision is the
share of an item's cluster that has its true identity, recall the share of its identity that is in
its cluster, both averaged over items. Unlike pairwise scores it is not dominated by the largest
cluster, and it is the measure used for face clustering in video (e.g. the BBT / Buffy benchmarks).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr

from marquee.ops.faces.types import box_iou


def bcubed(pred: Sequence[Hashable], truth: Sequence[Hashable]) -> tuple[float, float, float]:
    """BCubed precision, recall and F1 of cluster labels ``pred`` against identities ``truth``."""
    if len(pred) != len(truth):
        raise ValueError("pred and truth must have the same length")
    n = len(pred)
    if n == 0:
        return 1.0, 1.0, 1.0
    joint = Counter(zip(pred, truth, strict=True))
    pred_size = Counter(pred)
    true_size = Counter(truth)
    precision = sum(c * c / pred_size[p] for (p, _), c in joint.items()) / n
    recall = sum(c * c / true_size[t] for (_, t), c in joint.items()) / n
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(precision), float(recall), float(f1)


def match_boxes(pred: np.ndarray, truth: np.ndarray, min_iou: float = 0.3) -> list[int]:
    """For each predicted box, the index of its one-to-one matched truth box (IoU >= ``min_iou``) or -1."""
    pred = np.asarray(pred, np.float64).reshape(-1, 4)
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    out = [-1] * len(pred)
    if not len(pred) or not len(truth):
        return out
    iou = box_iou(pred, truth)
    rows, cols = linear_sum_assignment(-iou)
    for r, c in zip(rows, cols, strict=True):
        if iou[r, c] >= min_iou:
            out[r] = int(c)
    return out


def majority_identity(
    character_ids: Sequence[int], identities: Sequence[str | None]
) -> dict[int, tuple[str, float]]:
    """Per predicted character: its most common true identity and that identity's share of its faces."""
    votes: dict[int, Counter] = defaultdict(Counter)
    for c, t in zip(character_ids, identities, strict=True):
        if t is not None:
            votes[c][t] += 1
    out = {}
    for c, v in votes.items():
        name, k = v.most_common(1)[0]
        out[c] = (name, k / sum(v.values()))
    return out


def prominence_scores(
    predicted: Mapping[str, float], truth: Mapping[str, float]
) -> dict[str, float | bool | list[str]]:
    """Agreement of predicted and true screen time over the true identities: Spearman's rho, whether
    the order is exactly the same, and both orders. Identities never predicted count as 0 s."""
    names = sorted(truth)
    true_order = sorted(names, key=lambda n: (-truth[n], n))
    pred_order = sorted(names, key=lambda n: (-predicted.get(n, 0.0), n))
    rho = float("nan")
    if len(names) >= 2:
        rho = float(spearmanr([truth[n] for n in names], [predicted.get(n, 0.0) for n in names]).statistic)
    return {
        "spearman": rho,
        "exact_order": true_order == pred_order,
        "true_order": true_order,
        "pred_order": pred_order,
    }
