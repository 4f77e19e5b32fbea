"""The ``marquee`` command line as users run it: separate processes, project-local state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from videos import write_video

MARQUEE = [sys.executable, "-m", "marquee.orchestration.cli"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARQUEE_", "DAGSTER_"))}
    return env | {"MARQUEE_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def marquee(*args: str, home: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``marquee`` CLI in a separate process with ``home`` as MARQUEE_HOME."""
    return subprocess.run([*MARQUEE, *args], env=_env(home), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[int]]]:
    d = tmp_path_factory.mktemp("clips")
    out = {}
    for name, lengths, seed in [("north", [40, 30, 35], 11), ("south", [30, 45], 12)]:
        p = d / f"{name}.mp4"
        out[name] = (p, write_video(p, lengths, seed=seed))
    return out


def test_shots_prints_json_for_any_file(clips, tmp_path: Path):
    video, cuts = clips["north"]
    proc = marquee("shots", str(video), "--format", "json", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    shots = json.loads(proc.stdout)
    keys = {"shot_id", "start_frame", "end_frame", "start_s", "end_s", "transition", "confidence", "motion"}
    assert all(keys <= set(s) for s in shots)
    assert all(0.0 <= s["motion"] <= 1.0 for s in shots)
    assert [s["start_frame"] for s in shots[1:]] == cuts
    assert shots[0]["transition"] == "start" and shots[-1]["end_frame"] == 104
    assert shots[1]["start_s"] == pytest.approx(40 / 25, abs=1e-3)
    assert not (tmp_path / "home").exists()  # no Dagster state for a plain file


def test_two_titles_run_at_once_in_separate_processes(clips, tmp_path: Path):
    """Two `marquee run` processes on one MARQUEE_HOME: both succeed, both titles are queryable."""
    env = _env(tmp_path / "home")
    procs = [
        subprocess.Popen(
            [*MARQUEE, "run", str(clips[name][0]), "--title", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("north", "south")
    ]
    outs = [p.communicate(timeout=500)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out
    assert "report:" in outs[0] and "index.html" in outs[0]
    query = "SELECT title_id, count(*) AS shots FROM shots GROUP BY 1 ORDER BY 1"
    proc = marquee("sql", query, "--format", "json", home=tmp_path / "home", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"title_id": "north", "shots": 3}, {"title_id": "south", "shots": 2}]
    report = tmp_path / "home" / "lake" / "reports" / "north"
    assert "data:image/jpeg;base64," in (report / "index.html").read_text()  # pictures inlined


def test_run_on_a_bad_file_names_the_file_and_the_reason(tmp_path: Path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n")
    proc = marquee("run", str(bad), home=tmp_path / "home")
    assert proc.returncode != 0
    assert "notes" in proc.stderr and "not a readable media file" in proc.stderr


HAMILTON = Path(__file__).resolve().parents[2] / "shared" / "media" / "clips" / "short_hamilton_clip.mp4"


@pytest.mark.skipif(not HAMILTON.is_file(), reason="../shared/media is absent")
def test_characters_prints_json_for_any_file(tmp_path: Path):
    proc = marquee("characters", str(HAMILTON), "--format", "json", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["characters"] and {"character_id", "screen_time_s", "n_faces", "n_tracks"} <= set(
        out["characters"][0]
    )
    face = out["faces"][0]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360  # source-video pixels
    assert {"frame", "time_s", "track_id", "character_id"} <= set(face)
    assert all({"a", "b", "frames", "shots"} <= set(e) for e in out["edges"])
    assert not (tmp_path / "home").exists()
