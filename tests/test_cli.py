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


def test_characters_prints_json_for_any_file(tmp_path: Path):
    """``marquee characters`` on a real animated trailer: the Sintel excerpt bundled with the package
    (640x272, 24 fps; frame numbers of ``<clip>.truth.json``). Looked at frame by frame: faces are on
    screen in the bearded man's close-up (0-48), Sintel's close-up and the fight in the snow (49-134),
    Sintel waking (252-285), her startled face (373-386) and her with the dragon (402-480); nowhere else
    (black, the corridor, the city, the dragon alone, the desert)."""
    from marquee.synth.media import bundled_media_dir

    clip = bundled_media_dir() / "clips" / "sintel_trailer_excerpt.mp4"
    proc = marquee("characters", str(clip), "--format", "json", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["width"], out["height"]) == (640, 272)
    assert out["characters"] and {"character_id", "screen_time_s", "n_faces", "n_tracks"} <= set(
        out["characters"][0]
    )
    faces = out["faces"]
    assert faces and all({"frame", "time_s", "track_id", "character_id"} <= set(f) for f in faces)
    for f in faces:
        x1, y1, x2, y2 = f["box"]
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 272, f  # source-video pixels
        assert any(a <= f["frame"] <= b for a, b in [(0, 134), (252, 285), (373, 480)]), f  # no false face
    bearded = [f for f in faces if f["frame"] <= 48]
    startled = [f for f in faces if 373 <= f["frame"] <= 386]
    assert bearded and startled
    x1, y1, x2, y2 = startled[0]["box"]
    assert x2 - x1 > 150 and x1 < 320 < x2  # her face fills the middle of the frame
    # an old bearded man and a girl: two characters, never in one shot together
    a, b = {f["character_id"] for f in bearded}, {f["character_id"] for f in startled}
    assert a.isdisjoint(b)
    for e in out["edges"]:
        assert not ({e["a"], e["b"]} & a and {e["a"], e["b"]} & b), e
    assert all({"a", "b", "frames", "shots"} <= set(e) for e in out["edges"])
    assert not (tmp_path / "home").exists()
