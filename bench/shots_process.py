"""Shot detection end to end, as OS processes, on a long 720p title: ``marquee shots`` vs PySceneDetect.

Why: the speed target for shot detection is "no slower than PySceneDetect's content detector end to end,
``marquee shots`` as a process on a 10-minute 720p file, model loading included". ``bench/shots.py``
times the detectors in-process on short files with models loaded and warmed up beforehand, so it leaves
out what a user waits for: interpreter start, imports (torch), model loading, and output. This script
times exactly the commands a user would type, each as its own process, on one 10-minute 1280x720 file.

File: ``marquee.synth.edits.random_edit_for_duration(seconds=600, size=(1280, 720))`` of the real clips
found (25 fps, cuts, dissolves and fades), rendered once and cached under ``bench/cache/`` (gitignored;
the key holds seconds, size and seed). Rendering 10 minutes takes several minutes on 2 cores;
``--seconds 20`` makes a short file for a quick try.

Tools (each a separate process, stdout to a file, stderr kept for errors):

* ``marquee shots FILE --format json`` (default detector, ``hybrid``) and ``--detector fast``;
* PySceneDetect 0.7.2 ``scenedetect -i FILE -o TMP -q detect-content list-scenes -s -f scenes.csv``
  with its default backend (OpenCV) and with ``-b pyav``; the scene list goes to a small CSV in a temp
  dir (no images), and is read back to count scenes;
* plain decode of every frame with PyAV (``python -c``), with the decoder threads Marquee's passes use:
  the floor for any detector that decodes the whole file.

Timing: wall clock (``time.perf_counter`` around spawn and reap) and the child's CPU time (user + system,
all threads, from ``os.wait4``) plus its peak RSS. Tools interleaved over ``--repeats`` rounds, the
order rotated each round; each tool's figure is the median of its runs. Before the first round every
tool's libraries are imported once, untimed (torch and the detectors for ``marquee``), so the first
timed run does not pay for a cold page cache alone. Model weights are not pre-read: loading is timed.

    .venv/bin/python bench/shots_process.py [--seconds 600] [--repeats 3] [--out PATH]
    .venv/bin/python bench/shots_process.py --seconds 20 --repeats 1 --out /tmp/try.json   # quick try
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

CACHE = REPO / "bench" / "cache"
BIN = Path(sys.executable).parent  # the venv's bin: marquee, scenedetect, python
PYTHON = str(BIN / "python")
SEED = 0
# what `marquee shots --help` would not page in: torch and the shot detectors
WARM_MARQUEE = "import torch, marquee.ops.shots.registry, marquee.ops.shots.scan, marquee.orchestration.cli"


@dataclass
class Tool:
    """One command timed as a process; ``count`` reads its shot/frame count from stdout or ``tmp``."""

    name: str
    argv: list[str]
    kind: str  # "marquee", "scenedetect" or "decode": how the count is read back
    warm_argv: list[str]
    runs: list[dict[str, float]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def title_path(seconds: float, size: tuple[int, int]) -> Path:
    secs = f"{seconds:g}".replace(".", "p")
    return CACHE / f"shots_process-{secs}s-{size[0]}x{size[1]}-seed{SEED}.mp4"


def ensure_title(seconds: float, size: tuple[int, int]) -> tuple[Path, dict[str, Any]]:
    """The cached test title and its truth, rendered first when missing (render() writes atomically)."""
    path = title_path(seconds, size)
    truth_path = Path(str(path) + ".truth.json")
    if not (path.exists() and truth_path.exists()):
        print(f"rendering {path.name} ({seconds:g}s, {size[0]}x{size[1]}); this can take minutes", flush=True)
        t = time.perf_counter()
        code = (
            "import sys, numpy as np; from marquee.synth.edits import random_edit_for_duration, render; "
            "rng = np.random.default_rng(int(sys.argv[3])); "
            "size = (int(sys.argv[4]), int(sys.argv[5])); "
            "render(random_edit_for_duration(rng, float(sys.argv[2]), size=size, fps=25.0), sys.argv[1])"
        )
        argv = [PYTHON, "-c", code, str(path), str(seconds), str(SEED), str(size[0]), str(size[1])]
        subprocess.run(argv, check=True, cwd=REPO)
        print(f"rendered in {time.perf_counter() - t:.0f}s", flush=True)
    return path, json.loads(truth_path.read_text())


def decode_threads() -> int:
    """Marquee's decoder thread count, asked of a child: importing marquee here would swell this process,
    and a child's peak RSS (ru_maxrss) starts from its parent's at fork on Linux."""
    code = "from marquee.ops.video import decode_threads; print(decode_threads())"
    return int(
        subprocess.run([PYTHON, "-c", code], check=True, capture_output=True, text=True, cwd=REPO).stdout
    )


def make_tools(video: Path, threads: int) -> list[Tool]:
    py, marquee, scenedetect = PYTHON, str(BIN / "marquee"), str(BIN / "scenedetect")
    decode = (
        "import av, sys; c = av.open(sys.argv[1]); s = c.streams.video[0]; s.thread_type = 'AUTO'; "
        f"s.codec_context.thread_count = {threads}; print(sum(1 for _ in c.decode(s)))"
    )
    psd_tail = ["-q", "detect-content", "list-scenes", "-s", "-f", "scenes.csv"]
    return [
        Tool(
            "marquee shots (hybrid, default)",
            [marquee, "shots", str(video), "--format", "json"],
            "marquee",
            [py, "-c", WARM_MARQUEE],
        ),
        Tool(
            "marquee shots --detector fast",
            [marquee, "shots", str(video), "--format", "json", "--detector", "fast"],
            "marquee",
            [py, "-c", WARM_MARQUEE],
        ),
        Tool(
            "scenedetect detect-content (opencv, default)",
            [scenedetect, "-i", str(video), "-o", "{tmp}", *psd_tail],
            "scenedetect",
            [scenedetect, "version"],
        ),
        Tool(
            "scenedetect detect-content (-b pyav)",
            [scenedetect, "-i", str(video), "-o", "{tmp}", "-b", "pyav", *psd_tail],
            "scenedetect",
            [scenedetect, "version"],
        ),
        Tool("plain decode (PyAV)", [py, "-c", decode, str(video)], "decode", [py, "-c", "import av"]),
    ]


def run_process(argv: list[str], stdout_path: Path) -> dict[str, float]:
    """Spawn ``argv``, reap it with ``os.wait4``; wall seconds, CPU seconds (user+sys) and peak RSS."""
    with open(stdout_path, "wb") as out, open(str(stdout_path) + ".err", "wb") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = Path(str(stdout_path) + ".err").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{argv[:3]}... exited {proc.returncode}:\n{tail}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "max_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
    }


def read_count(tool: Tool, stdout_path: Path, tmp: Path) -> int:
    if tool.kind == "marquee":
        return len(json.loads(stdout_path.read_text()))
    if tool.kind == "scenedetect":
        with open(tmp / "scenes.csv", newline="") as f:
            rows = [r for r in csv.reader(f) if r]
        return len(rows) - 1  # header row, then one row per scene
    return int(stdout_path.read_text().strip())


def run_once(tool: Tool) -> tuple[dict[str, float], int]:
    with tempfile.TemporaryDirectory(prefix="shots_process-") as d:
        tmp = Path(d)
        argv = [a.replace("{tmp}", d) for a in tool.argv]
        stdout_path = tmp / "stdout"
        result = run_process(argv, stdout_path)
        return result, read_count(tool, stdout_path, tmp)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="length of the test title (default 600)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "shots_process.json")
    args = ap.parse_args()
    size = (args.width, args.height)

    video, truth = ensure_title(args.seconds, size)
    threads = decode_threads()
    tools = make_tools(video, threads)

    for tool in tools:  # untimed: page in each program's libraries once
        subprocess.run(tool.warm_argv, check=True, capture_output=True)

    for r in range(args.repeats):
        order = tools[r % len(tools) :] + tools[: r % len(tools)]
        for tool in order:
            result, count = run_once(tool)
            tool.runs.append(result)
            tool.counts.append(count)
            print(
                f"round {r + 1}/{args.repeats}  {tool.name:<46} wall {result['wall_s']:7.2f}s  "
                f"cpu {result['cpu_s']:7.2f}s  rss {result['max_rss_mib']:6.0f} MiB  count {count}",
                flush=True,
            )

    decoded = tools[-1].counts[0]
    fps = float(truth["fps"])
    per_tool: dict[str, dict[str, Any]] = {}
    for tool in tools:
        walls = [x["wall_s"] for x in tool.runs]
        cpus = [x["cpu_s"] for x in tool.runs]
        entry: dict[str, Any] = {
            "command": " ".join(tool.argv).replace(str(REPO) + "/", ""),
            "runs_s": [round(w, 3) for w in walls],
            "cpu_runs_s": [round(c, 3) for c in cpus],
            "median_wall_s": median(walls),
            "median_cpu_s": median(cpus),
            "max_rss_mib": round(max(x["max_rss_mib"] for x in tool.runs), 1),
            "frames_per_s": round(decoded / statistics.median(walls), 1),
        }
        if tool.kind == "decode":
            entry["frames_decoded"] = tool.counts[0]
            entry["decoder_threads"] = threads
        else:
            entry["shots"] = tool.counts[0]
            if len(set(tool.counts)) > 1:
                entry["shots_per_run"] = tool.counts
        per_tool[tool.name] = entry

    def ratio(a: str, b: str, key: str = "median_wall_s") -> float:
        return round(per_tool[a][key] / per_tool[b][key], 3)

    hybrid, fast = tools[0].name, tools[1].name
    psd_cv, psd_av, plain = tools[2].name, tools[3].name, tools[4].name
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "file": {
            "path": str(video.relative_to(REPO)),
            "frames": decoded,
            "seconds": round(decoded / fps, 2),
            "fps": fps,
            "size": list(truth["size"]),
            "bytes": video.stat().st_size,
            "true_transitions": len(truth["transitions"]),
            "true_shots": len(truth["transitions"]) + 1,
        },
        "repeats": args.repeats,
        "tools": per_tool,
        "ratios": {
            "marquee_vs_pyscenedetect_wall": ratio(hybrid, psd_cv),
            "marquee_vs_pyscenedetect_cpu": ratio(hybrid, psd_cv, "median_cpu_s"),
            "marquee_vs_pyscenedetect_pyav_wall": ratio(hybrid, psd_av),
            "marquee_vs_plain_decode_wall": ratio(hybrid, plain),
            "marquee_vs_plain_decode_cpu": ratio(hybrid, plain, "median_cpu_s"),
            "marquee_fast_vs_pyscenedetect_wall": ratio(fast, psd_cv),
            "marquee_fast_vs_plain_decode_wall": ratio(fast, plain),
        },
        "note": "ratios are time ratios (below 1 means marquee is faster); PySceneDetect finds cuts only, "
        "so its shot count misses dissolves and fades",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print()
    print(
        f"{result['file']['path']}: {decoded} frames, {decoded / fps:.0f}s, {size[0]}x{size[1]}, "
        f"{result['file']['true_shots']} true shots; median of {args.repeats}"
    )
    print()
    print("| tool | median wall s | median cpu s | frames/s | shots |")
    print("|---|---:|---:|---:|---:|")
    for name, e in per_tool.items():
        cells = [f"{e['median_wall_s']:.2f}", f"{e['median_cpu_s']:.2f}", f"{e['frames_per_s']:.0f}"]
        print(f"| {name} | {' | '.join(cells)} | {e.get('shots', '-')} |")
    print()
    for k, v in result["ratios"].items():
        print(f"{k}: {v}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
