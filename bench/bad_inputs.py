"""Bad-input survey: how the ``marquee`` CLI answers inputs a demanding user would throw at it.

The script makes every input itself, in a temporary folder (PyAV, numpy, OpenCV, Pillow or plain
bytes; the small H.264 videos and the audio-only file come from ``tests/videos.py``): missing,
empty, not-a-video, truncated and header-only files, stills and a GIF renamed or not, degenerate
videos (1 and 2 frames, 16x16, odd size, 0.2 s, a 90-degree display matrix), awkward file names and
unsafe title ids, conflicting re-ingests, a trailer that is text, hostile or broken ``marquee sql``
queries, unknown titles, unwritable or unreachable storage, and an unknown shot detector.

Each case runs one CLI command in a subprocess (``python -m marquee.orchestration.cli``) with a fresh
``MARQUEE_HOME`` under the temporary folder (the baseline title's home is shared by the cases that
need an existing title), an environment stripped of every other ``MARQUEE_*``, ``DAGSTER_*`` and
``AWS_*`` variable, and a 300 s timeout. ``marquee ingest`` (probe and stage only) is used where the
point is input validation, ``marquee run`` where it is a full run.

Per case it records the command (paths shortened to file names), exit code, the user-facing message
(the last non-empty stderr line starting with ``marquee``, else the last non-empty stderr line),
whether stderr holds a Python traceback, the number of stderr lines and the seconds taken, and writes
``bad_inputs.json`` and ``bad_inputs.md`` (a table) to ``--out``; the table is printed at the end.

    .venv/bin/python bench/bad_inputs.py [--out bench/results] [--keep] [--only SUBSTRING]

Takes about 5-10 minutes on 2 cores (the full runs dominate).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from videos import scene_texture, write_audio_only, write_frames, write_video  # noqa: E402

TIMEOUT_S = 300
MD_MESSAGE_CHARS = 320
#: An unroutable-by-design loopback port: the discard service, closed here, so connections are refused.
DEAD_S3_ENDPOINT = "http://127.0.0.1:9"
READ_ONLY_STORAGE = "/proc/marquee-lake"
COPY_TARGET = "/tmp/x.csv"
SUMMARY = re.compile(r"^\S+: [\d.]+s, \d+ frames, \d+x\d+$")


# ---- inputs ----------------------------------------------------------------------------------------
def moving_frames(n: int, w: int, h: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` frames of a smooth colour field drifting without a jump (up to 64 frames), ``w`` x ``h``."""
    tex = scene_texture(np.random.default_rng(seed), max(h, 16), max(w, 16)).astype(np.uint8)
    return [
        np.ascontiguousarray(tex[(i // 2) % 32 : (i // 2) % 32 + h, i % 64 : i % 64 + w]) for i in range(n)
    ]


def still(kind: str, w: int = 192, h: int = 108, frames: int = 1) -> bytes:
    pictures = [Image.fromarray(f) for f in moving_frames(frames, w, h, seed=3)]
    buf = io.BytesIO()
    if kind == "GIF":
        pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=40, loop=0)
    else:
        pictures[0].save(buf, format=kind)
    return buf.getvalue()


def top_level_atoms(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the top-level ISO-BMFF boxes of ``data``."""
    atoms, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            break
        atoms.append((kind, pos, size))
        pos += size
    return atoms


def make_inputs(d: Path) -> dict[str, Path]:
    """Write every input file under ``d``; returns them by name."""
    d.mkdir(parents=True, exist_ok=True)
    p: dict[str, Path] = {}

    def path(name: str) -> Path:
        p[name] = d / name
        return p[name]

    write_video(path("good.mp4"), [30, 30, 30], audio=True, seed=0)
    write_video(path("other.mp4"), [25, 35, 30], audio=True, seed=7)
    good = p["good.mp4"].read_bytes()
    path("missing.mp4")  # never written
    path("folder.mp4").mkdir()
    path("empty.mp4").write_bytes(b"")
    path("notes.mp4").write_text("These are my notes about the film.\nNot a video at all.\n")
    path("notes.txt").write_text("This trailer is a text file.\n")
    path("random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, np.uint8).tobytes())
    path("truncated-half.mp4").write_bytes(good[: len(good) // 2])
    path("header-1k.mp4").write_bytes(good[:1024])
    atoms = top_level_atoms(good)
    moov = next(((off, size) for kind, off, size in atoms if kind == b"moov"), None)
    if moov is None:
        raise RuntimeError(f"good.mp4 has no moov atom: {[a[0] for a in atoms]}")
    # libx264 + the mp4 muxer put moov last: keep everything before it (ftyp, mdat), lose the index.
    path("no-moov.mp4").write_bytes(good[: moov[0]] + good[moov[0] + moov[1] :])
    write_audio_only(path("audio-only.mp4"), seconds=2.0)
    path("still-jpeg.mp4").write_bytes(still("JPEG"))
    path("still-png.mp4").write_bytes(still("PNG"))
    path("animated.gif").write_bytes(still("GIF", frames=25))
    write_frames(path("one-frame.mp4"), moving_frames(1, 192, 108))
    write_frames(path("two-frames.mp4"), moving_frames(2, 192, 108))
    write_frames(path("tiny-16x16.mp4"), moving_frames(50, 16, 16))
    # libx264 refuses odd sizes in 4:2:0; 4:4:4 (High 4:4:4 Predictive) codes 193x107 as it is.
    write_frames(path("odd-193x107.mp4"), moving_frames(50, 193, 107), pix_fmt="yuv444p")
    write_frames(path("short-0.2s.mp4"), moving_frames(5, 192, 108))
    # As a phone records a portrait clip: coded 192x108 landscape, displayed 108x192 (90 deg clockwise).
    write_frames(path("rotated-90.mp4"), moving_frames(50, 192, 108), display_rotation=90)
    shutil.copyfile(p["good.mp4"], path("Mon film été (2019) – 🎬 final.mp4"))
    return p


# ---- cases -----------------------------------------------------------------------------------------
@dataclass
class Case:
    kind: str
    args: list[str]
    home: str  # name of the MARQUEE_HOME folder; cases with one name share a home
    env: dict[str, str] = field(default_factory=dict)
    expect: str = "error"  # "error" (a bad input must be refused) or "ok"
    note: str = ""


def build_cases(p: dict[str, Path]) -> list[Case]:
    f = {k: str(v) for k, v in p.items()}
    good, nonsense_sql = f["good.mp4"], "SELEC title_id FROM shots"
    cases = [
        # The shared home: a good title first, then what a user does to an existing title.
        Case("baseline: good 3.6 s video (run)", ["run", good, "--title", "good"], "main", expect="ok"),
        Case(
            "re-ingest different bytes, no --replace (run)",
            ["run", f["other.mp4"], "--title", "good"],
            "main",
        ),
        Case(
            "re-ingest different bytes, no --replace (ingest)",
            ["ingest", f["other.mp4"], "--title", "good"],
            "main",
        ),
        Case("re-ingest identical bytes (run)", ["run", good, "--title", "good"], "main", expect="ok"),
        Case("sql: syntax error", ["sql", nonsense_sql], "main"),
        Case("sql: read_csv('/etc/passwd')", ["sql", "SELECT * FROM read_csv('/etc/passwd')"], "main"),
        Case("sql: COPY shots TO a file", ["sql", f"COPY shots TO '{COPY_TARGET}'"], "main"),
        Case("sql: table that does not exist", ["sql", "SELECT * FROM no_such_table"], "main"),
        Case("report: unknown title", ["report", "no-such-title"], "main"),
        Case("doctor: unknown title", ["doctor", "no-such-title"], "main"),
        # Input validation: ingest only probes and stages.
        Case("missing file", ["ingest", f["missing.mp4"]], "ingest-missing"),
        Case("a directory instead of a file", ["ingest", f["folder.mp4"]], "ingest-dir"),
        Case("empty file (0 bytes)", ["ingest", f["empty.mp4"]], "ingest-empty"),
        Case("text file renamed .mp4", ["ingest", f["notes.mp4"]], "ingest-text"),
        Case("random bytes (200 KB)", ["ingest", f["random.mp4"]], "ingest-random"),
        Case("truncated mp4 (first half of the bytes)", ["ingest", f["truncated-half.mp4"]], "ingest-trunc"),
        Case(
            "truncated mp4 (first half of the bytes), full run",
            ["run", f["truncated-half.mp4"]],
            "run-trunc",
        ),
        Case("mp4 header only (first 1 KB)", ["ingest", f["header-1k.mp4"]], "ingest-header"),
        Case("mp4 with its moov atom cut out", ["ingest", f["no-moov.mp4"]], "ingest-moov"),
        Case("audio-only mp4 (AAC, 2 s)", ["ingest", f["audio-only.mp4"]], "ingest-audio"),
        Case("JPEG renamed .mp4", ["ingest", f["still-jpeg.mp4"]], "ingest-jpeg"),
        Case("PNG renamed .mp4", ["ingest", f["still-png.mp4"]], "ingest-png"),
        Case("animated GIF (25 frames)", ["ingest", f["animated.gif"]], "ingest-gif", expect="?"),
        Case(
            "file name with spaces and unicode",
            ["ingest", f["Mon film été (2019) – 🎬 final.mp4"]],
            "ingest-unicode",
            expect="ok",
        ),
        Case("unsafe title id --title ../etc", ["ingest", good, "--title", "../etc"], "ingest-t1"),
        Case("unsafe title id --title UPPER", ["ingest", good, "--title", "UPPER"], "ingest-t2"),
        Case("unsafe title id --title a/b", ["ingest", good, "--title", "a/b"], "ingest-t3"),
        Case("title id of 129 characters", ["ingest", good, "--title", "a" * 129], "ingest-t4"),
        Case(
            "title id of 128 characters (the limit)",
            ["ingest", good, "--title", "b" * 128],
            "ingest-t5",
            expect="ok",
        ),
        Case(
            "--trailer pointing to a text file",
            ["ingest", good, "--trailer", f["notes.txt"]],
            "ingest-trailer",
        ),
        Case(
            "MARQUEE_STORAGE read-only (/proc)",
            ["ingest", good],
            "ingest-ro",
            env={"MARQUEE_STORAGE": READ_ONLY_STORAGE},
        ),
        Case(
            "MARQUEE_STORAGE=s3://bucket, endpoint refuses connections",
            ["ingest", good],
            "ingest-s3",
            env={
                "MARQUEE_STORAGE": "s3://bucket/marquee",
                "MARQUEE_S3_ENDPOINT_URL": DEAD_S3_ENDPOINT,
                # Dummy credentials, so that the client gets as far as connecting.
                "AWS_ACCESS_KEY_ID": "bench-dummy",
                "AWS_SECRET_ACCESS_KEY": "bench-dummy",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        ),
        Case("marquee shots on a text file", ["shots", f["notes.mp4"]], "shots-text"),
        Case(
            "marquee shots on a 1-frame video", ["shots", f["one-frame.mp4"], "--format", "json"], "shots-1"
        ),
        # Degenerate but valid videos: the full run.
        Case("1-frame video (run)", ["run", f["one-frame.mp4"]], "run-1", expect="?"),
        Case("2-frame video (run)", ["run", f["two-frames.mp4"]], "run-2", expect="?"),
        Case("tiny 16x16 video, 2 s (run)", ["run", f["tiny-16x16.mp4"]], "run-tiny", expect="?"),
        Case(
            "odd size 193x107 (H.264 4:4:4), 2 s (run)",
            ["run", f["odd-193x107.mp4"]],
            "run-odd",
            expect="?",
            note="libx264 refuses odd sizes in 4:2:0, so the file is H.264 High 4:4:4 Predictive",
        ),
        Case("very short 0.2 s video, 5 frames (run)", ["run", f["short-0.2s.mp4"]], "run-short", expect="?"),
        Case(
            "90-degree display rotation, 2 s (run)",
            ["run", f["rotated-90.mp4"]],
            "run-rotated",
            expect="ok",
            note="coded 192x108 with a display matrix of 90 degrees clockwise (PyAV set_display_rotation)",
        ),
        Case(
            "unknown MARQUEE_SHOT_DETECTOR=nope (run)",
            ["run", good],
            "run-detector",
            env={"MARQUEE_SHOT_DETECTOR": "nope"},
        ),
    ]
    return cases


# ---- running ---------------------------------------------------------------------------------------
def clean_env() -> dict[str, str]:
    drop = ("MARQUEE_", "DAGSTER_", "AWS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def shorten(text: str, root: Path) -> str:
    """Input paths to file names, any other path under the temporary folder to ``$TMP/...``."""
    return text.replace(f"{root}/inputs/", "").replace(str(root), "$TMP")


def quote(arg: str) -> str:
    """Shell quoting that stays readable for SQL: double quotes around single-quoted literals."""
    if shlex.quote(arg) == arg or "'" not in arg or any(c in arg for c in '"$`\\!'):
        return shlex.quote(arg)
    return f'"{arg}"'


def command_line(case: Case, root: Path) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in case.env.items() if not k.startswith("AWS_"))
    argv = []
    for a in case.args:
        short = Path(a).name if a.startswith(str(root)) else a
        if len(short) > 60:
            short = f"{short[:3]}...({len(short)} chars)"
        argv.append(quote(short))
    return " ".join(x for x in [env, "marquee", *argv] if x)


def run_case(case: Case, root: Path) -> dict:
    env = clean_env()
    env["MARQUEE_HOME"] = str(root / "homes" / case.home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(case.env)
    cmd = [sys.executable, "-m", "marquee.orchestration.cli", *case.args]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:

        def text(b: bytes | str | None) -> str:
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")

        code, out, err = "timeout", text(exc.stdout), text(exc.stderr)
    seconds = time.perf_counter() - t0
    err_lines = [ln for ln in err.splitlines() if ln.strip()]
    out_lines = [ln for ln in out.splitlines() if ln.strip()]
    marquee_lines = [ln for ln in err_lines if ln.startswith("marquee")]
    message = (marquee_lines or err_lines or [""])[-1].strip()
    return {
        "kind": case.kind,
        "command": command_line(case, root),
        "exit": code,
        "message": shorten(message, root),
        "traceback": "Traceback" in err,
        "stderr_lines": len(err.splitlines()),
        "seconds": round(seconds, 2),
        "expect": case.expect,
        "note": case.note,
        "stdout_last": shorten(out_lines[-1].strip(), root) if out_lines else "",
        "stdout_first": shorten(out_lines[0].strip(), root) if out_lines else "",
        # `marquee run`'s summary of a finished title: "<id>: 3.6s, 90 frames, 192x108" and its shots.
        "run_summary": "; ".join(
            " ".join(ln.split()) for ln in out_lines if SUMMARY.match(ln) or ln.strip().startswith("shots:")
        ),
        "stderr_tail": [shorten(ln, root) for ln in err_lines[-6:]],
    }


def verdict(r: dict) -> str:
    """A rough reading of one result: how a user would take it."""
    ok = r["exit"] == 0
    if r["exit"] == "timeout":
        return "TIMEOUT"
    if r["traceback"]:
        return "raw traceback"
    if r["expect"] == "error" and ok:
        return "accepted a bad input"
    if r["expect"] == "ok" and not ok:
        return "refused a good input"
    if not ok and not r["message"].startswith("marquee"):
        return "unclear: no `marquee ...` message"
    return "ok"


# ---- output ----------------------------------------------------------------------------------------
def md_cell(text: str) -> str:
    text = text if len(text) <= MD_MESSAGE_CHARS else text[: MD_MESSAGE_CHARS - 3] + "..."
    return text.replace("|", "\\|").replace("\n", " ")


def shown_message(r: dict) -> str:
    """The message column: what the user is told; for a success, what stdout says it did."""
    if r["exit"] != 0 or r["message"].startswith("marquee"):
        return r["message"]
    said = " / ".join(x for x in (r["stdout_first"], r["run_summary"]) if x)
    return f"(stdout) {said}" if said else r["message"]


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        "# Bad-input survey",
        "",
        f"`{meta['command']}` on {meta['date']}, {meta['machine']}; {len(results)} cases, "
        f"{meta['total_s']:.0f} s in all. Message: the last stderr line starting with `marquee`, else the "
        "last stderr line; for a success, what stdout says (marked `(stdout)`: the first line, and for "
        "`run` the title's summary; the JSON keeps the stderr rule in `message`). "
        "Paths: input files by name, the temporary folder as `$TMP`.",
        "",
        "| # | input | command | exit | message | traceback? |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results, 1):
        message = shown_message(r)
        lines.append(
            f"| {i} | {md_cell(r['kind'])} | `{md_cell(r['command'])}` | {r['exit']} | {md_cell(message)} | "
            f"{'**yes**' if r['traceback'] else 'no'} |"
        )
    flagged = [(i, r) for i, r in enumerate(results, 1) if r["verdict"] != "ok"]
    lines += ["", "## Flagged", ""]
    if not flagged:
        lines.append("None.")
    for i, r in flagged:
        lines.append(
            f"- #{i} {r['kind']}: {r['verdict']} (exit {r['exit']}, {r['stderr_lines']} stderr lines)"
        )
    lines += [
        "",
        "Expectations (`expect` in the JSON): `error` for inputs that must be refused, `ok` for inputs that "
        "must work, `?` for degenerate videos where either a run or a clear refusal is acceptable.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--only", default=None, help="run only the cases whose kind contains this (debugging)")
    args = ap.parse_args()

    t_start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="marquee-bad-inputs-")).resolve()
    copy_target_existed = os.path.exists(COPY_TARGET)
    try:
        inputs = make_inputs(root / "inputs")
        cases = build_cases(inputs)
        if args.only:
            cases = [c for c in cases if args.only in c.kind]
        results = []
        for i, case in enumerate(cases, 1):
            r = run_case(case, root)
            r["verdict"] = verdict(r)
            if "COPY" in case.kind:
                wrote = not copy_target_existed and os.path.exists(COPY_TARGET)
                r["wrote_copy_target"] = wrote
                if wrote:
                    os.remove(COPY_TARGET)  # ours: it did not exist before the case ran
            results.append(r)
            print(
                f"[{i:2}/{len(cases)}] {r['seconds']:6.1f}s exit {r['exit']!s:>7}  {case.kind}: "
                f"{(r['message'] or r['stdout_first'])[:120]}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - t_start
    meta = {
        "command": "python bench/bad_inputs.py" + (f" --only {shlex.quote(args.only)}" if args.only else ""),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PyAV {av.__version__}, OpenCV {cv2.__version__}",
        "timeout_s": TIMEOUT_S,
        "total_s": round(total, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bad_inputs.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2, ensure_ascii=False) + "\n"
    )
    table = markdown(results, meta)
    (args.out / "bad_inputs.md").write_text(table)
    print(table)
    print(f"total {total:.0f} s; wrote {args.out / 'bad_inputs.json'} and {args.out / 'bad_inputs.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
