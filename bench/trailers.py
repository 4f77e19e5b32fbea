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

The same scores on **realistic** pairs (``make_trailer_pair(..., realistic=True)``: the same films, the
trailers with real colour grades, vignette, sharpening, grain, trailer-style text and more title cards,
coloured text on white, black or colour grounds), per edit and per kind of title card
(``realistic``). And the **false matches of a real trailer** (``false_matches``): the Sintel trailer
(CC-BY, Blender Foundation) matched against films it was not cut from, the real opening of Big Buck
Bunny and generated films made from footage without the Sintel trailer (seeds ``FOREIGN_SEEDS``): every
match reported there is false (the goal is none). Nothing was tuned on these false matches: the
structure thresholds of ``marquee.ops.trailers.fingerprint`` were chosen on generated data first.

    .venv/bin/python bench/trailers.py [--seeds 0 1 ... 8] [--realistic-seeds ...] [--minutes 2]
        [--no-baseline] [--no-realistic] [--no-false-matches] [--out FILE.json]

Seeds 0, 1, 2, 4 and 8 were looked at while developing (``CALIBRATION_SEEDS``); the rest are reported
apart as held out. Generating a 2-minute pair takes about 1-2 minutes here (a realistic one about 3);
pairs are cached.
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

from marquee.ops.trailers.match import (  # noqa: E402
    TrailerShotMatch,
    match_files,
    match_shots,
    scan_and_fingerprint,
    scan_trailer,
)
from marquee.ops.video import probe_video  # noqa: E402
from marquee.synth.edits import available_sources, shared_media_dir  # noqa: E402
from marquee.synth.trailers import TrailerTruth, load_trailer_truth, make_trailer_pair  # noqa: E402

CACHE = REPO / "bench" / "cache" / "trailers"
#: Seeds whose pairs were looked at while developing: 0-2 chose THRESHOLD and WHITEN_EPS, and a miss
#: on 4 (a dissolve the trailer's shot detection missed) led to splitting merged trailer shots; 0 and 1
#: chose the structure thresholds, and a miss on 8 (a dark close-up whose grade crushed half of it to
#: black) lowered MIN_OFF_GROUND. The others are held out.
CALIBRATION_SEEDS = (0, 1, 2, 4, 8)
#: Generated films (1 minute, footage without the Sintel trailer) that the Sintel trailer is matched
#: against for ``false_matches``.
FOREIGN_SEEDS = (100, 101, 102)
FOREIGN_MINUTES = 1.0


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
    per_card: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind: [unmatched, cards]
    reasons: dict[str, int] = defaultdict(int)  # why title cards were left unmatched
    found = total = cards = cards_unmatched = 0
    misses = []
    true_scores, card_scores = [], []
    for t in truth.trailer_shots:
        m = holder((t.start_frame + t.end_frame) // 2)
        if m is not None:
            (card_scores if t.film_shot_id is None else true_scores).append(m.similarity)
        if t.film_shot_id is None:
            cards += 1
            unmatched = m is None or not m.matched
            cards_unmatched += unmatched
            for kind in t.edits[1:] or ["card-classic"]:
                per_card[kind][0] += unmatched
                per_card[kind][1] += 1
            if unmatched:
                reasons[_reason_kind(m)] += 1
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
                    "reason": None if m is None else getattr(m, "reason", ""),
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
        "per_card": {k: list(v) for k, v in per_card.items()},
        "card_reasons": dict(reasons),
        "misses": misses,
        "true_scores": true_scores,
        "card_scores": card_scores,
    }


def _reason_kind(m: TrailerShotMatch | None) -> str:
    """A short name for why a shot is unmatched (the matcher's ``reason`` sentence, when it has one)."""
    reason = "" if m is None else getattr(m, "reason", "")
    if m is None:
        return "no detected shot"
    if "structure" in reason:
        return "too little structure"
    return "under the threshold"


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
    per_card: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    reasons: dict[str, int] = defaultdict(int)
    for c in counts:
        for k, (a, b) in c["per_edit"].items():
            per_edit[k][0] += a
            per_edit[k][1] += b
        for k, (a, b) in c.get("per_card", {}).items():
            per_card[k][0] += a
            per_card[k][1] += b
        for k, n in c.get("card_reasons", {}).items():
            reasons[k] += n
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
        "title_cards_unmatched_per_kind": {
            k: {"unmatched": a, "cards": b} for k, (a, b) in sorted(per_card.items())
        },
        "title_cards_unmatched_because": dict(sorted(reasons.items())),
    }


def run_pairs(
    seeds: list[int], minutes: float, detector: str, baseline: bool, realistic: bool = False
) -> dict[str, Any]:
    """Generate (or reuse) and match each seed's pair; counts, baseline matches, timings, per-pair rows."""
    per_pair = []
    ours, base, held_out = [], [], []
    tim: dict[str, float] = defaultdict(float)
    film_minutes = 0.0
    for seed in seeds:
        t0 = time.perf_counter()
        pair = make_trailer_pair(CACHE, seed=seed, minutes=minutes, realistic=realistic)
        gen_s = time.perf_counter() - t0
        truth = load_trailer_truth(pair.truth)
        res = match_files(pair.film, pair.trailer, detector=detector, baseline=baseline)
        c = evaluate(truth, res.matches)
        ours.append(c)
        if seed not in CALIBRATION_SEEDS:
            held_out.append(c)
        if baseline:
            base.append((truth, res.baseline_matches))  # type: ignore[attr-defined]
        film_min = truth.film_frame_count / truth.film_fps / 60.0
        film_minutes += film_min
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
                "film_minutes": round(film_min, 3),
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
            f"{'realistic ' if realistic else ''}seed {seed}: precision {s['precision']} recall "
            f"{s['recall']} ({s['true_shots']} shots, {s['title_cards_unmatched']}/{s['title_cards']} "
            f"title cards unmatched), {res.timings['total_s']:.1f} s for {film_min:.2f} film min",
            flush=True,
        )
    return {
        "ours": ours,
        "held_out": held_out,
        "base": base,
        "timings": tim,
        "film_minutes": film_minutes,
        "pairs": per_pair,
    }


def false_matches(trailer: Path, films: list[tuple[str, Path]], detector: str) -> dict[str, Any]:
    """Match one real trailer against films it was not cut from: every match is a false one.

    The trailer is decoded once; each film once (shots and fingerprints), as ``match_files`` does.
    """
    t0 = time.perf_counter()
    scan, luma, _ = scan_trailer(trailer, detector)
    info = probe_video(trailer)
    aspect = info.width / max(info.height, 1)
    out: dict[str, Any] = {
        "trailer": trailer.name,
        "trailer_shots_detected": len(scan.shots),
        "films": [],
    }
    total = 0
    for name, film in films:
        finfo = probe_video(film)
        fscan, fps, _ = scan_and_fingerprint(film, detector, finfo.width / max(finfo.height, 1))
        ms = match_shots(luma, scan.shots, aspect, fps["rank"], fscan.shots)
        wrong = [m for m in ms if m.matched]
        total += len(wrong)
        reasons: dict[str, int] = defaultdict(int)
        for m in ms:
            if not m.matched:
                reasons[_reason_kind(m)] += 1
        out["films"].append(
            {
                "film": name,
                "film_frames": len(fscan.frame_times),
                "false_matches": len(wrong),
                "matches": [
                    {
                        "trailer_frames": [m.trailer_start_frame, m.trailer_end_frame],
                        "film_frames": [m.film_start_frame, m.film_end_frame],
                        "similarity": m.similarity,
                    }
                    for m in wrong
                ],
                "unmatched_because": dict(sorted(reasons.items())),
                "best_similarity": max((m.similarity for m in ms), default=None),
            }
        )
        print(f"{trailer.name} vs {name}: {len(wrong)} false matches", flush=True)
    out["false_matches"] = total
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def foreign_films(sintel: Path) -> list[tuple[str, Path]]:
    """Generated films cut from every available source but the Sintel trailer (cached pairs' films)."""
    sources = [p for p in available_sources() if p.resolve() != sintel.resolve()]
    films = []
    for seed in FOREIGN_SEEDS:
        pair = make_trailer_pair(CACHE, seed=seed, minutes=FOREIGN_MINUTES, sources=sources)
        films.append((f"generated seed {seed} ({FOREIGN_MINUTES:g} min, no Sintel footage)", pair.film))
    return films


def _settings() -> dict[str, Any]:
    """The matcher's thresholds in this run (None where the code has no such setting)."""
    from marquee.ops.trailers import fingerprint, match

    names = {
        fingerprint: ("STRUCTURE_LEVEL", "MIN_OFF_GROUND", "MIN_DETAIL", "WHITEN_EPS", "GRID", "WINDOW"),
        match: ("THRESHOLD", "MIN_TEXTURED", "MIN_TEXTURED_FRAMES", "KEEP"),
    }
    return {n: getattr(mod, n, None) for mod, ns in names.items() for n in ns}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(9)))
    ap.add_argument("--realistic-seeds", type=int, nargs="+", default=None, help="default: --seeds")
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--detector", default="hybrid")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-realistic", action="store_true")
    ap.add_argument("--no-false-matches", action="store_true")
    clips = shared_media_dir() / "clips"
    ap.add_argument("--sintel", type=Path, default=clips / "sintel_trailer_480p.mp4")
    ap.add_argument("--bbb", type=Path, default=clips / "big_buck_bunny_480p_first_30s.mp4")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "trailers_matching.json")
    args = ap.parse_args()
    started = time.perf_counter()

    run = run_pairs(args.seeds, args.minutes, args.detector, not args.no_baseline)
    ours, held_out, base, tim = run["ours"], run["held_out"], run["base"], run["timings"]
    per_pair = run["pairs"]
    per_min = {k.replace("_s", "_s_per_film_min"): round(v / run["film_minutes"], 3) for k, v in tim.items()}
    out: dict[str, Any] = {
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
    if not args.no_realistic:
        rseeds = args.realistic_seeds if args.realistic_seeds is not None else args.seeds
        real = run_pairs(rseeds, args.minutes, args.detector, False, realistic=True)
        out["realistic"] = {
            "what": "the same films, trailers from make_trailer_pair(realistic=True): real colour grades "
            "(tone curves, HSV saturation and hue, split toning), vignette, sharpen, grain, trailer-style "
            "text, twice the title cards (coloured text on white, black, colour or blurred grounds)",
            "seeds": rseeds,
            "ours": _summary(real["ours"]),
            "ours_held_out_seeds": _summary(real["held_out"]) if real["held_out"] else None,
            "pairs": real["pairs"],
        }
    if not args.no_false_matches:
        films = [("Big Buck Bunny, first 30 s (real)", args.bbb), *foreign_films(args.sintel)]
        out["false_matches"] = {
            "what": "the real Sintel trailer matched against films it was not cut from; every match is "
            "false (goal 0)",
        } | false_matches(args.sintel, films, args.detector)
    out["settings"] = _settings()
    out["run_seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")

    def show(label: str, o: dict[str, Any], baseline: dict[str, Any] | None = None) -> None:
        print(f"\n{label}: precision {o['precision']} recall {o['recall']} over {o['true_shots']} shots")
        for k, v in o["recall_per_edit"].items():
            bv = baseline["recall_per_edit"].get(k, {}) if baseline else {}
            extra = f"  baseline {bv.get('recall')}" if baseline else ""
            print(f"  {k:18s} recall {v['recall']:.3f} ({v['shots']} shots){extra}")
        print(f"  title cards unmatched {o['title_cards_unmatched']}/{o['title_cards']}", end="")
        print(f" ({', '.join(f'{k} {n}' for k, n in o['title_cards_unmatched_because'].items())})")
        for k, v in o["title_cards_unmatched_per_kind"].items():
            print(f"    {k:20s} {v['unmatched']}/{v['cards']}")

    show("overall", out["ours"], out["baseline_raw_thumbnails"])
    if held_out:
        h = out["ours_held_out_seeds"]
        print(f"held-out seeds: precision {h['precision']} recall {h['recall']} over {h['true_shots']} shots")
    if base:
        b = out["baseline_raw_thumbnails"]
        print(f"baseline (threshold {b['threshold']}): precision {b['precision']} recall {b['recall']}")
    print("time per film minute:", per_min)
    if "realistic" in out:
        show("realistic", out["realistic"]["ours"])
        h = out["realistic"]["ours_held_out_seeds"]
        if h:
            print(f"realistic held-out: precision {h['precision']} recall {h['recall']} ({h['true_shots']})")
    if "false_matches" in out:
        f = out["false_matches"]
        print(f"\nfalse matches of {f['trailer']} ({f['trailer_shots_detected']}): {f['false_matches']}")
        for film in f["films"]:
            print(f"  {film['film']}: {film['false_matches']} (best similarity {film['best_similarity']})")
    print(f"wrote {args.out} in {out['run_seconds']} s")


if __name__ == "__main__":
    main()
