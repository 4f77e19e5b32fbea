"""The Dagster graph end to end on small generated titles: title -> shots -> keyframes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver
from runs import run_title
from videos import write_video

from marquee.orchestration.definitions import build_definitions
from marquee.orchestration.sensors import incoming_titles_sensor
from marquee.resources.lake import LakeResource
from marquee.resources.media import dangling_keys
from marquee.resources.settings import Settings

SHOTS, KEYFRAMES, TITLE = AssetKey("shots"), AssetKey("keyframes"), AssetKey("title")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MARQUEE_STORAGE", raising=False)
    monkeypatch.delenv("MARQUEE_SHOT_DETECTOR", raising=False)
    settings = Settings.from_env()
    return settings, LakeResource.from_settings(settings), DagsterInstance.ephemeral()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[int]]]:
    d = tmp_path_factory.mktemp("videos")
    out = {}
    for name, lengths, seed in [
        ("alpha", [30, 40, 35], 1),
        ("beta", [45, 30], 2),
        ("gamma", [25, 25, 25, 25], 3),
    ]:
        p = d / f"{name}.mp4"
        out[name] = (p, write_video(p, lengths, seed=seed))
    return out


def test_title_shots_keyframes_for_two_titles(env, videos):
    settings, lake, instance = env
    defs = build_definitions(settings)
    for tid in ("alpha", "beta"):
        lake.titles().ingest_file(videos[tid][0], title_id=tid)
        result = run_title(defs, instance, tid)
        assert result.success
    wh = lake.warehouse()
    for tid in ("alpha", "beta"):
        shots = wh.read_table("shots", tid).to_pylist()
        starts = [s["start_frame"] for s in shots[1:]]
        truth = videos[tid][1]
        assert len(starts) == len(truth)
        assert all(abs(a - b) <= 1 for a, b in zip(starts, truth, strict=True))
        kf = wh.read_table("keyframes", tid).to_pylist()
        assert {k["shot_id"] for k in kf} == {s["shot_id"] for s in shots}
        assert all(lake.store().exists(k["image_key"]) for k in kf)
    rows = wh.sql("SELECT title_id, count(*) AS n FROM shots GROUP BY 1 ORDER BY 1").to_pylist()
    counts = {r["title_id"]: r["n"] for r in rows}
    assert counts == {"alpha": 3, "beta": 2}
    info = wh.read_table("titles", "alpha").to_pylist()[0]
    assert info["frame_count"] == 105 and info["width"] == 192 and abs(info["fps"] - 25) < 1e-6


def test_detector_change_marks_shots_and_downstream_stale_everywhere(env, videos):
    settings, lake, instance = env
    defs = build_definitions(settings, shot_detector="hybrid")
    for tid in ("alpha", "beta"):
        lake.titles().ingest_file(videos[tid][0], title_id=tid)
        assert run_title(defs, instance, tid).success
    fresh = get_stale_status_resolver(instance, list(defs.assets))
    assert all(
        fresh.get_status(k, t) == StaleStatus.FRESH for k in (SHOTS, KEYFRAMES) for t in ("alpha", "beta")
    )

    updated = build_definitions(settings, shot_detector="fast")  # a model update
    resolver = get_stale_status_resolver(instance, list(updated.assets))
    for tid in ("alpha", "beta"):
        assert resolver.get_status(TITLE, tid) == StaleStatus.FRESH
        assert resolver.get_status(SHOTS, tid) == StaleStatus.STALE
        assert resolver.get_status(KEYFRAMES, tid) == StaleStatus.STALE

    beta_before = instance.get_latest_materialization_event(SHOTS)
    beta_record = _latest(instance, SHOTS, "beta")
    beta_bytes = lake.store().read_bytes("tables/shots/title_id=beta/part-0.parquet")
    assert run_title(updated, instance, "alpha", [SHOTS]).success
    resolver = get_stale_status_resolver(instance, list(updated.assets))
    assert resolver.get_status(SHOTS, "alpha") == StaleStatus.FRESH
    assert resolver.get_status(SHOTS, "beta") == StaleStatus.STALE
    assert _latest(instance, SHOTS, "beta").run_id == beta_record.run_id
    assert lake.store().read_bytes("tables/shots/title_id=beta/part-0.parquet") == beta_bytes
    assert instance.get_latest_materialization_event(SHOTS).run_id != beta_before.run_id
    detectors = {
        r["title_id"]: r["detector"]
        for r in lake.warehouse().sql("SELECT DISTINCT title_id, detector FROM shots").to_pylist()
    }
    assert detectors["alpha"].startswith("fast@") and detectors["beta"].startswith("hybrid@")


def _latest(instance: DagsterInstance, key: AssetKey, partition: str):
    from dagster import AssetRecordsFilter

    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0]


def test_keyframes_alone_reuse_stored_shots(env, videos):
    settings, lake, instance = env
    defs = build_definitions(settings)
    lake.titles().ingest_file(videos["gamma"][0], title_id="gamma")
    assert run_title(defs, instance, "gamma").success
    shots_before = lake.warehouse().read_table("shots", "gamma")
    assert run_title(defs, instance, "gamma", [KEYFRAMES]).success
    assert lake.warehouse().read_table("shots", "gamma").equals(shots_before)
    kf = lake.warehouse().read_table("keyframes", "gamma").to_pylist()
    assert {k["shot_id"] for k in kf} == {0, 1, 2, 3}
    # The old keyframe version lives on while trailer_moments.poster_key points into it...
    versions = {k.split("/")[3] for k in lake.store().list("media/keyframes/gamma")}
    posters = {r["poster_key"] for r in lake.warehouse().read_table("trailer_moments", "gamma").to_pylist()}
    assert len(versions) == 2
    assert {p.split("/")[3] for p in posters if p} < versions
    assert dangling_keys(lake.warehouse(), "gamma") == []
    # ...and goes once nothing does.
    assert run_title(defs, instance, "gamma", [AssetKey("trailer_moments")]).success
    versions = {k.split("/")[3] for k in lake.store().list("media/keyframes/gamma")}
    assert versions == {k["image_key"].split("/")[3] for k in kf}
    assert dangling_keys(lake.warehouse(), "gamma") == []


BAD_INPUTS = {
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("this is not a video\n" * 50),
    "random-bytes": lambda p: p.write_bytes(bytes(range(256)) * 64),
}


@pytest.mark.parametrize("kind", ["text", "random-bytes", "truncated", "audio-only", "missing-source"])
def test_bad_input_fails_that_title_only(env, videos, tmp_path, kind):
    from videos import write_audio_only

    settings, lake, instance = env
    defs = build_definitions(settings)
    lake.titles().ingest_file(videos["alpha"][0], title_id="good")
    assert run_title(defs, instance, "good").success
    good_tables = {k: lake.store().read_bytes(k) for k in lake.store().list("tables")}

    bad = tmp_path / f"{kind}.mp4"
    if kind in BAD_INPUTS:
        BAD_INPUTS[kind](bad)
    elif kind == "truncated":
        data = videos["beta"][0].read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "audio-only":
        bad = tmp_path / "audio.m4a"
        write_audio_only(bad)
    else:
        bad.write_bytes(videos["beta"][0].read_bytes())
    if kind == "missing-source":
        manifest = lake.titles().ingest_file(bad, title_id="bad")
        lake.store().delete(manifest.source_key)
    else:  # ingest checks the file first; a file already in object storage is checked by `title`
        lake.store().write_bytes(f"titles/bad/source{bad.suffix}", bad.read_bytes())
        lake.store().write_bytes(
            "titles/bad/manifest.json",
            json.dumps(
                {
                    "title_id": "bad",
                    "source_key": f"titles/bad/source{bad.suffix}",
                    "source_name": bad.name,
                    "source_size": bad.stat().st_size,
                }
            ).encode(),
        )
    result = run_title(defs, instance, "bad")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = (
        failure.step_failure_data.error.cause.message
        if failure.step_failure_data.error.cause
        else failure.step_failure_data.error.message
    )
    text = failure.step_failure_data.error.message + " " + (message or "")
    assert "titles/bad/source" in text
    expected = {
        "text": "not a readable media file",
        "random-bytes": "not a readable media file",
        "truncated": "not a readable media file",
        "audio-only": "no video stream",
        "missing-source": "not found",
    }[kind]
    assert expected in text
    assert {k: lake.store().read_bytes(k) for k in lake.store().list("tables")} == good_tables


def test_empty_and_unsafe_inputs_are_refused_at_ingest(env, tmp_path, videos):
    from marquee.ops.errors import InvalidTitleIdError, VideoError

    _, lake, _ = env
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        lake.titles().ingest_file(empty, title_id="x")
    with pytest.raises(VideoError, match="not found"):
        lake.titles().ingest_file(tmp_path / "nope.mp4", title_id="x")
    for bad_id in ("../etc", "UPPER", "a/b", "", "-lead", "a..b", "x" * 129):
        with pytest.raises(InvalidTitleIdError):
            lake.titles().ingest_file(videos["alpha"][0], title_id=bad_id)
    assert lake.store().list("titles") == []


def test_sensor_registers_incoming_titles_idempotently(env, videos):
    settings, lake, instance = env
    reg = lake.titles()
    reg.stage_incoming(videos["alpha"][0], title_id="alpha", metadata={"studio": "test"})
    bare_key = "incoming/beta-cut.mp4"  # a bare drop without a sidecar: taken once it is stable
    lake.store().put_file(videos["beta"][0], bare_key)
    lake.store().write_bytes("incoming/notes.txt", b"ignored")

    def tick(cursor=None):
        ctx = build_sensor_context(instance=instance, cursor=cursor, resources={"lake": lake})
        return incoming_titles_sensor(ctx)

    first = tick()
    assert [r.partition_key for r in first.run_requests] == ["alpha"]
    assert first.dynamic_partitions_requests[0].partition_keys == ["alpha"]
    second = tick(first.cursor)
    assert sorted(r.partition_key for r in second.run_requests) == ["alpha", "beta-cut"]
    keys = {r.partition_key: r.run_key for r in second.run_requests}
    assert keys["alpha"] == first.run_requests[0].run_key  # same files -> same run key -> no second run

    instance.add_dynamic_partitions("titles", ["alpha", "beta-cut"])
    defs = build_definitions(settings)
    assert run_title(defs, instance, "alpha").success  # the title asset adopts the incoming files
    manifest = reg.manifest("alpha")
    assert manifest.metadata == {"studio": "test"} and manifest.source_key == "titles/alpha/source.mp4"
    third = tick(second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["beta-cut"]
    assert not third.dynamic_partitions_requests
    assert json.loads(third.cursor)["pending"] == {}


def test_the_executor_is_in_process_unless_asked_and_an_unknown_one_fails_at_load(monkeypatch, tmp_path):
    settings = Settings(tmp_path, str(tmp_path / "lake"), tmp_path / "catalog.duckdb", None)
    monkeypatch.delenv("MARQUEE_EXECUTOR", raising=False)
    job = build_definitions(settings).resolve_job_def("marquee_title_job")
    assert job.executor_def.name == "in_process"
    monkeypatch.setenv("MARQUEE_EXECUTOR", "multiprocess")
    assert (
        build_definitions(settings).resolve_job_def("marquee_title_job").executor_def.name == "multiprocess"
    )
    monkeypatch.setenv("MARQUEE_EXECUTOR", "threads")
    with pytest.raises(
        ValueError, match="MARQUEE_EXECUTOR='threads': choose one of in_process, multiprocess"
    ):
        build_definitions(settings)
