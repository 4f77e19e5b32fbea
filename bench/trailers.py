"""Trailer-to-film shot matching on generated film/trailer pairs with exact truth.

Pairs come from ``marquee.synth.trailers.make_trailer_pair`` (a film edited from real footage with a
per-shot audio track, and a trailer cut from it with crops, bars, grades, speed changes, captions,
re-encoding and title cards), cached under ``bench/cache/trailers``. Each pair goes through
``match_files`` exactly as ``marquee trailer-match`` runs it (shots of both files by the hybrid
detector, film fingerprints, matching), and, in the same run, the naive baseline (raw luma thumbnails
of the whole frame: no bar removal, no normalisation, no caption masking, same retrieval and temporal
verification), given the threshold with its best F1 on these same pairs.

Scores, per true trailer shot (the detected trailer shot holding its middle frame stands for it):

* recall: shots from the film whose detected shot is matched to an overlapping range of the right
  film frames (which is the right film shot), over all shots from the film; also per edit type;
* precision: matched detected shots that are right, over all matched detected shots (a title card
  matched to anything is a false positive); title cards left unmatched are counted too;
* time per film minute: seconds of ``match_files`` per minute of film, split into shot detection,
  fingerprinting and matching.

    .venv/bin/python bench/trailers.py [--seeds 0 1 ... 8] [--minutes 2] [--no-baseline] [--out FILE.json]

Seeds 0, 1, 2 and 4 were looked at while developing (``CALIBRATION_SEEDS``); the rest are reported apart
as held out. Generating a 2-minute pair takes about 2 minutes here; pairs are cached.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marquee.ops.trailers.match import TrailerShotMatch, match_files  # noqa: E402
from marquee.synth.trailers import TrailerTruth, load_trailer_truth, make_trailer_pair  # noqa: E402

CACHE = REPO / "bench" / "cache" / "trailers"
#: Seeds whose pairs were looked at while developing: 0-2 chose THRESHOLD and WHITEN_EPS, and a miss
#: on 4 (a dissolve the trailer's shot detection missed) led to splitting merged trailer shots. The
#: others are held out.
CALIBRATION_SEEDS = (0, 1, 2, 4)


def _overlap(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 <= b1 and b0 <= a1


def evaluate(truth: TrailerTruth, matches: list[TrailerShotMatch]) -> dict[str, Any]:
    """Counts for precision / recall overall and per edit, title cards apart (see the module docstring)."""

    def holder(frame: int) -> TrailerShotMatch | None:
        return next((m for m in matches if m.trailer_start_frame <= frame <= m.trailer_end_frame), None)

    def right(m: TrailerShotMatch, t: Any) -> bool:
        return (
            m.matched
            and t.film_shot_id is not None
            and m.film_start_frame is not None
            and m.film_end_frame is not None
            and _overlap(m.film_start_frame, m.film_end_frame, t.film_start_frame, t.film_end_frame)
        )

    per_edit: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    found = total = cards = cards_unmatched = 0
    misses = []
    true_scores, card_scores = [], []
    for t in truth.trailer_shots:
        m = holder((t.start_frame + t.end_frame) // 2)
        if m is not None:
            (card_scores if t.film_shot_id is None else true_scores).append(m.similarity)
        if t.film_shot_id is None:
            cards += 1
            cards_unmatched += m is None or not m.matched
            continue
        ok = m is not None and right(m, t)
        total += 1
        found += ok
        for e in t.edits:
            per_edit[e][0] += ok
            per_edit[e][1] += 1
        if not ok:
            misses.append(
                {
                    "trailer_shot_id": t.trailer_shot_id,
                    "frames": t.end_frame - t.start_frame + 1,
                    "edits": t.edits,
                    "similarity": None if m is None else m.similarity,
                    "matched": None if m is None else m.matched,
                }
            )
    tp = fp = 0
    for m in matches:
        if not m.matched:
            continue
        mid = (m.trailer_start_frame + m.trailer_end_frame) // 2
        t = max(
            truth.trailer_shots,
            key=lambda s: min(s.end_frame, m.trailer_end_frame) - max(s.start_frame, m.trailer_start_frame),
        )
        if not (t.start_frame <= mid <= t.end_frame) and not _overlap(
            t.start_frame, t.end_frame, m.trailer_start_frame, m.trailer_end_frame
        ):
            fp += 1
            continue
        if right(m, t):
            tp += 1
        else:
            fp += 1
    return {
        "true_shots": total,
        "found": found,
        "matched": tp + fp,
        "true_positives": tp,
        "false_positives": fp,
        "title_cards": cards,
        "title_cards_unmatched": cards_unmatched,
        "per_edit": {k: list(v) for k, v in per_edit.items()},
        "misses": misses,
        "true_scores": true_scores,
        "card_scores": card_scores,
    }


def _at_threshold(matches: list[TrailerShotMatch], threshold: float) -> list[TrailerShotMatch]:
    """The matches as they would be with another threshold (they were made with none)."""
    out = []
    for m in matches:
        ok = m.similarity >= threshold
        out.append(
            replace(
                m,
                matched=ok,
                film_shot_id=m.film_shot_id if ok else None,
                film_start_frame=m.film_start_frame if ok else None,
                film_end_frame=m.film_end_frame if ok else None,
            )
        )
    return out


def _best_threshold(pairs: list[tuple[TrailerTruth, list[TrailerShotMatch]]]) -> tuple[float, dict[str, Any]]:
    """The threshold with the best F1 over all pairs (an oracle choice, in the baseline's favour)."""
    best: tuple[float, float, dict[str, Any]] | None = None
    for thr in np.round(np.arange(0.3, 0.99, 0.01), 2):
        s = _summary([evaluate(t, _at_threshold(ms, float(thr))) for t, ms in pairs])
        p, r = s["precision"] or 0.0, s["recall"] or 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if best is None or f1 > best[0]:
            best = (f1, float(thr), s)
    assert best is not None
    return best[1], best[2]


def _true_shot(truth: TrailerTruth, fs: Any) -> int:
    """The true film shot holding the middle of a detected film shot."""
    mid = (fs.start_frame + fs.end_frame) // 2
    return next(s.shot_id for s in truth.film_shots if s.start_frame <= mid <= s.end_frame)


def _summary(counts: list[dict[str, Any]]) -> dict[str, Any]:
    tp = sum(c["true_positives"] for c in counts)
    matched = sum(c["matched"] for c in counts)
    found = sum(c["found"] for c in counts)
    total = sum(c["true_shots"] for c in counts)
    per_edit: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in counts:
        for k, (a, b) in c["per_edit"].items():
            per_edit[k][0] += a
            per_edit[k][1] += b
    return {
        "precision": round(tp / matched, 4) if matched else None,
        "recall": round(found / total, 4) if total else None,
        "true_shots": total,
        "matched": matched,
        "false_positives": sum(c["false_positives"] for c in counts),
        "title_cards": sum(c["title_cards"] for c in counts),
        "title_cards_unmatched": sum(c["title_cards_unmatched"] for c in counts),
        "lowest_true_score": min((x for c in counts for x in c["true_scores"]), default=None),
        "highest_title_card_score": max((x for c in counts for x in c["card_scores"]), default=None),
        "recall_per_edit": {
            k: {"recall": round(a / b, 4), "shots": b} for k, (a, b) in sorted(per_edit.items())
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(9)))
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--detector", default="hybrid")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "trailers_matching.json")
    args = ap.parse_args()

    per_pair = []
    ours, base, held_out = [], [], []
    tim: dict[str, float] = defaultdict(float)
    film_minutes = 0.0
    for seed in args.seeds:
        t0 = time.perf_counter()
        pair = make_trailer_pair(CACHE, seed=seed, minutes=args.minutes)
        gen_s = time.perf_counter() - t0
        truth = load_trailer_truth(pair.truth)
        res = match_files(pair.film, pair.trailer, detector=args.detector, baseline=not args.no_baseline)
        c = evaluate(truth, res.matches)
        ours.append(c)
        if seed not in CALIBRATION_SEEDS:
            held_out.append(c)
        if not args.no_baseline:
            base.append((truth, res.baseline_matches))  # type: ignore[attr-defined]
        minutes = truth.film_frame_count / truth.film_fps / 60.0
        film_minutes += minutes
        for k, v in res.timings.items():
            tim[k] += v
        used = truth.used_film_shots
        labels = res.soft_labels

        # soft labels against truth: map each detected film shot to the true shot holding its middle
        lab_used = [float(labels[fs.shot_id]) for fs in res.film_shots if _true_shot(truth, fs) in used]
        lab_other = [float(labels[fs.shot_id]) for fs in res.film_shots if _true_shot(truth, fs) not in used]
        per_pair.append(
            {
                "seed": seed,
                "film": str(pair.film.relative_to(REPO)),
                "film_minutes": round(minutes, 3),
                "film_shots_true": len(truth.film_shots),
                "film_shots_detected": len(res.film_shots),
                "trailer_size": list(truth.trailer_size),
                "trailer_shots_true": len(truth.trailer_shots),
                "trailer_shots_detected": len(res.trailer_shots),
                "generate_s": round(gen_s, 2),
                "timings_s": {k: round(v, 3) for k, v in res.timings.items()},
                "ours": {k: v for k, v in _summary([c]).items()} | {"misses": c["misses"]},
                "soft_label_mean_used": round(sum(lab_used) / max(len(lab_used), 1), 4),
                "soft_label_mean_other": round(sum(lab_other) / max(len(lab_other), 1), 4),
            }
        )
        s = per_pair[-1]["ours"]
        print(
            f"seed {seed}: precision {s['precision']} recall {s['recall']} ({s['true_shots']} shots, "
            f"{s['title_cards_unmatched']}/{s['title_cards']} title cards unmatched), "
            f"{res.timings['total_s']:.1f} s for {minutes:.2f} film min",
            flush=True,
        )
    per_min = {k.replace("_s", "_s_per_film_min"): round(v / film_minutes, 3) for k, v in tim.items()}
    out = {
        "what": "trailer-to-film shot matching on generated pairs (marquee.synth.trailers), "
        "match_files end to end",
        "machine": f"{platform.machine()}, {platform.python_version()}; 2 shared cores",
        "seeds": args.seeds,
        "minutes": args.minutes,
        "detector": args.detector,
        "calibration_seeds": [s for s in args.seeds if s in CALIBRATION_SEEDS],
        "ours": _summary(ours),
        "ours_held_out_seeds": _summary(held_out) if held_out else None,
        "baseline_raw_thumbnails": None,
        "time_per_film_minute": per_min,
        "pairs": per_pair,
    }
    if base:
        thr, summary = _best_threshold(base)
        out["baseline_raw_thumbnails"] = {
            "what": "whole-frame raw luma 16x9 thumbnails (no bar removal, no normalisation, no caption "
            "masking), same retrieval and temporal verification, threshold chosen for the best F1 on "
            "these very pairs",
            "threshold": thr,
        } | summary
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    o = out["ours"]
    print(f"\noverall: precision {o['precision']} recall {o['recall']} over {o['true_shots']} trailer shots")
    for k, v in o["recall_per_edit"].items():
        bv = out["baseline_raw_thumbnails"]["recall_per_edit"].get(k, {}) if base else {}
        print(f"  {k:10s} recall {v['recall']:.3f} ({v['shots']} shots)  baseline {bv.get('recall')}")
    if held_out:
        h = out["ours_held_out_seeds"]
        print(f"held-out seeds: precision {h['precision']} recall {h['recall']} over {h['true_shots']} shots")
    if base:
        b = out["baseline_raw_thumbnails"]
        print(f"baseline (threshold {b['threshold']}): precision {b['precision']} recall {b['recall']}")
    print("time per film minute:", per_min)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
