"""The characters assets in Dagster: faces -> face_embeddings -> face_clusters -> character_graph.

The end-to-end tests run the whole title job on a short video made from the real face photos shipped
with the package (``marquee.synth.media``); the model-update tests need no media.
"""

from __future__ import annotations

import pytest
from dagster import AssetKey
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver
from runs import run_title

from marquee.orchestration.definitions import build_definitions
from marquee.resources.settings import Settings

CHARACTER_ASSETS = ["faces", "face_embeddings", "face_clusters", "character_graph"]


def test_characters_assets_materialise_with_passing_checks(materialised):
    result = materialised["result"]
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert set(CHARACTER_ASSETS) <= done
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    for name in (
        "faces_have_crops",
        "every_face_has_embedding_or_reason",
        "cluster_ids_consistent",
        "graph_nodes_match_characters",
    ):
        assert checks[name], name


def test_tables_hold_the_true_characters(materialised):
    lake, truth = materialised["lake"], materialised["truth"]
    wh, store = lake.warehouse(), lake.store()
    characters = [c for c in wh.read_table("characters", "chars").to_pylist() if not c["background"]]
    assert len(characters) == len(truth.characters)
    true_times = [truth.identities[n]["screen_time_s"] for n in truth.characters]
    assert [c["screen_time_s"] for c in characters] == pytest.approx(true_times, abs=0.75)
    faces = wh.read_table("faces", "chars").to_pylist()
    assert faces and all(0 <= f["x1"] < f["x2"] <= 480 and 0 <= f["y1"] < f["y2"] <= 270 for f in faces)
    assert all(store.exists(f["crop_key"]) for f in faces)
    emb = wh.read_table("face_embeddings", "chars").to_pylist()
    embedded = [e for e in emb if e["embedded"]]
    assert 0 < len(embedded) <= 2 * len({f["track_id"] for f in faces})  # best two per track at most
    assert all(len(e["embedding"]) == 128 and e["embedder"].startswith("dlib_resnet@") for e in embedded)
    nodes = wh.read_table("character_nodes", "chars").to_pylist()
    assert sorted(n["character_id"] for n in nodes) == [c["character_id"] for c in characters]
    assert [n["character_id"] for n in sorted(nodes, key=lambda n: n["prominence_rank"])] == [0, 1]
    edges = wh.read_table("character_edges", "chars").to_pylist()
    true_edges = [e for e in truth.cooccurrence if e["scenes"]]
    assert len(edges) == len(true_edges)
    # One SQL statement across the tables, through the DuckDB catalog.
    rows = wh.sql(
        "SELECT c.character_id, count(*) AS n FROM face_clusters f JOIN characters c "
        "USING (title_id, character_id) WHERE NOT c.background GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert [r["n"] for r in rows] == [c["n_faces"] for c in characters]


def test_graph_picture_and_report_section(materialised):
    lake = materialised["lake"]
    store = lake.store()
    png = store.read_bytes("media/graphs/chars/graph.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<graphml" in store.read_bytes("media/graphs/chars/graph.graphml")
    page = store.read_bytes("reports/chars/index.html").decode()
    assert "<h2>Characters</h2>" in page and "data:image/jpeg;base64," in page
    assert store.list("reports/chars") == ["reports/chars/index.html"]  # self-contained: pictures inlined


def test_recluster_alone_leaves_faces_untouched(materialised):
    defs, instance = materialised["defs"], materialised["instance"]

    def latest(key: str):
        event = instance.get_latest_materialization_event(AssetKey(key))
        return event.run_id if event else None

    before = {k: latest(k) for k in CHARACTER_ASSETS}
    result = run_title(defs, instance, "chars", ["face_clusters", "character_graph"])
    assert result.success
    after = {k: latest(k) for k in CHARACTER_ASSETS}
    assert after["faces"] == before["faces"] and after["face_embeddings"] == before["face_embeddings"]
    assert after["face_clusters"] == result.run_id and after["character_graph"] == result.run_id


def test_facenet_without_weights_fails_with_the_path(materialised):
    settings, instance = materialised["settings"], materialised["instance"]
    defs = build_definitions(settings, face_embedder="facenet")
    result = run_title(defs, instance, "chars", ["face_embeddings"])
    assert not result.success
    message = " ".join(str(e.event_specific_data) for e in result.all_events if e.is_step_failure)
    assert "models/facenet/20180402-114759-vggface2.pt" in message
    # The last good embeddings (dlib) are still there.
    emb = materialised["lake"].warehouse().read_table("face_embeddings", "chars")
    assert emb.column("embedder")[0].as_py().startswith("dlib_resnet@")


#: Faces and characters are inputs of the trailer-worthiness features, so these follow them too.
TRAILER_STAGES = ("shot_features", "trailerness_model", "trailerness", "trailer_moments")


def test_face_model_change_marks_characters_stale_not_shots(tmp_path, monkeypatch):
    """Switching the embedder changes the code version of face_embeddings and everything after it
    (the expression model too: it measures its dataset's faces with the same models); switching the
    detector also reaches faces; shots and keyframes stay as they are."""
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    base = _versions(build_definitions(Settings.from_env()))
    other_embedder = _versions(build_definitions(Settings.from_env(), face_embedder="facenet"))
    other_detector = _versions(build_definitions(Settings.from_env(), face_detector="blazeface"))
    after_embeddings = {
        "face_embeddings",
        "face_clusters",
        "character_graph",
        "expression_model",
        "expression_scores",
        "thumbnail_candidates",
        *TRAILER_STAGES,
        "report",
    }
    assert {k for k in base if base[k] != other_embedder[k]} == after_embeddings
    assert {k for k in base if base[k] != other_detector[k]} == {"faces", *after_embeddings}


def _versions(defs) -> dict[str, str | None]:
    graph = defs.resolve_asset_graph()
    return {k.to_user_string(): graph.get(k).code_version for k in graph.get_all_asset_keys()}


def test_stale_after_embedder_change(materialised):
    settings, instance = materialised["settings"], materialised["instance"]
    defs = build_definitions(settings, face_embedder="facenet")
    resolver = get_stale_status_resolver(instance, list(defs.assets))
    status = {
        k: resolver.get_status(AssetKey(k), "chars")
        for k in ("shots", "faces", "face_embeddings", "face_clusters", "character_graph")
    }
    assert status["shots"] == StaleStatus.FRESH and status["faces"] == StaleStatus.FRESH
    assert status["face_embeddings"] == StaleStatus.STALE
