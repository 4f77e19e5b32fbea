"""Trailer-moment ranking on generated film/trailer pairs: the trailerness model against its baselines.

For each pair from ``marquee.synth.trailers.make_trailer_pair`` (cached under ``bench/cache/trailers``):

1. ``match_files(film, trailer)`` detects the shots of both files (hybrid detector, as the pipeline
   does) and matches the trailer's shots back to the film's: the per-detected-film-shot soft labels
   are the model's **weak training labels** (as in the paper: no human labels);
2. ``features_for_file`` computes the default CPU features of every detected film shot in one decode
   of the film plus one of its audio: MobileNetV2 on 3 frames per shot, motion (median absolute
   difference of consecutive 48x27 grey thumbnails, as the shots pass measures it), loudness and
   onsets, length and position (no faces: the bench runs no face detection, so the face columns are 0);
3. evaluation is against the generator's truth, never the matching: a detected shot counts as used
   when the true film shot holding its middle frame was used by the trailer.

All titles then go through ``train_model``: leave-one-title-out cross-validation, so every title is
scored by a model that never saw it, and in the same run the random baseline (exact expectation for
precision/recall@10, 200 shuffles for AP), the motion/loudness heuristic and the default heuristic
(with faces, which are absent here). Two references are trained the same way: the model without the
visual embedding, and the model trained on the true used shots instead of the weak labels (how much
the matching's label noise costs).

    .venv/bin/python bench/trailer_ranking.py [--seeds 0 1 2 3 4 5 6 7] [--minutes 2]
        [--out bench/results/trailer_ranking.json]

What this can show: that the pipeline (matching -> weak labels -> features -> model) recovers a
synthetic editor's taste on held-out titles better than chance and than a fixed heuristic. What it
cannot: the synthetic editor scores shots from loudness, onsets, motion, colourfulness, brightness and
"people" plus noise, i.e. mostly from things our features measure; a real editor chooses by story,
stars and spectacle, so real-trailer precision will be lower and the gap to the heuristic may differ.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marquee.ops.trailers.features import (  # noqa: E402
    SCALAR_FEATURES,
    FileFeatureTiming,
    ShotFeatures,
    features_for_file,
)
from marquee.ops.trailers.model import ranking_metrics, train_model  # noqa: E402
from marquee.ops.trailers.visual import FrameEncoder  # noqa: E402

CACHE = REPO / "bench" / "cache" / "trailers"
FEATURES_FILE = "ranking-features-v2.npz"


def title_data(seed: int, minutes: float, encoder: FrameEncoder) -> dict[str, Any]:
    """Weak labels, features and truth of one generated pair (features and labels cached per pair)."""
    from marquee.ops.trailers.match import match_files
    from marquee.synth.trailers import load_trailer_truth, make_trailer_pair

    t0 = time.perf_counter()
    pair = make_trailer_pair(CACHE, seed=seed, minutes=minutes)
    gen_s = time.perf_counter() - t0
    truth = load_trailer_truth(pair.truth)
    cache = pair.film.parent / FEATURES_FILE
    if cache.is_file():
        d = np.load(cache, allow_pickle=False)
        if str(d["encoder"]) == encoder.version:
            return {k: d[k] for k in d.files} | {"cached": True, "generate_s": gen_s}
    t1 = time.perf_counter()
    res = match_files(pair.film, pair.trailer)
    match_s = time.perf_counter() - t1
    shots = [(s.start_frame, s.end_frame) for s in res.film_shots]
    timing = FileFeatureTiming()
    t2 = time.perf_counter()
    feats: ShotFeatures = features_for_file(
        pair.film, shots, encoder=encoder, frames_per_shot=3, timing=timing
    )
    feat_s = time.perf_counter() - t2
    true_shot = np.zeros(truth.film_frame_count, np.int64)
    used_frame = np.zeros(truth.film_frame_count, bool)
    for s in truth.film_shots:
        true_shot[s.start_frame : s.end_frame + 1] = s.shot_id
        used_frame[s.start_frame : s.end_frame + 1] = s.used
    mid = np.array([min((a + b) // 2, truth.film_frame_count - 1) for a, b in shots])
    out = {
        "x": feats.matrix,
        "labels": np.asarray(res.soft_labels, np.float64),
        "used": used_frame[mid],
        "film_minutes": np.float64(truth.film_frame_count / truth.film_fps / 60.0),
        "true_shots": np.int64(len(truth.film_shots)),
        "true_used": np.int64(len(truth.used_film_shots)),
        "match_s": np.float64(match_s),
        "features_s": np.float64(feat_s),
        "decode_s": np.float64(timing.decode_s),
        "encode_s": np.float64(timing.encode_s),
        "audio_s": np.float64(timing.audio_s),
        "frames_encoded": np.int64(timing.frames_encoded),
        "encoder": np.str_(encoder.version),
    }
    np.savez(cache, **out)
    return out | {"cached": False, "generate_s": gen_s}


def encoder_speed(encoder: FrameEncoder, frames: int = 32, reps: int = 3) -> dict[str, Any]:
    """ms per 224-px frame of the network alone (frames already 224x224), best and median of ``reps``,
    with the machine's load average: the 2 cores are shared, and contention changes this a lot."""
    import os

    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (224, 224, 3), np.uint8) for _ in range(frames)]
    encoder.encode(imgs[: encoder.batch_size])
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        encoder.encode(imgs)
        times.append(1000 * (time.perf_counter() - t) / frames)
    return {
        "ms_per_frame_best": round(min(times), 1),
        "ms_per_frame_median": round(float(np.median(times)), 1),
        "batch_size": encoder.batch_size,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def audio_speed(seed: int, minutes: float, reps: int = 3) -> dict[str, Any]:
    """Seconds of ``analyze_audio`` per film minute on one cached film, best and median of ``reps``."""
    import os

    from marquee.ops.trailers.audio import analyze_audio
    from marquee.synth.trailers import make_trailer_pair

    film = make_trailer_pair(CACHE, seed=seed, minutes=minutes).film
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        track = analyze_audio(film)
        times.append(time.perf_counter() - t)
    per_min = [v / (track.duration_s / 60.0) for v in times]
    return {
        "s_per_film_minute_best": round(min(per_min), 3),
        "s_per_film_minute_median": round(float(np.median(per_min)), 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _round(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "trailer_ranking.json"))
    args = ap.parse_args()

    t_load = time.perf_counter()
    encoder = FrameEncoder()
    load_s = time.perf_counter() - t_load
    speed = encoder_speed(encoder)
    print(f"encoder: {speed}", flush=True)
    titles: list[dict[str, Any]] = []
    for seed in args.seeds:
        d = title_data(seed, args.minutes, encoder)
        titles.append(d | {"seed": seed})
        ap_weak = ranking_metrics(d["labels"], d["used"])["average_precision"]
        print(
            f"seed {seed}: {len(d['labels'])} detected shots ({int(d['true_shots'])} true, "
            f"{int(d['true_used'])} used), weak-label AP {ap_weak:.3f}"
            f"{' (cached)' if d['cached'] else ''}",
            flush=True,
        )
    x = np.vstack([d["x"] for d in titles])
    y = np.concatenate([d["labels"] for d in titles])
    used = np.concatenate([d["used"] for d in titles])
    g = np.concatenate([[f"seed{d['seed']}"] * len(d["labels"]) for d in titles])
    k = len(SCALAR_FEATURES)

    t0 = time.perf_counter()
    full = train_model(x, y, g, truth=used, encoder=encoder.version)
    train_s = time.perf_counter() - t0
    scalars_only = train_model(x[:, :k], y, g, truth=used)
    oracle = train_model(x, used.astype(float), g, truth=used, encoder=encoder.version)
    m = full.metrics
    table = {
        "model (weak labels, all features)": m["model"],
        "model (weak labels, no embedding)": scalars_only.metrics["model"],
        "model (true labels, all features): reference": oracle.metrics["model"],
        "motion/loudness heuristic": m["motion_loudness"],
        "default heuristic (motion/loudness/faces)": m["heuristic"],
        "random (expected)": m["random"],
    }
    per_title = m["per_title_precision@10"]
    wins = {
        "model_vs_motion_loudness": [
            sum(v["model"] > v["motion_loudness"] for v in per_title.values()),
            sum(v["model"] == v["motion_loudness"] for v in per_title.values()),
            sum(v["model"] < v["motion_loudness"] for v in per_title.values()),
        ],
        "meaning": "titles where the model's precision@10 is higher / equal / lower",
    }
    label_quality = [
        ranking_metrics(d["labels"], d["used"]) | {"labelled_0.5": int((d["labels"] >= 0.5).sum())}
        for d in titles
    ]
    minutes = float(sum(float(d["film_minutes"]) for d in titles))
    audio_now = audio_speed(args.seeds[0], args.minutes)
    fresh = [d for d in titles if not d["cached"]]
    frames = sum(int(d["frames_encoded"]) for d in titles)
    costs = {
        "encoder_ms_per_frame_incl_resize": round(
            1000 * sum(float(d["encode_s"]) for d in titles) / max(frames, 1), 1
        ),
        "audio_alone_this_run": audio_now,
        "audio_s_per_film_minute_at_feature_time": round(
            sum(float(d["audio_s"]) for d in titles) / minutes, 3
        ),
        "features_s_per_film_minute": round(sum(float(d["features_s"]) for d in titles) / minutes, 3),
        "video_decode_and_sampling_s_per_film_minute": round(
            sum(float(d["decode_s"]) for d in titles) / minutes, 3
        ),
        "matching_s_per_film_minute": round(sum(float(d["match_s"]) for d in titles) / minutes, 3),
        "encoder_alone": speed,
        "encoder_load_s": round(load_s, 2),
        "train_with_cv_s": round(train_s, 2),
        "note": "times recorded when each title's features were first computed"
        + (
            f"; {len(titles) - len(fresh)} of {len(titles)} titles from cache"
            if len(fresh) < len(titles)
            else ""
        ),
    }
    result = {
        "benchmark": "trailer_ranking",
        "platform": platform.platform(),
        "seeds": args.seeds,
        "minutes": args.minutes,
        "titles": len(titles),
        "detected_shots": len(y),
        "used_share": round(float(used.mean()), 4),
        "cv": m.get("cv"),
        "truth": "a detected film shot is used when the true shot holding its middle frame is in the trailer",
        "labels": "soft labels from match_files (trailer-to-film matching), not the truth",
        "encoder": encoder.version,
        "results": {name: _round(v) for name, v in table.items()},
        "per_title_precision@10": per_title,
        "model_vs_heuristic_titles": wins,
        "weak_label_quality_per_title": [
            _round(q) | {"seed": d["seed"]} for q, d in zip(label_quality, titles, strict=True)
        ],
        "costs": costs,
        "model_version": full.version,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{len(titles)} titles, {len(y)} shots, {100 * used.mean():.1f}% used, {m.get('cv')}")
    print(f"{'scorer':48s} {'P@10':>6s} {'R@10':>6s} {'AP':>6s}")
    for name, v in table.items():
        print(f"{name:48s} {v['precision@10']:6.3f} {v['recall@10']:6.3f} {v['average_precision']:6.3f}")
    w = wins["model_vs_motion_loudness"]
    print(f"model vs motion/loudness heuristic, titles better/equal/worse: {w[0]}/{w[1]}/{w[2]}")
    print(json.dumps(costs, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
