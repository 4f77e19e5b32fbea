"""Whole-title cost of ``marquee run`` (every asset) against plain decode of the same file, in one run.

Makes (or reuses) a 720p "film" of at least 3 minutes edited from real footage with
``marquee.synth.edits``, then measures, each in a fresh subprocess so peak memory is its own:
- plain PyAV decode of every frame (threaded, no conversion): the floor any pipeline pays;
- ``marquee run`` on the same file (ingest and every asset through Dagster in-process).
Reports wall time, frames/s, realtime factor and peak RSS, and the ratios to plain decode; then, from
the run's Dagster records, the time of each step and the characters stages (faces, embeddings,
clusters, graph) as keyframes/s and as a share of the whole run.

    .venv/bin/python bench/pipeline.py [--minutes 3.5] [--out bench/results/pipeline.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / "cache"

DECODE = """
import sys, time, av
c = av.open(sys.argv[1]); s = c.streams.video[0]
s.thread_type = "AUTO"; s.codec_context.thread_count = int(sys.argv[2])  # as Marquee decodes
t = time.perf_counter(); n = sum(1 for _ in c.decode(s))
print(n, time.perf_counter() - t)
"""


def make_film(minutes: float, seed: int) -> Path:
    import numpy as np

    from marquee.synth.edits import random_edit_for_duration, render

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"film-720p-{minutes:g}min-s{seed}.mp4"
    if path.exists() and path.with_suffix(".mp4.truth.json").exists():
        return path
    rng = np.random.default_rng(seed)
    spec = random_edit_for_duration(rng, minutes * 60, size=(1280, 720), fps=25.0)
    render(spec, path)
    return path


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) of the child, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) * 1024, proc.stdout


CHARACTER_STEPS = ("faces", "face_embeddings", "face_clusters", "character_graph")


def step_seconds(home: Path) -> dict:
    """Seconds per step of the (only) run in ``home``'s Dagster instance, and the faces metadata."""
    from dagster import AssetKey, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster")))
    runs = instance.get_runs(limit=1)
    if not runs:
        raise SystemExit(f"no Dagster run recorded under {home}")
    stats = instance.get_run_step_stats(runs[0].run_id)
    steps = {s.step_key: round(s.end_time - s.start_time, 2) for s in stats if s.end_time and s.start_time}
    faces = instance.get_latest_materialization_event(AssetKey("faces"))
    meta = faces.asset_materialization.metadata if faces and faces.asset_materialization else {}
    values = {k: getattr(v, "value", v) for k, v in meta.items()}
    return {"steps": steps, "faces": {k: values.get(k) for k in ("n_keyframes", "n_faces", "n_tracks")}}


def characters_share(steps: dict, run_wall: float) -> dict:
    seconds = sum(steps["steps"].get(k, 0.0) for k in CHARACTER_STEPS)
    n = steps["faces"].get("n_keyframes") or 0
    return {
        **steps["faces"],
        "seconds": round(seconds, 2),
        "keyframes_per_s": round(n / seconds, 2) if seconds else None,
        "share_of_run_wall": round(seconds / run_wall, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.5)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--video", help="use this file instead of generating a film")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "pipeline.json"))
    args = ap.parse_args()

    video = Path(args.video) if args.video else make_film(args.minutes, args.seed)
    from marquee.ops.video import decode_threads, probe_video

    info = probe_video(video)
    env = {**os.environ}
    # RUSAGE_CHILDREN keeps the maximum over all children so far: measure the lighter run first.
    decode = [sys.executable, "-c", DECODE, str(video), str(decode_threads())]
    decode_wall, decode_rss, out = measure(decode, env)
    frames, decode_only = out.split()
    with tempfile.TemporaryDirectory() as home:
        env_run = {**env, "MARQUEE_HOME": home}
        env_run.pop("MARQUEE_STORAGE", None)
        run_wall, run_rss, _ = measure(
            [sys.executable, "-m", "marquee.orchestration.cli", "run", str(video), "--title", "bench-film"],
            env_run,
        )
        steps = step_seconds(Path(home))
    result = {
        "video": str(video),
        "resolution": f"{info.width}x{info.height}",
        "frames": info.frame_count,
        "duration_s": info.duration_s,
        "plain_decode": {
            "wall_s": round(decode_wall, 2),
            "decode_loop_s": round(float(decode_only), 2),
            "peak_rss_mb": round(decode_rss / 2**20, 1),
        },
        "marquee_run": {
            "wall_s": round(run_wall, 2),
            "peak_rss_mb": round(run_rss / 2**20, 1),
            "frames_per_s": round(info.frame_count / run_wall, 1),
            "realtime_factor": round(info.duration_s / run_wall, 2),
        },
        "steps_s": steps["steps"],
        "characters": characters_share(steps, run_wall),
        "ratio_wall_vs_decode": round(run_wall / decode_wall, 2),
        "ratio_peak_rss_vs_decode": round(run_rss / decode_rss, 2),
        "note": "marquee_run includes interpreter start, Dagster in-process run, ingest copy, probe, content "
        "hash, one decode pass with shot detection and keyframe spooling, the characters stages, the report "
        "and table/image writes. steps_s are Dagster's step durations.",
        "frames_in_file": int(frames),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
