"""A title full of faces runs within the memory of a title without any: streaming, checked in CI.

Peak memory of ``marquee run`` should depend on the models it loads and on one batch of pictures, not
on how long the title is or how many faces it holds (a two-hour film has tens of thousands). A stage
that starts keeping every keyframe, face crop or fingerprint of a title shows up here: the face title
is three times longer than the face-free one and has faces on every frame, and must peak within 10% of
it. Both run as real ``marquee run`` processes (in-process Dagster, every asset), measured by the
kernel (``wait4``'s maximum resident size of the child).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from marquee.resources.lake import LakeResource
from marquee.resources.settings import Settings
from marquee.synth.media import bundled_media_dir

#: How far above the face-free title's peak the face title may go.
TOLERANCE = 0.10


def _peak_rss_mb(video: Path, home: Path, title: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARQUEE_")} | {"MARQUEE_HOME": str(home)}
    cmd = [sys.executable, "-m", "marquee.orchestration.cli", "run", str(video), "--title", title]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out[-3000:]
    return usage.ru_maxrss / 1024


def _counts(home: Path, title: str) -> tuple[int, int, int]:
    """(keyframes, keyframes with faces, faces) of a finished title."""
    wh = LakeResource.from_settings(Settings.from_env({"MARQUEE_HOME": str(home)})).warehouse()
    keyframes = wh.read_table("keyframes", title).num_rows
    faces = wh.read_table("faces", title)
    return keyframes, len(set(faces.column("frame").to_pylist())), faces.num_rows


@pytest.fixture(scope="module")
def titles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from marquee.synth.edits import random_edit_for_duration, render
    from marquee.synth.faces import make_character_video

    root = tmp_path_factory.mktemp("memory")
    empty = root / "no_faces.mp4"
    bunny = bundled_media_dir() / "clips" / "big_buck_bunny_excerpt.mp4"  # animals, no human faces
    spec = random_edit_for_duration(np.random.default_rng(5), 20, size=(640, 360), fps=25.0, sources=[bunny])
    render(spec, empty)
    full = root / "all_faces.mp4"
    make_character_video(
        full,
        seed=4,
        seconds=60,
        size=(640, 360),
        n_main=5,
        n_background=2,
        media=bundled_media_dir() / "faces",
    )
    return {"empty": empty, "full": full, "root": root}


def test_a_long_title_of_faces_peaks_within_ten_percent_of_a_short_title_without(titles: dict[str, Path]):
    root = titles["root"]
    empty_mb = _peak_rss_mb(titles["empty"], root / "home-empty", "empty")
    full_mb = _peak_rss_mb(titles["full"], root / "home-full", "full")
    kf, with_faces, n_faces = _counts(root / "home-full", "full")
    assert with_faces >= 0.8 * kf and n_faces >= kf, (kf, with_faces, n_faces)  # really full of faces
    e_kf, _, e_faces = _counts(root / "home-empty", "empty")
    assert e_faces <= 0.1 * max(n_faces, 1), (e_kf, e_faces)  # and the other really without
    print(f"peak RSS: no faces {empty_mb:.0f} MB, faces {full_mb:.0f} MB ({kf} keyframes, {n_faces} faces)")
    assert full_mb <= (1 + TOLERANCE) * empty_mb, (
        f"the 60-s title with faces on every frame ({kf} keyframes, {n_faces} faces) peaked at "
        f"{full_mb:.0f} MB against {empty_mb:.0f} MB for 20 s without faces: something holds a whole "
        "title's pictures, crops or fingerprints in memory"
    )
