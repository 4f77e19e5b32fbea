"""Whole-title cost and memory of ``marquee run`` at film length, against plain decode of the same file.

For each length asked (``--minutes 10 30 120``) this makes (or reuses) a film at ``--height`` (default
1080p, 24 fps) with ``marquee.synth.film``: scenes of real people from the labelled photos (one to four
faces on most frames, a long-tailed cast) between edits of the real clips, with an audio track and a
trailer cut from it. Then, each in a fresh subprocess so its memory is its own:

- **plain decode**: PyAV decoding every frame with Marquee's decoder threads, no conversion: the floor
  any pipeline pays;
- **``marquee run FILM --trailer TRAILER``**: ingest and every asset, Dagster in process.

Reported per length: wall and CPU seconds and peak RSS of both, their ratios; and per Dagster step, from
the run's event log and an RSS sampler (every 0.2 s over the run's process tree), its wall time, its
share of the run, its peak RSS and how much resident memory it left behind. Across lengths: each step's
seconds per film minute and the growth of time and peak RSS from the shortest length to the others
(linear in length means seconds per minute stay put; flat memory means the peak ratio stays near 1).

Results merge into ``--out`` (default ``bench/results/pipeline.json``) under
``runs["<minutes>min-<height>p"]``, so lengths can be run one at a time. With ``--keep`` the run's Marquee
home is kept under ``bench/cache/pipeline-homes/`` for ``bench/characters_scale.py``.

    .venv/bin/python bench/pipeline.py --minutes 10 30 120 --height 1080
    .venv/bin/python bench/pipeline.py --video FILM.mp4 [--trailer T.mp4]   # any file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / "cache"
HOMES = CACHE / "pipeline-homes"

DECODE = """
import sys, time, av
c = av.open(sys.argv[1]); s = c.streams.video[0]
s.thread_type = "AUTO"; s.codec_context.thread_count = int(sys.argv[2])  # as Marquee decodes
t = time.perf_counter(); n = sum(1 for _ in c.decode(s))
print(n, time.perf_counter() - t)
"""

#: The steps of the characters stages (their summed time is reported as one share).
CHARACTER_STEPS = ("faces", "face_embeddings", "face_clusters", "character_graph")


@dataclass
class Measured:
    """One child process: wall and CPU seconds, peak RSS (bytes; the sampled tree or the kernel's
    maximum, whichever is larger) and the RSS samples ``(epoch seconds, bytes)``."""

    wall_s: float
    cpu_s: float
    peak_rss: int
    stdout: str
    samples: list[tuple[float, int]] = field(default_factory=list)


def run_measured(cmd: list[str], env: dict[str, str], log: Path | None = None) -> Measured:
    """Run ``cmd``, sampling the resident memory of it and its children every 0.2 s."""
    import psutil

    err = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    samples: list[tuple[float, int]] = []
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    ps = psutil.Process(proc.pid)
    while True:  # wait4 (not Popen.poll, which would reap the child first) gives its own rusage
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            samples.append((time.time(), rss))
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    reader.join()
    if log:
        err.close()  # type: ignore[union-attr]
    if proc.returncode:
        tail = log.read_text()[-3000:] if log else ""
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    peak = max([usage.ru_maxrss * 1024] + [r for _, r in samples])
    return Measured(wall, usage.ru_utime + usage.ru_stime, peak, "".join(out), samples)


def step_windows(home: Path) -> dict[str, tuple[float, float]]:
    """Start and end (epoch seconds) of every step of the (only) run in ``home``'s Dagster instance."""
    from dagster import DagsterEventType, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster")))
    runs = instance.get_runs(limit=1)
    if not runs:
        raise SystemExit(f"no Dagster run recorded under {home}")
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    done = (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE)
    for e in instance.all_logs(runs[0].run_id):
        if e.dagster_event is None or e.step_key is None:
            continue
        if e.dagster_event.event_type == DagsterEventType.STEP_START:
            starts[e.step_key] = e.timestamp
        elif e.dagster_event.event_type in done:
            ends[e.step_key] = e.timestamp
    return {k: (starts[k], ends[k]) for k in sorted(starts, key=starts.get) if k in ends}  # type: ignore[arg-type]


def per_step(
    samples: list[tuple[float, int]], windows: dict[str, tuple[float, float]], run_wall: float
) -> dict:
    """Per step: wall, share of the run, peak RSS in its window and the RSS it started and ended at."""
    mb = 2**20
    out = {}
    for step, (a, b) in windows.items():
        inside = [r for t, r in samples if a <= t <= b]
        before = [r for t, r in samples if t < a]
        start = before[-1] if before else (inside[0] if inside else 0)
        out[step] = {
            "wall_s": round(b - a, 2),
            "share": round((b - a) / run_wall, 4),
            "peak_rss_mb": round(max(inside, default=start) / mb, 1),
            "rss_start_mb": round(start / mb, 1),
            "rss_end_mb": round((inside[-1] if inside else start) / mb, 1),
        }
    return out


def step_metadata(home: Path) -> dict[str, Any]:
    """A few counts from the run's materialisations: keyframes, faces, tracks, characters, shots."""
    from dagster import AssetKey, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster")))
    wanted = {
        "faces": ("n_keyframes", "n_faces", "n_tracks"),
        "face_embeddings": ("n_embedded",),
        "face_clusters": ("n_characters", "n_clusters"),
        "shot_features": ("n_shots",),
        "trailer_matches": ("n_matched", "n_trailer_shots"),
    }
    out: dict[str, Any] = {}
    for asset, keys in wanted.items():
        event = instance.get_latest_materialization_event(AssetKey(asset))
        meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
        for k in keys:
            if k in meta:
                out[k] = getattr(meta[k], "value", meta[k])
    return out


def film_for(minutes: float, height: int, seed: int) -> tuple[Path, Path | None]:
    """The benchmark film of this length and height (made once, cached) and its trailer."""
    from marquee.synth.film import make_film, trailer_path

    width = round(height * 16 / 9 / 2) * 2
    path = CACHE / "films" / f"film-{height}p-{minutes:g}min-s{seed}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    make_film(path, minutes=minutes, size=(width, height), seed=seed)
    print(f"film {path.name}: ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    trailer = trailer_path(path)
    return path, (trailer if trailer.exists() else None)


def measure(video: Path, trailer: Path | None, keep: Path | None) -> dict[str, Any]:
    """Plain decode, then ``marquee run``, of one file."""
    from marquee.ops.video import decode_threads, probe_video

    info = probe_video(video)
    env = {**os.environ}
    env.pop("MARQUEE_STORAGE", None)
    decode = run_measured([sys.executable, "-c", DECODE, str(video), str(decode_threads())], env)
    frames, decode_loop = decode.stdout.split()
    home = Path(tempfile.mkdtemp(prefix="marquee-bench-"))
    try:
        cmd = [sys.executable, "-m", "marquee.orchestration.cli", "run", str(video), "--title", "bench-film"]
        if trailer is not None:
            cmd += ["--trailer", str(trailer)]
        run = run_measured(cmd, {**env, "MARQUEE_HOME": str(home)}, log=home.parent / f"{home.name}.log")
        windows = step_windows(home)
        steps = per_step(run.samples, windows, run.wall_s)
        counts = step_metadata(home)
    finally:
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(home), keep)
        else:
            shutil.rmtree(home, ignore_errors=True)
    chars = sum(steps.get(k, {}).get("wall_s", 0.0) for k in CHARACTER_STEPS)
    mb = 2**20
    return {
        "video": str(video.relative_to(REPO) if video.is_relative_to(REPO) else video),
        "trailer": trailer.name if trailer else None,
        "resolution": f"{info.width}x{info.height}",
        "fps": round(info.fps, 3),
        "frames": int(frames),
        "duration_s": round(info.duration_s, 2),
        "plain_decode": {
            "wall_s": round(decode.wall_s, 2),
            "cpu_s": round(decode.cpu_s, 2),
            "decode_loop_s": round(float(decode_loop), 2),
            "frames_per_s": round(int(frames) / float(decode_loop), 1),
            "peak_rss_mb": round(decode.peak_rss / mb, 1),
        },
        "marquee_run": {
            "wall_s": round(run.wall_s, 2),
            "cpu_s": round(run.cpu_s, 2),
            "peak_rss_mb": round(run.peak_rss / mb, 1),
            "frames_per_s": round(int(frames) / run.wall_s, 1),
            "realtime_factor": round(info.duration_s / run.wall_s, 2),
        },
        "ratio_wall_vs_decode": round(run.wall_s / decode.wall_s, 2),
        "ratio_cpu_vs_decode": round(run.cpu_s / decode.cpu_s, 2),
        "steps": steps,
        "characters_share": round(chars / run.wall_s, 3),
        "counts": counts,
        "kept_home": str(keep.relative_to(REPO)) if keep is not None else None,
    }


def code_commit() -> str:
    """The commit measured, with ``+changes`` when the working tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    changed = git("status", "--porcelain", "marquee")
    return git("rev-parse", "--short", "HEAD") + ("+changes" if changed else "")


def growth(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per step, seconds per film minute at each length, and time and peak-RSS ratios to the shortest
    run of the same height (linear in length: the seconds per minute stay put)."""
    out: dict[str, Any] = {}
    by_height: dict[str, list[tuple[float, str]]] = {}
    for key, r in runs.items():
        by_height.setdefault(r["resolution"], []).append((r["duration_s"], key))
    for res, items in by_height.items():
        items.sort()
        base_d, base_key = items[0]
        base = runs[base_key]
        rows: dict[str, Any] = {}
        for step in base["steps"]:
            rows[step] = {
                key: {
                    "s_per_film_min": round(
                        runs[key]["steps"].get(step, {}).get("wall_s", 0.0) / (d / 60), 3
                    ),
                    "peak_rss_mb": runs[key]["steps"].get(step, {}).get("peak_rss_mb"),
                }
                for d, key in items
            }
        out[res] = {
            "lengths": [key for _, key in items],
            "length_ratio": {key: round(d / base_d, 2) for d, key in items},
            "run_wall_ratio": {
                key: round(runs[key]["marquee_run"]["wall_s"] / base["marquee_run"]["wall_s"], 2)
                for _, key in items
            },
            "peak_rss_ratio": {
                key: round(runs[key]["marquee_run"]["peak_rss_mb"] / base["marquee_run"]["peak_rss_mb"], 3)
                for _, key in items
            },
            "steps": rows,
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0])
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--video", help="measure this file instead of a generated film")
    ap.add_argument("--trailer", help="with --video: its trailer")
    ap.add_argument(
        "--keep", action="store_true", help="keep each run's Marquee home (for characters_scale.py)"
    )
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "pipeline.json"))
    args = ap.parse_args()

    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    if "runs" not in results:  # an older single-run file: start afresh
        results = {"runs": {}}
    results["machine"] = {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if args.video:
        jobs = [(Path(args.video).stem, Path(args.video), Path(args.trailer) if args.trailer else None)]
    else:
        jobs = []
        for m in args.minutes:
            video, trailer = film_for(m, args.height, args.seed)
            jobs.append((f"{m:g}min-{args.height}p", video, trailer))
    for key, video, trailer in jobs:
        print(f"measuring {key}: {video}", file=sys.stderr)
        keep = HOMES / key if args.keep else None
        results["runs"][key] = measure(video, trailer, keep) | {
            "measured_at": time.strftime("%Y-%m-%d %H:%M"),
            "commit": code_commit(),
        }
        results["growth"] = growth(results["runs"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        r = results["runs"][key]
        print(
            f"{key}: run {r['marquee_run']['wall_s']} s, decode {r['plain_decode']['wall_s']} s "
            f"(x{r['ratio_wall_vs_decode']}), peak RSS {r['marquee_run']['peak_rss_mb']} MB",
            file=sys.stderr,
        )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
