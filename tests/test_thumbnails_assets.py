"""expression_model -> expression_scores -> thumbnail_candidates -> report, on the generated title
with real faces (``conftest.materialised``, made from the face photos bundled with the package)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dagster import AssetKey
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver
from PIL import Image

from marquee.ops.thumbnails.crops import ASPECTS, Box


def test_scores_and_candidates_materialise_with_passing_checks(materialised):
    result = materialised["result"]
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["every_face_scored"] and checks["candidates_point_at_images"]
    wh = materialised["lake"].warehouse()
    scores = wh.read_table("expression_scores", "chars").to_pylist()
    assert scores and all(0.0 <= s["expression"] <= 1.0 for s in scores)
    found = [s for s in scores if s["landmarks_found"]]
    assert len(found) >= 0.8 * len(scores)  # FaceMesh finds landmarks on most generated faces
    # The generated faces come from photos with open eyes: the eyes factor should say so.
    assert np.mean([s["eyes_open"] > 0.5 for s in found]) >= 0.9
    frames = wh.read_table("frame_expressions", "chars")
    assert frames.num_rows == wh.read_table("keyframes", "chars").num_rows


def test_candidates_have_crops_of_the_right_shape_and_a_face_free_logo_area(materialised):
    lake = materialised["lake"]
    wh, store = lake.warehouse(), lake.store()
    candidates = wh.read_table("thumbnail_candidates", "chars").sort_by("rank").to_pylist()
    assert candidates and [c["rank"] for c in candidates] == list(range(1, len(candidates) + 1))
    leads = {
        c["character_id"] for c in wh.read_table("characters", "chars").to_pylist() if not c["background"]
    }
    faces = wh.read_table("faces", "chars").to_pylist()
    for c in candidates:
        assert c["primary_character"] in leads
        assert c["score"] == pytest.approx(c["prominence"] * c["expression"] * c["quality"], abs=1e-4)
        frame_faces = [Box(f["x1"], f["y1"], f["x2"], f["y2"]) for f in faces if f["frame"] == c["frame"]]
        for name, aspect in ASPECTS.items():
            img = Image.open(io.BytesIO(store.read_bytes(c[f"crop_{name}_key"])))
            assert img.width / img.height == pytest.approx(aspect, rel=0.02)
            crop = Box(*c[f"crop_{name}_box"])
            if c[f"logo_{name}_box"] is not None:
                logo = Box(*c[f"logo_{name}_box"])
                assert crop.contains(logo, tol=2)
                assert all(logo.overlap(f) == 0 for f in frame_faces)
    page = store.read_bytes("reports/chars/index.html").decode()
    assert "<h2>Thumbnail candidates</h2>" in page


def test_retraining_the_expression_model_marks_scores_stale_and_a_backfill_refreshes_them(materialised):
    """A thumbnail dataset appears; the model is re-trained; expression_scores and what follows go
    stale (faces do not); re-materialising only those assets makes them fresh again."""
    from marquee.synth.media import bundled_media_dir

    lake, instance, defs = materialised["lake"], materialised["instance"], materialised["defs"]
    store = lake.store()
    model_job = defs.resolve_job_def("expression_model_job")
    assert model_job.execute_in_process(instance=instance).success  # the rule
    # Positives: portrait photos (artwork-like); negatives: the title's own keyframes.
    for i, photo in enumerate(sorted((bundled_media_dir() / "faces").glob("*/*.jpg"))[:6]):
        store.write_bytes(f"datasets/thumbnails/demo/artwork/{i}.jpg", photo.read_bytes())
    for k in lake.warehouse().read_table("keyframes", "chars").to_pylist()[:12]:
        store.write_bytes(
            f"datasets/thumbnails/demo/frames/{k['frame']}.jpg", store.read_bytes(k["image_key"])
        )
    result = model_job.execute_in_process(instance=instance)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["kind"].value == "trained"
    assert meta["inputs"].value in ("signals", "signals+embedding")
    resolver = get_stale_status_resolver(instance, list(defs.assets))
    assert resolver.get_status(AssetKey("faces"), "chars") == StaleStatus.FRESH
    assert resolver.get_status(AssetKey("expression_scores"), "chars") == StaleStatus.STALE
    refresh = defs.resolve_job_def("expressions_refresh_job")
    assert refresh.execute_in_process(partition_key="chars", instance=instance).success
    resolver = get_stale_status_resolver(instance, list(defs.assets))
    for key in ("expression_scores", "thumbnail_candidates", "report"):
        assert resolver.get_status(AssetKey(key), "chars") == StaleStatus.FRESH, key
    models = {r["model"] for r in lake.warehouse().read_table("expression_scores", "chars").to_pylist()}
    assert len(models) == 1 and models.pop().startswith("trained-")


def test_report_renders_in_a_headless_browser(materialised, tmp_path):
    """Open the stored page in Debian's chromium (no browser download) and look at the screenshot:
    it must render, with pictures (not a blank or broken page)."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    page = tmp_path / "index.html"
    page.write_bytes(materialised["lake"].store().read_bytes("reports/chars/index.html"))
    shot = tmp_path / "report.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
    ]
    cmd = [browser, *flags, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}"]
    subprocess.run([*cmd, "--window-size=1200,2000", page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("RGB"), np.float32)
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 20  # text, tables and pictures, not an empty page
    dom = subprocess.run(
        [browser, *flags, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "Thumbnail candidates" in dom and dom.count("<img") >= 5


def test_a_model_that_reads_embeddings_gets_each_faces_or_its_tracks_descriptor(materialised):
    """The title's descriptors feed a model trained on the same embedder; another embedder's
    descriptors are treated as missing, with a note saying to re-train."""
    from marquee.ops.expressions.model import TrainedModel, model_embeddings
    from marquee.ops.faces.tables import faces_from_table

    lake = materialised["lake"]
    wh = lake.warehouse()
    table = wh.read_table("face_embeddings", "chars")
    embedder = table.filter(table.column("embedded")).column("embedder")[0].as_py()
    faces = faces_from_table(wh.read_table("faces", "chars"))
    ids = [f.face_id for f in faces]
    model = TrainedModel(pipeline=None, trained_version="trained-test", embedder=embedder, embedding_dim=128)
    vectors, note = model_embeddings(model, table, faces, ids)
    assert note == "" and vectors.shape == (len(ids), 128)
    embedded = {r["face_id"] for r in table.to_pylist() if r["embedded"]}
    rows = {i: np.isfinite(vectors[n]).all() for n, i in enumerate(ids)}
    assert all(rows[i] for i in embedded)
    assert sum(rows.values()) > len(embedded)  # track means fill faces that were not embedded
    other = TrainedModel(None, trained_version="trained-x", embedder="facenet@1+x", embedding_dim=512)
    vectors, note = model_embeddings(other, table, faces, ids)
    assert np.isnan(vectors).all() and "re-train expression_model" in note
