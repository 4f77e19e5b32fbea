"""Thumbnail candidates on labelled videos: are the top 10 the right people, eyes open, varied shots?

Makes (or reuses) labelled character videos from the real face photos (``marquee.synth.faces``: exact
identity and box of every face in every frame), runs ``marquee run`` on each in a fresh subprocess and
home, then checks the ``thumbnail_candidates`` table against the truth:
- does each of the top 10 candidates show one of the two most prominent true characters (by true
  screen time)? And is its primary (focused) face, matched to a true face by IoU >= 0.3, one of them?
- are its eyes open (the measured eyes-open factor > 0.5; the photos behind these videos all show
  open eyes, so this tests the signal rather than the ranking)?
- how many different shots do the top 10 come from (target: at least 5)?
It also reports, from the run's Dagster records, the time of the thumbnail stages (expression
scores, candidates, report) as a share of the whole title's wall time.

    .venv/bin/python bench/thumbnails.py [--seeds 0 1 2] [--out bench/results/thumbnails.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from pipeline import step_seconds  # noqa: E402

from marquee.ops.faces.types import box_iou  # noqa: E402

CACHE = REPO / "bench" / "cache"
THUMBNAIL_STEPS = ("expression_scores", "thumbnail_candidates", "report")


def character_video(seed: int, seconds: float) -> Path:
    from marquee.synth.faces import make_character_video

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"characters-s{seed}-{seconds:g}s.mp4"
    if not (path.exists() and Path(str(path) + ".truth.json").exists()):
        make_character_video(path, seed=seed, seconds=seconds)
    return path


def evaluate(video: Path, home: Path, top: int = 10) -> dict[str, Any]:
    from marquee.resources.lake import LakeResource
    from marquee.resources.settings import Settings
    from marquee.synth.faces import load_truth

    truth = load_truth(video)
    lead = truth.characters[:2]
    lake = LakeResource.from_settings(Settings.from_env({"MARQUEE_HOME": str(home)}))
    wh = lake.warehouse()
    title = "bench-thumbs"
    faces = {r["face_id"]: r for r in wh.read_table("faces", title).to_pylist()}
    all_candidates = wh.read_table("thumbnail_candidates", title).sort_by("rank").to_pylist()
    candidates = all_candidates[:top]
    rows = []
    for c in candidates:
        f = faces[c["primary_face_id"]]
        true_faces = truth.frames[c["frame"]] if c["frame"] < len(truth.frames) else []
        shown = {t["identity"] for t in true_faces}
        identity = None
        if true_faces:
            ious = box_iou(
                np.array([[f["x1"], f["y1"], f["x2"], f["y2"]]]), np.array([t["box"] for t in true_faces])
            )[0]
            if ious.max() >= 0.3:
                identity = true_faces[int(ious.argmax())]["identity"]
        rows.append(
            {
                "rank": c["rank"],
                "frame": c["frame"],
                "shot_id": c["shot_id"],
                "identity": identity,
                "lead": identity in lead,  # the focused (primary) face is a lead
                "shows_lead": bool(shown & set(lead)),  # a lead's face is in the frame
                "eyes_open": c["eyes_open"],
                "score": c["score"],
            }
        )
    return {
        "video": str(video),
        "true_leads": lead,
        "n_candidates": len(all_candidates),
        "top": rows,
        "top_focused_on_lead": sum(r["lead"] for r in rows),
        "top_showing_lead": sum(r["shows_lead"] for r in rows),
        "top_with_eyes_open": sum(r["eyes_open"] > 0.5 for r in rows),
        "top_distinct_shots": len({r["shot_id"] for r in rows}),
        "all_pass": bool(
            rows
            and all(r["shows_lead"] and r["eyes_open"] > 0.5 for r in rows)
            and len({r["shot_id"] for r in rows}) >= 5
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "thumbnails.json"))
    args = ap.parse_args()
    results = []
    for seed in args.seeds:
        video = character_video(seed, args.seconds)
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            env = {**os.environ, "MARQUEE_HOME": str(home)}
            env.pop("MARQUEE_STORAGE", None)
            env.pop("DAGSTER_HOME", None)
            started = time.perf_counter()
            cli = [sys.executable, "-m", "marquee.orchestration.cli"]
            cmd = [*cli, "run", str(video), "--title", "bench-thumbs"]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                raise SystemExit(f"marquee run failed on {video}:\n{tail}")
            result = evaluate(video, home)
            steps = step_seconds(home)["steps"]
        thumb_s = sum(steps.get(k, 0.0) for k in THUMBNAIL_STEPS)
        result |= {
            "seed": seed,
            "run_wall_s": round(wall, 2),
            "steps_s": steps,
            "thumbnail_stages_s": round(thumb_s, 2),
            "thumbnail_share_of_wall": round(thumb_s / wall, 3),
        }
        results.append(result)
        print(
            f"seed {seed}: top {len(result['top'])}: showing a lead {result['top_showing_lead']} "
            f"(focused on one {result['top_focused_on_lead']}), eyes open "
            f"{result['top_with_eyes_open']}, shots {result['top_distinct_shots']}; thumbnail stages "
            f"{thumb_s:.1f}s of {wall:.1f}s ({100 * thumb_s / wall:.0f}%)"
        )
    out = {"videos": results, "all_pass": all(r["all_pass"] for r in results)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"all pass: {out['all_pass']}  (wrote {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
