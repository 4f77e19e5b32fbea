"""``marquee titles``: where each title stands, read from the Dagster instance (title_status.py)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DataVersion,
    Definitions,
    MaterializeResult,
    asset,
    materialize,
)
from dagster._core.definitions.data_version import StaleStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.dagster_run import DagsterRun, make_new_run_id
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._utils.test.data_versions import get_stale_status_resolver
from runs import run_title
from videos import write_video

from marquee.assets.partitions import titles_partitions
from marquee.assets.title import INCOMING_SIGNATURE_TAG
from marquee.orchestration.cli import main
from marquee.orchestration.definitions import build_definitions
from marquee.orchestration.lineage import with_upstream_code_versions
from marquee.orchestration.partitions import register_titles
from marquee.orchestration.title_status import STATUS_COLUMNS, TitleStatus, read_statuses
from marquee.resources.lake import LakeResource
from marquee.resources.settings import Settings

#: The assets the real runs here materialise (quick ones); a title is done when these are fresh.
STEPS = ["title", "shots", "keyframes", "trailer"]
KEYS = [AssetKey(k) for k in STEPS]
ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(
        InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="marquee.orchestration.definitions")),
        "__repository__",
    ),
    "marquee_title_job",
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    monkeypatch.setenv("MARQUEE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    for var in (
        "MARQUEE_STORAGE",
        "MARQUEE_CATALOG",
        "MARQUEE_SHOT_DETECTOR",
        "MARQUEE_FACE_DETECTOR",
        "MARQUEE_FACE_EMBEDDER",
        "MARQUEE_FRAME_ENCODER",
        "MARQUEE_EXECUTOR",
    ):
        monkeypatch.delenv(var, raising=False)
    settings = Settings.from_env()
    return settings, LakeResource.from_settings(settings)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    out = {}
    for name, seed in [("film", 0), ("recut", 1), ("trailer", 2)]:
        out[name] = d / f"{name}.mp4"
        write_video(out[name], [30, 30], seed=seed)
    return out


def add_run(instance: DagsterInstance, title_id: str, status: DagsterRunStatus, **tags: str) -> DagsterRun:
    """A run of the title job in ``status`` (as the daemon and run monitoring leave them)."""
    run = DagsterRun(
        job_name="marquee_title_job",
        run_id=make_new_run_id(),
        status=DagsterRunStatus.QUEUED if status == DagsterRunStatus.QUEUED else DagsterRunStatus.NOT_STARTED,
        tags={"dagster/partition": title_id, **tags},
        remote_job_origin=ORIGIN,
    )
    instance.add_run(run)
    if status in (DagsterRunStatus.STARTED, DagsterRunStatus.SUCCESS):
        instance.report_dagster_event(
            DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name), run.run_id
        )
    if status == DagsterRunStatus.SUCCESS:
        instance.report_dagster_event(
            DagsterEvent(DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name), run.run_id
        )
    if status == DagsterRunStatus.CANCELED:
        instance.report_run_canceled(run)
    return instance.get_run_by_id(run.run_id)


def statuses(instance, settings, lake, keys=KEYS, **build):
    reg = lake.titles()
    graph = build_definitions(settings, **build).get_repository_def().asset_graph
    titles = {t: reg.manifest(t) for t in reg.titles()}
    return read_statuses(instance, graph, titles, reg.scan_incoming(), asset_keys=keys)


def stale_in_dagster(instance, settings, title_id: str, **build) -> set[str]:
    """What Dagster's own resolver calls stale or missing among KEYS (the reference to agree with)."""
    resolver = get_stale_status_resolver(instance, list(build_definitions(settings, **build).assets))
    return {k.to_user_string() for k in KEYS if resolver.get_status(k, title_id) != StaleStatus.FRESH}


def test_waiting_queued_running_without_any_step(env, videos):
    settings, lake = env
    reg = lake.titles()
    instance = DagsterInstance.ephemeral()
    group = reg.stage_incoming(videos["film"], title_id="dropped")  # in incoming/, not adopted
    reg.ingest(videos["film"], title_id="fresh")  # ingested, never registered
    reg.ingest(videos["recut"], title_id="registered")
    register_titles(instance, ["registered"])  # registered, no run yet
    for tid in ("queued", "starting", "running"):
        reg.ingest(videos["film"], title_id=tid)
    add_run(instance, "queued", DagsterRunStatus.QUEUED)
    add_run(instance, "starting", DagsterRunStatus.NOT_STARTED)
    running = add_run(instance, "running", DagsterRunStatus.STARTED)

    got = statuses(instance, settings, lake)
    assert got.incoming == [TitleStatus("dropped", "waiting")]
    assert got.titles["fresh"] == TitleStatus("fresh", "waiting")
    assert got.titles["registered"] == TitleStatus("registered", "waiting")
    assert got.titles["queued"].status == got.titles["starting"].status == "queued"
    assert got.titles["running"] == TitleStatus("running", "running", running.run_id)

    # The sensor's run for exactly these files: the group is as far as that run.
    add_run(instance, "dropped", DagsterRunStatus.QUEUED, **{INCOMING_SIGNATURE_TAG: group.signature})
    assert statuses(instance, settings, lake).incoming[0].status == "queued"
    add_run(instance, "dropped", DagsterRunStatus.STARTED, **{INCOMING_SIGNATURE_TAG: "other files"})
    assert statuses(instance, settings, lake).incoming[0].status == "waiting"


def test_failed_says_which_step_and_why_in_one_line(env, videos):
    settings, lake = env
    instance = DagsterInstance.ephemeral()
    store = lake.store()
    store.write_bytes("titles/bad/source.mp4", b"this is not a video\n" * 50)
    manifest = {"title_id": "bad", "source_key": "titles/bad/source.mp4", "source_name": "bad.mp4"}
    store.write_bytes("titles/bad/manifest.json", json.dumps(manifest | {"source_size": 1000}).encode())
    result = run_title(build_definitions(settings), instance, "bad", ["title"])
    assert not result.success

    reg = lake.titles()
    reg.ingest(videos["film"], title_id="lost")
    lost = add_run(instance, "lost", DagsterRunStatus.STARTED)
    instance.report_run_failed(lost, "Run worker lost\n  (heartbeat missed for 300 s)")
    reg.ingest(videos["film"], title_id="stopped")
    stopped = add_run(instance, "stopped", DagsterRunStatus.CANCELED)

    got = statuses(instance, settings, lake)
    bad = got.titles["bad"]
    assert (bad.status, bad.last_run_id, bad.failed_step) == ("failed", result.run_id, "title")
    assert "titles/bad/source.mp4" in bad.message and "not a readable media file" in bad.message
    assert "\n" not in bad.message and "Traceback" not in bad.message
    assert datetime.fromisoformat(bad.last_run_end).tzinfo is not None
    assert got.titles["lost"] == TitleStatus(
        "lost",
        "failed",
        lost.run_id,
        got.titles["lost"].last_run_end,
        None,
        "Run worker lost (heartbeat missed for 300 s)",
    )
    assert got.titles["stopped"].status == "failed" and got.titles["stopped"].last_run_id == stopped.run_id
    assert got.titles["stopped"].failed_step is None and "canceled" in got.titles["stopped"].message


def test_done_then_stale_after_replaced_and_trailer_added_ingests(env, videos):
    settings, lake = env
    reg = lake.titles()
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(settings)
    reg.ingest(videos["film"], title_id="alpha")
    first = run_title(defs, instance, "alpha", STEPS)
    assert first.success

    done = statuses(instance, settings, lake).titles["alpha"]
    assert (done.status, done.last_run_id, done.message) == ("done", first.run_id, None)
    assert datetime.fromisoformat(done.last_run_end).tzinfo is not None

    # A replaced source: Dagster cannot see it (the title asset is fresh to it); the manifest can.
    assert reg.ingest(videos["recut"], title_id="alpha", replace=True).status == "replaced"
    assert stale_in_dagster(instance, settings, "alpha") == set()
    stale = statuses(instance, settings, lake).titles["alpha"]
    assert (stale.status, stale.last_run_id) == ("stale", first.run_id)
    assert "source was replaced" in stale.message and "recut.mp4" in stale.message

    # Only `title` again: now Dagster sees shots (and the trailer) read an older title.
    assert run_title(defs, instance, "alpha", ["title"]).success
    stale = statuses(instance, settings, lake).titles["alpha"]
    assert stale.status == "stale" and "source was replaced" not in stale.message
    assert "inputs changed since materialised: shots (from title), trailer (from title)" in stale.message
    assert stale_in_dagster(instance, settings, "alpha") == {"shots", "keyframes", "trailer"}

    assert run_title(defs, instance, "alpha", STEPS).success
    assert statuses(instance, settings, lake).titles["alpha"].status == "done"

    assert reg.ingest(videos["recut"], title_id="alpha", trailer=videos["trailer"]).status == "trailer-added"
    stale = statuses(instance, settings, lake).titles["alpha"]
    assert stale.status == "stale" and stale.message.startswith("a trailer was added")


def test_new_code_version_and_missing_assets_make_a_title_stale(env, videos):
    settings, lake = env
    reg = lake.titles()
    instance = DagsterInstance.ephemeral()
    reg.ingest(videos["film"], title_id="alpha")
    assert run_title(build_definitions(settings), instance, "alpha", STEPS).success
    assert statuses(instance, settings, lake).titles["alpha"].status == "done"

    # A shot detector update: shots and trailer have new code, keyframes only through lineage.py.
    stale = statuses(instance, settings, lake, shot_detector="fast").titles["alpha"]
    assert stale.status == "stale"
    assert stale.message == "new code version: shots, trailer and 1 asset(s) downstream"
    dagster_says = stale_in_dagster(instance, settings, "alpha", shot_detector="fast")
    assert dagster_says == {"shots", "keyframes", "trailer"}

    reg.ingest(videos["recut"], title_id="beta")
    assert run_title(build_definitions(settings), instance, "beta", ["title"]).success
    beta = statuses(instance, settings, lake).titles["beta"]
    assert (beta.status, beta.message) == ("stale", "never materialised: shots, trailer, keyframes")


def test_queries_do_not_grow_with_the_number_of_titles(env, monkeypatch: pytest.MonkeyPatch):
    """1,000 titles must not mean 1,000 queries: count the instance's reads for 3 and for 40 titles."""
    settings, _ = env
    instance = DagsterInstance.ephemeral()
    graph = build_definitions(settings).get_repository_def().asset_graph
    calls: list[str] = []
    storage = instance.event_log_storage
    for owner, name in [
        (instance, "get_run_partition_data"),
        (instance, "get_run_records"),
        (instance, "get_records_for_run"),
        (instance, "fetch_materializations"),
        (instance, "get_latest_storage_id_by_partition"),
        (instance, "get_latest_data_version_record"),
        (instance, "fetch_run_status_changes"),
        (storage, "get_latest_tags_by_partition"),
    ]:
        monkeypatch.setattr(owner, name, _counting(getattr(owner, name), name, calls))

    def reads(n: int) -> int:
        titles = [f"t{i:03d}" for i in range(n)]
        register_titles(instance, titles)
        for i, tid in enumerate(titles):
            if i % 3:
                add_run(instance, tid, DagsterRunStatus.SUCCESS)
                instance.report_runless_asset_event(AssetMaterialization("title", partition=tid))
            else:
                run = add_run(instance, tid, DagsterRunStatus.STARTED)
                instance.report_run_failed(run, f"worker {i} lost")
        calls.clear()
        got = read_statuses(instance, graph, dict.fromkeys(titles))
        assert {s.status for s in got.titles.values()} == {"stale", "failed"}  # nothing materialised
        assert got.titles[titles[0]].message == "worker 0 lost"
        return len(calls)

    assert reads(3) == reads(40)


def _counting(real, name: str, calls: list[str]):
    def counted(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    return counted


def test_cli_json_and_csv(env, videos, capsys: pytest.CaptureFixture[str]):
    _, lake = env
    assert main(["titles", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    reg = lake.titles()
    reg.stage_incoming(videos["film"], title_id="dropped")
    reg.ingest(videos["film"], title_id="broken")
    with DagsterInstance.get() as instance:
        run = add_run(instance, "broken", DagsterRunStatus.STARTED)
        instance.report_run_failed(run, "step worker crashed")
        register_titles(instance, ["orphan"])
        queued = add_run(instance, "orphan", DagsterRunStatus.QUEUED)

    assert main(["titles", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    columns = ["title_id", "source", "ingested_at", *STATUS_COLUMNS]
    assert STATUS_COLUMNS == ("status", "last_run_id", "last_run_end", "failed_step", "message")
    assert all(list(r) == columns for r in rows)
    by_id = {r["title_id"]: r for r in rows}
    assert [r["title_id"] for r in rows] == ["broken", "orphan", "dropped"]
    broken = by_id["broken"]
    assert broken["source"] == "film.mp4" and broken["ingested_at"] == reg.manifest("broken").ingested_at
    assert (broken["status"], broken["last_run_id"]) == ("failed", run.run_id)
    assert broken["failed_step"] is None and broken["message"] == "step worker crashed"
    assert datetime.fromisoformat(broken["last_run_end"])
    assert by_id["orphan"] | {"ingested_at": None} == {
        "title_id": "orphan",
        "source": None,
        "ingested_at": None,
        "status": "queued",
        "last_run_id": queued.run_id,
        "last_run_end": None,
        "failed_step": None,
        "message": None,
    }
    assert by_id["dropped"]["source"] == "incoming/dropped.mp4" and by_id["dropped"]["status"] == "waiting"

    assert main(["titles", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(table[0]) == columns and [r["status"] for r in table] == ["failed", "queued", "waiting"]


def test_cli_on_s3_storage(env, videos, request: pytest.FixtureRequest, monkeypatch, capsys):
    """Manifests are read in parallel from object storage; the rows are the same as on a folder."""
    endpoint = request.getfixturevalue("s3_server")
    monkeypatch.setenv("MARQUEE_STORAGE", "s3://title-status/lake")
    monkeypatch.setenv("MARQUEE_S3_ENDPOINT_URL", endpoint)
    lake = LakeResource.from_settings(Settings.from_env())
    lake.store().fs.mkdir("title-status")
    reg = lake.titles()
    ids = [f"film-{i:02d}" for i in range(8)]
    for tid in ids:
        reg.ingest(videos["film"], title_id=tid)
    reg.stage_incoming(videos["recut"], title_id="dropped")
    assert main(["titles", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["title_id"], r["source"], r["status"]) for r in rows] == [
        *[(tid, "film.mp4", "waiting") for tid in ids],
        ("dropped", "incoming/dropped.mp4", "waiting"),
    ]
    assert [r["ingested_at"] for r in rows[:-1]] == [reg.manifest(t).ingested_at for t in ids]


def test_partial_runs_after_a_code_change_agree_with_dagster(env, videos):
    """A run that materialises only part of a title vouches only for what it ran (the rest is read)."""
    settings, lake = env
    instance = DagsterInstance.ephemeral()
    lake.titles().ingest(videos["film"], title_id="alpha")
    assert run_title(build_definitions(settings), instance, "alpha", STEPS).success
    fast = build_definitions(settings, shot_detector="fast")

    def check(expected: str | None) -> None:
        got = statuses(instance, settings, lake, shot_detector="fast").titles["alpha"]
        assert got.message == expected
        assert (got.status == "stale") == bool(
            stale_in_dagster(instance, settings, "alpha", shot_detector="fast")
        )

    check("new code version: shots, trailer and 1 asset(s) downstream")
    assert run_title(fast, instance, "alpha", ["trailer"]).success  # a sink, alone
    check("new code version: shots and 1 asset(s) downstream")
    assert run_title(fast, instance, "alpha", ["shots", "keyframes"]).success  # `title` stays as it was
    check(None)


# A toy graph with Marquee's shape (an unpartitioned model feeding per-title assets), for the paths a
# few seconds of video cannot reach quickly: a retrained model, a code change upstream of a sink.
MODEL_VERSION = {"value": "model-a"}


def toy_definitions(a_code: str = "a1", *, with_d: bool = False):
    @asset(code_version="model-1")
    def model() -> MaterializeResult:
        return MaterializeResult(data_version=DataVersion(MODEL_VERSION["value"]))

    @asset(partitions_def=titles_partitions, code_version=a_code)
    def a() -> MaterializeResult:
        return MaterializeResult(data_version=DataVersion("a-data"))

    @asset(partitions_def=titles_partitions, code_version="b1", deps=[a, model])
    def b() -> MaterializeResult:
        return MaterializeResult(data_version=DataVersion("b-data"))

    @asset(partitions_def=titles_partitions, code_version="c1", deps=[b])
    def c() -> MaterializeResult:
        return MaterializeResult()

    @asset(partitions_def=titles_partitions, code_version="d1", deps=[c])
    def d() -> MaterializeResult:
        return MaterializeResult()

    return Definitions(assets=with_upstream_code_versions([model, a, b, c, *([d] if with_d else [])]))


def test_retrained_model_and_upstream_code_on_a_toy_graph():
    instance = DagsterInstance.ephemeral()
    register_titles(instance, ["p1", "p2"])

    def run(defs, title: str | None, keys: list[str]) -> None:
        assets = list(defs.assets)
        selection = [AssetKey(k) for k in keys]
        assert materialize(assets, instance=instance, partition_key=title, selection=selection).success

    def check(defs) -> dict[str, str | None]:
        graph = defs.get_repository_def().asset_graph
        got = read_statuses(instance, graph, {"p1": None, "p2": None}).titles
        resolver = get_stale_status_resolver(instance, list(defs.assets))
        for tid, status in got.items():
            keys = [
                k
                for k in defs.get_repository_def().asset_graph.materializable_asset_keys
                if k.path[0] != "model"
            ]
            dagster = {k for k in keys if resolver.get_status(k, tid) != StaleStatus.FRESH}
            assert (status.status == "stale") == bool(dagster), (tid, status, dagster)
        return {tid: s.message for tid, s in got.items()}

    defs = toy_definitions()
    MODEL_VERSION["value"] = "model-a"
    run(defs, None, ["model"])
    for tid in ("p1", "p2"):
        run(defs, tid, ["a", "b", "c"])
    assert check(defs) == {"p1": None, "p2": None}

    MODEL_VERSION["value"] = "model-b"  # retrained
    run(defs, None, ["model"])
    assert check(defs) == {"p1": "inputs changed since materialised: b (from model)"} | {
        "p2": "inputs changed since materialised: b (from model)"
    }
    run(defs, "p1", ["b", "c"])
    assert check(defs) == {"p1": None, "p2": "inputs changed since materialised: b (from model)"}

    new_a = toy_definitions(a_code="a2")  # a's own code changes; b and c only through lineage.py
    run(new_a, "p1", ["a", "b", "c"])
    messages = check(new_a)
    assert messages["p1"] is None
    assert messages["p2"] == (
        "new code version: a and 2 asset(s) downstream; inputs changed since materialised: b (from model)"
    )
    run(new_a, "p2", ["a"])  # a alone: b and c ran older code upstream
    assert check(new_a)["p2"] == (
        "new code version upstream of: b, c; inputs changed since materialised: b (from model)"
    )
    # An asset added downstream: no title has it yet (c still vouches for what its run made).
    assert check(toy_definitions(a_code="a2", with_d=True))["p1"] == "never materialised: d"
