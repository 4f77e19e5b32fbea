"""Scale-out figures of the real local deployment (``marquee cluster``): throughput with 1 and 2 (or N)
Celery workers on the same titles, the deployment's per-run overhead against the in-process
``marquee run``, and (``--catalogue``) how the sensor and the UI hold up with a thousand titles.

Why these: a catalogue backfill is as fast as the number of titles per hour the workers sustain, and
short titles show the fixed cost a deployment adds to every run (queueing, the Celery hop, a run
worker opening Postgres and S3); the catalogue part checks that nothing in the sensor or the UI grows
with the number of titles faster than users can bear.

    .venv/bin/python bench/scaleout.py                      # 8 titles, 1 then 2 workers
    .venv/bin/python bench/scaleout.py --workers 1 2 4      # where more cores exist
    .venv/bin/python bench/scaleout.py --catalogue 1000 --backfill 50 --workers 2

Results go to ``bench/results/scaleout.json`` (each part replaces only its own key).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from deployment import client_env, deployment, gql, ingest_titles, launch_backfill, title_assets  # noqa: E402

from marquee.orchestration import cluster as cl  # noqa: E402
from marquee.synth.edits import procedural_frames  # noqa: E402

OUT = REPO / "bench" / "results" / "scaleout.json"
FPS = 25


def make_title(path: Path, seed: int, seconds: float, size: tuple[int, int]) -> Path:
    """A short title of procedural shots (a cut every 2 s), each seed a different look."""
    if path.exists():
        return path
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        total, shot = int(seconds * FPS), 2 * FPS
        for start in range(0, total, shot):
            n = min(shot, total - start)
            for frame in procedural_frames(seed * 100 + start // shot, 0, n, size):
                container.mux(
                    stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
                )
        container.mux(stream.encode())
    tmp.replace(path)
    return path


def ingest(state: cl.ClusterState, videos: dict[str, Path]) -> float:
    """Ingest and register the titles; returns the seconds it took."""
    t0 = time.perf_counter()
    ingest_titles(state, videos)
    return time.perf_counter() - t0


def run_records(state: cl.ClusterState, titles: set[str]) -> list[dict[str, Any]]:
    from dagster import DagsterEventType, DagsterInstance, RunsFilter

    out = []
    with client_env(state), DagsterInstance.get() as instance:
        for record in instance.get_run_records(RunsFilter()):
            run = record.dagster_run
            if run.tags.get("dagster/partition") not in titles:
                continue
            steps = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
            out.append(
                {
                    "title": run.tags["dagster/partition"],
                    "status": run.status.value,
                    "created": record.create_timestamp.timestamp(),
                    "start": record.start_time,
                    "end": record.end_time,
                    "first_step": min((e.timestamp for e in steps), default=None),
                }
            )
    return out


def wait_runs(state: cl.ClusterState, titles: set[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = run_records(state, titles)
        finished = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        if len({r["title"] for r in finished}) == len(titles) and len(finished) == len(runs):
            return runs
        time.sleep(3)
    raise TimeoutError(f"runs of {len(titles)} titles did not finish within {timeout:.0f} s")


def throughput(workers: int, videos: dict[str, Path], timeout: float) -> dict[str, Any]:
    """Backfill every title over the whole graph on a fresh deployment of ``workers`` workers."""
    with deployment(workers=workers) as state:
        ingest(state, videos)
        titles = set(videos)
        t0 = time.time()
        launch_backfill(state, sorted(titles))
        runs = wait_runs(state, titles, timeout)
        elapsed = max(r["end"] for r in runs) - t0
    ok = sum(r["status"] == "SUCCESS" for r in runs)
    overhead = [r["first_step"] - r["created"] for r in runs if r["first_step"]]
    to_first_step = [r["first_step"] - r["start"] for r in runs if r["first_step"] and r["start"]]
    return {
        "workers": workers,
        "titles": len(titles),
        "runs": len(runs),
        "succeeded": ok,
        "wall_s": round(elapsed, 1),
        "titles_per_hour": round(len(titles) / elapsed * 3600, 1),
        "run_s_median": round(statistics.median(r["end"] - r["start"] for r in runs), 1),
        "created_to_first_step_s_median": round(statistics.median(overhead), 2),
        "started_to_first_step_s_median": round(statistics.median(to_first_step), 2),
    }


def in_process_overhead(video: Path) -> dict[str, Any]:
    """``marquee run`` on one title in a fresh home: process start to its first step, and the whole run."""
    home = Path(tempfile.mkdtemp(prefix="marquee-scaleout-local-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARQUEE_", "DAGSTER_"))}
    env["MARQUEE_HOME"] = str(home)
    t0 = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "marquee.orchestration.cli", "run", str(video), "--title", "local-one"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.time() - t0
    if done.returncode:
        raise RuntimeError(f"marquee run failed: {done.stderr[-2000:]}")
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        run = instance.get_runs(limit=1)[0]
        first = min(e.timestamp for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START))
    return {"process_start_to_first_step_s": round(first - t0, 2), "wall_s": round(wall, 1)}


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 3)


def catalogue(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    """Register ``--catalogue`` tiny titles, backfill ``--backfill`` of them (title and shots), and
    measure sensor ticks, UI pages and ``marquee titles`` meanwhile; check no title ran twice."""
    videos = {f"cat-{i:04d}": make_title(cache / f"cat-{i:04d}.mp4", 5000 + i, 1.0, (96, 54))
              for i in range(args.catalogue)}  # fmt: skip
    with deployment(workers=args.workers[-1]) as state:
        ingest_s = ingest(state, videos)
        chosen = sorted(videos)[: args.backfill]
        selection = [a for a in title_assets(state) if a["path"][0] in ("title", "shots", "keyframes")]
        t0 = time.time()
        launch_backfill(state, chosen, selection)
        pages: dict[str, list[float]] = {}

        def page(name: str, fn) -> None:
            pages.setdefault(name, []).append(timed(fn))

        def http(path: str):
            return lambda: urllib.request.urlopen(f"{state.webserver_url}{path}", timeout=120).read()

        partitions_q = (
            '{ assetNodeOrError(assetKey: {path: ["shots"]}) { ... on AssetNode { '
            "partitionKeysByDimension { partitionKeys } assetPartitionStatuses { __typename } } } }"
        )
        runs = []
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            page(
                "asset graph (GraphQL assetNodes)", lambda: gql(state, "{ assetNodes { assetKey { path } } }")
            )
            page("shots partitions and statuses (GraphQL)", lambda: gql(state, partitions_q))
            page("runs list (GraphQL, 50)", lambda: gql(state, "{ runsOrError(limit: 50) { __typename } }"))
            page("UI page /assets (HTML)", http("/assets"))
            env = {**os.environ, **state.client_env()}
            page("marquee titles --format json", lambda env=env: subprocess.run(
                [sys.executable, "-m", "marquee.orchestration.cli", "titles", "--format", "json"],
                env=env, capture_output=True, check=True))  # fmt: skip
            runs = run_records(state, set(chosen))
            if len({r["title"] for r in runs if r["status"] == "SUCCESS"}) == len(chosen):
                break
            time.sleep(5)
        elapsed = time.time() - t0
        ticks = sensor_ticks(state)
    per_title: dict[str, int] = {}
    for r in runs:
        per_title[r["title"]] = per_title.get(r["title"], 0) + 1
    return {
        "titles_registered": len(videos),
        "ingest_s": round(ingest_s, 1),
        "backfill_titles": len(chosen),
        "backfill_assets": [a["path"][0] for a in selection],
        "backfill_wall_s": round(elapsed, 1),
        "runs": len(runs),
        "succeeded": sum(r["status"] == "SUCCESS" for r in runs),
        "titles_run_more_than_once": sorted(t for t, n in per_title.items() if n > 1),
        "sensor_ticks": ticks,
        "page_s": {
            k: {"median": round(statistics.median(v), 3), "max": max(v), "n": len(v)}
            for k, v in pages.items()
        },
    }


def sensor_ticks(state: cl.ClusterState) -> dict[str, Any]:
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorType

    with client_env(state), DagsterInstance.get() as instance:
        states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        durations = []
        for s in states:
            for tick in instance.get_ticks(s.instigator_origin_id, s.selector_id, limit=200):
                if tick.end_timestamp:
                    durations.append(tick.end_timestamp - tick.timestamp)
    if not durations:
        return {"n": 0}
    return {
        "n": len(durations),
        "median_s": round(statistics.median(durations), 3),
        "max_s": round(max(durations), 3),
    }


@contextmanager
def results() -> Any:
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    yield data
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--titles", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each throughput title")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--catalogue", type=int, default=0, help="titles to register for the catalogue part")
    ap.add_argument("--backfill", type=int, default=50, help="titles of the catalogue to backfill")
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    if missing := cl.missing_servers():
        print("cannot run: " + "; ".join(missing), file=sys.stderr)
        return 2
    cache = REPO / "bench" / "cache" / "scaleout"
    cache.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "command": " ".join(sys.argv)}
    if args.catalogue:
        figures = catalogue(args, cache)
        print(json.dumps(figures, indent=2))
        with results() as data:
            data["catalogue"] = {**meta, **figures}
        return 0
    videos = {f"so-{i}": make_title(cache / f"so-{i}-{args.seconds:g}s.mp4", i, args.seconds, (320, 180))
              for i in range(args.titles)}  # fmt: skip
    local = in_process_overhead(videos["so-0"])
    rows = [throughput(w, videos, args.timeout) for w in args.workers]
    base = rows[0]["titles_per_hour"]
    for row in rows:
        row["speedup_vs_first"] = round(row["titles_per_hour"] / base, 2)
    print("| workers | titles/hour | wall s | run s (median) | created -> first step s | speed-up |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['titles_per_hour']} | {r['wall_s']} | {r['run_s_median']} | "
              f"{r['created_to_first_step_s_median']} | {r['speedup_vs_first']}x |")  # fmt: skip
    first = local["process_start_to_first_step_s"]
    print(f"in-process `marquee run`: process start -> first step {first} s, whole run {local['wall_s']} s")
    with results() as data:
        data["throughput"] = {
            **meta,
            "title_seconds": args.seconds,
            "rows": rows,
            "in_process_marquee_run": local,
        }
    return 0


if __name__ == "__main__":
    sys.exit(main())
