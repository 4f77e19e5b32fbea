"""Characters at film scale: clustering of a long title against the truth and two baselines, and how
its time grows with the number of tracks.

Reads a ``marquee run`` of a generated film kept by ``bench/pipeline.py --keep`` (its Marquee home under
``bench/cache/pipeline-homes/<key>``) and the film's truth (``marquee.synth.film``). Each detected face
takes the identity of the true face its box overlaps (IoU >= 0.3, one to one per frame); faces on the
real clips' footage (people nobody labelled) and false detections have none and are left out.

- **Marquee** (tracks, cannot-links, average linkage of track means, background rule), as stored by
  the ``face_clusters`` asset: BCubed over every matched face, and over the embedded faces only.
- **Baselines on the same descriptors** (the faces Marquee embedded, clustered face by face, no tracks):
  DBSCAN (eps 0.5, min_samples 1: dlib's recommended distance) and Chinese whispers (dlib, 0.5).
- **Scaling**: the clustering of the asset (``cluster_characters``) timed on the first 1/8, 1/4, 1/2
  and all of the title's faces (whole keyframes, in time order), and the baselines on the same faces; the
  log-log slope of time against tracks (1 = linear, 2 = quadratic) and the peak memory of the distance
  matrix.

    .venv/bin/python bench/characters_scale.py --run 30min-1080p [--out bench/results/characters_scale.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marquee.assets.face_clusters import clusters_config  # noqa: E402
from marquee.ops.faces.cluster import BackgroundRule, keyframe_spans  # noqa: E402
from marquee.ops.faces.embed import DEFAULT_FACE_EMBEDDER  # noqa: E402
from marquee.ops.faces.evaluate import bcubed, match_boxes  # noqa: E402
from marquee.ops.faces.pipeline import CharacterParams, cluster_characters  # noqa: E402
from marquee.ops.faces.tables import embeddings_from_table, faces_from_table  # noqa: E402
from marquee.resources.lake import LakeResource  # noqa: E402
from marquee.resources.settings import Settings  # noqa: E402
from marquee.synth.film import load_film_truth  # noqa: E402

TITLE = "bench-film"


def true_identities(faces_table: Any, truth: Any) -> list[str | None]:
    """Per face row (in ``face_id`` order) the true identity, or None."""
    rows = faces_table.sort_by("face_id").select(["frame", "x1", "y1", "x2", "y2"]).to_pylist()
    out: list[str | None] = [None] * len(rows)
    by_frame: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_frame[r["frame"]].append(i)
    for frame, idx in by_frame.items():
        true = truth.faces_at(frame)
        if not true:
            continue
        pred = np.asarray([[rows[i][k] for k in ("x1", "y1", "x2", "y2")] for i in idx], np.float64)
        tb = np.asarray([t["box"] for t in true], np.float64)
        for i, m in zip(idx, match_boxes(pred, tb, 0.3), strict=True):
            out[i] = true[m]["identity"] if m >= 0 else None
    return out


def score(labels: list[int], idents: list[str | None], keep: list[int]) -> dict[str, Any]:
    """BCubed over faces ``keep`` (unclustered faces count as singletons)."""
    pred = [labels[i] if labels[i] >= 0 else f"single-{i}" for i in keep]
    p, r, f1 = bcubed(pred, [idents[i] for i in keep])
    big = Counter(pred)
    return {
        "bcubed_precision": round(p, 4),
        "bcubed_recall": round(r, 4),
        "bcubed_f1": round(f1, 4),
        "faces": len(keep),
        "clusters": len(big),
        "clusters_with_5_faces": sum(c >= 5 for c in big.values()),
    }


def baselines(vectors: np.ndarray) -> dict[str, tuple[list[int], float]]:
    """DBSCAN and Chinese whispers labels of ``vectors`` and their seconds."""
    import dlib
    from sklearn.cluster import DBSCAN

    out = {}
    t0 = time.perf_counter()
    out["dbscan_per_face"] = (DBSCAN(eps=0.5, min_samples=1).fit(vectors).labels_.tolist(), 0.0)
    out["dbscan_per_face"] = (out["dbscan_per_face"][0], time.perf_counter() - t0)
    t0 = time.perf_counter()
    cw = list(dlib.chinese_whispers_clustering([dlib.vector(v.astype(float).tolist()) for v in vectors], 0.5))
    out["chinese_whispers"] = (cw, time.perf_counter() - t0)
    return out


def run_clustering(faces, vectors, keyframes, shots, params) -> tuple[list[int], float]:
    """Marquee's clustering (``cluster_characters``, as the asset calls it): labels per face, seconds."""
    for f in faces:
        f.character_id = -1
    t0 = time.perf_counter()
    config = clusters_config(DEFAULT_FACE_EMBEDDER, params)
    cluster_characters(
        faces,
        vectors,
        keyframes,
        threshold=config["threshold"],
        normalised=config["normalised"],
        shots=shots,
        params=params,
    )
    return [f.character_id for f in faces], time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a key of bench/results/pipeline.json kept with --keep")
    ap.add_argument("--pipeline", default=str(REPO / "bench" / "results" / "pipeline.json"))
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "characters_scale.json"))
    args = ap.parse_args()
    pipeline = json.loads(Path(args.pipeline).read_text())["runs"][args.run]
    home = REPO / pipeline["kept_home"]
    truth = load_film_truth(REPO / pipeline["video"])
    wh = LakeResource.from_settings(Settings.from_env({"MARQUEE_HOME": str(home)})).warehouse()
    faces_table = wh.read_table("faces", TITLE)
    faces = faces_from_table(faces_table)
    emb = wh.read_table("face_embeddings", TITLE)
    vectors = embeddings_from_table(emb, faces)
    clusters = dict(
        zip(
            wh.read_table("face_clusters", TITLE).column("face_id").to_pylist(),
            wh.read_table("face_clusters", TITLE).column("character_id").to_pylist(),
            strict=True,
        )
    )
    keyframes = [
        (r["frame"], r["time_s"], r["shot_id"])
        for r in wh.read_table("keyframes", TITLE).select(["frame", "time_s", "shot_id"]).to_pylist()
    ]
    shots = {
        r["shot_id"]: (r["start_s"], r["end_s"])
        for r in wh.read_table("shots", TITLE).select(["shot_id", "start_s", "end_s"]).to_pylist()
    }
    idents = true_identities(faces_table, truth)
    stored = [clusters.get(f.face_id, -1) for f in faces]
    matched = [i for i, t in enumerate(idents) if t is not None]
    embedded = [i for i in matched if faces[i].face_id in vectors]
    x = np.stack([vectors[faces[i].face_id] for i in embedded]) if embedded else np.zeros((0, 128))
    base = baselines(x)
    sub = [None] * len(faces)
    result: dict[str, Any] = {
        "run": args.run,
        "video": pipeline["video"],
        "faces": len(faces),
        "faces_with_truth": len(matched),
        "embedded_with_truth": len(embedded),
        "tracks": len({f.track_id for f in faces if f.track_id >= 0}),
        "true_identities": len({idents[i] for i in matched}),
        "true_identity_faces": dict(Counter(idents[i] for i in matched).most_common()),
        "marquee_all_matched_faces": score(stored, idents, matched),
        "marquee_embedded_faces": score(stored, idents, embedded),
    }
    for name, (labels, seconds) in base.items():
        for j, i in enumerate(embedded):
            sub[i] = labels[j]
        result[name] = score([s if s is not None else -1 for s in sub], idents, embedded) | {
            "seconds": round(seconds, 3)
        }
    # Scaling: the first fraction of the title's keyframes (in time), all faces on them.
    params = CharacterParams()
    frames = sorted({f.frame for f in faces})
    scaling = []
    for frac in (0.125, 0.25, 0.5, 1.0):
        cut = frames[max(0, int(len(frames) * frac) - 1)] if frames else 0
        fs = [f for f in faces if f.frame <= cut]
        kf = [k for k in keyframes if k[0] <= cut]
        vs = {f.face_id: vectors[f.face_id] for f in fs if f.face_id in vectors}
        _, ours_s = run_clustering(fs, vs, kf, shots, params)
        xv = np.stack(list(vs.values())) if vs else np.zeros((0, 128))
        b = baselines(xv) if len(xv) else {}
        n_tracks = len({f.track_id for f in fs if f.track_id >= 0 and f.face_id in vs})
        scaling.append(
            {
                "fraction": frac,
                "tracks": n_tracks,
                "embedded_faces": len(vs),
                "marquee_s": round(ours_s, 4),
                "distance_matrix_mb": round(n_tracks * (n_tracks - 1) / 2 * 8 / 2**20, 2),
                **{f"{k}_s": round(v[1], 4) for k, v in b.items()},
            }
        )
    rule = BackgroundRule()
    result["background_rule"] = str(rule)
    result["keyframe_spans"] = len(keyframe_spans(keyframes, shots))
    if len(scaling) >= 2 and scaling[0]["tracks"] > 1:
        lt = np.log([s["tracks"] for s in scaling])
        for key in ("marquee_s", "dbscan_per_face_s", "chinese_whispers_s"):
            ys = [max(s.get(key, 0.0), 1e-4) for s in scaling]
            result[f"slope_{key[:-2]}"] = round(float(np.polyfit(lt, np.log(ys), 1)[0]), 2)
    result["scaling"] = scaling
    out = Path(args.out)
    everything = json.loads(out.read_text()) if out.exists() else {}
    everything[args.run] = result
    out.write_text(json.dumps(everything, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
