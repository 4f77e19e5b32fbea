"""Dagster as users run it: `dagster dev` (webserver + daemon) on workspace.yaml, a backfill of the
title graph's shot, character and thumbnail stages over several titles launched through the GraphQL
API (the trailer stages are exercised in-process by test_trailer_assets.py), then a second backfill that
re-materialises only what follows a model update (expression scores, candidates, report), and the
sensor picking up a dropped title.

Slow (a real webserver, daemon and run subprocesses), so it is one test that checks all three.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter
from deployment import gql, wait_for
from videos import write_video

REPO = Path(__file__).resolve().parents[1]
TITLE_GRAPH = (
    "title",
    "shots",
    "keyframes",
    "faces",
    "face_embeddings",
    "face_clusters",
    "character_graph",
    "expression_scores",
    "thumbnail_candidates",
    "report",
)

LAUNCH = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
  ... on PartitionSetNotFoundError { message } ... on InvalidStepError { invalidStepKey }
  ... on UnauthorizedError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status } ... on PythonError { message } } }"""
RUNS = """{ runsOrError { __typename ... on Runs { results { runId status tags { key value } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(port: int, query: str, variables: dict | None = None) -> dict:
    return gql(f"http://127.0.0.1:{port}", query, variables)


@pytest.mark.slow
def test_backfill_and_sensor_under_dagster_dev(tmp_path: Path):
    home = tmp_path / "home"
    env = {
        **os.environ,
        "MARQUEE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "MARQUEE_SHOT_DETECTOR": "fast",
    }
    env.pop("MARQUEE_STORAGE", None)
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: QueuedRunCoordinator\n"
        "  config:\n    max_concurrent_runs: 2\ntelemetry:\n  enabled: false\n"
    )
    from dagster import DagsterInstance

    from marquee.resources.lake import LakeResource
    from marquee.resources.settings import Settings

    lake = LakeResource.from_settings(Settings.from_env(env))
    for i, tid in enumerate(["bf-one", "bf-two"]):
        video = tmp_path / f"{tid}.mp4"
        write_video(video, [30, 30], seed=i)
        lake.titles().ingest_file(video, title_id=tid)
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        instance.add_dynamic_partitions("titles", ["bf-one", "bf-two"])

    port = _free_port()
    log_path = tmp_path / "dagster-dev.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            str(REPO / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def ready():
            try:
                return _gql(port, "{ version }")
            except OSError:
                return None

        wait_for(ready, 180, "the Dagster webserver")
        titles = ["bf-one", "bf-two"]
        params = {"partitionNames": titles, "assetSelection": [{"path": [a]} for a in TITLE_GRAPH]}
        launched = _gql(port, LAUNCH, {"p": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        bid = launched["backfillId"]

        # Meanwhile a title arrives in the drop zone: the sensor must register it and run it.
        drop = tmp_path / "dropped.mp4"
        write_video(drop, [25, 25], seed=7)
        (home / "lake" / "incoming").mkdir(parents=True, exist_ok=True)
        (home / "lake" / "incoming" / "dropped.mp4").write_bytes(drop.read_bytes())
        (home / "lake" / "incoming" / "dropped.json").write_text(json.dumps({"title_id": "dropped"}))

        def backfill_done(backfill_id: str):
            status = _gql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
            return (
                status
                if status in ("COMPLETED", "COMPLETED_SUCCESS", "FAILED", "COMPLETED_FAILED", "CANCELED")
                else None
            )

        done = ("COMPLETED", "COMPLETED_SUCCESS")
        assert wait_for(lambda: backfill_done(bid), 480, "the backfill") in done

        # After a model update: only expression_scores and what follows, for every title.
        refresh = [{"path": [a]} for a in ("expression_scores", "thumbnail_candidates", "report")]
        params = {"partitionNames": titles, "assetSelection": refresh}
        launched = _gql(port, LAUNCH, {"p": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        assert wait_for(lambda: backfill_done(launched["backfillId"]), 300, "the refresh backfill") in done

        def sensor_run_done():
            runs = _gql(port, RUNS)["runsOrError"]["results"]
            mine = [
                r for r in runs if {"key": "marquee/source", "value": "incoming_titles_sensor"} in r["tags"]
            ]
            return [r["status"] for r in mine if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]

        assert wait_for(sensor_run_done, 300, "the sensor's run") == ["SUCCESS"]
        with DagsterInstance.from_config(str(home / "dagster")) as instance:
            # The refresh re-made the scores and what follows, and left the face stages alone.
            for key, expected in (("faces", 1), ("expression_scores", 2), ("report", 2)):
                for tid in titles:
                    events = instance.fetch_materializations(
                        AssetRecordsFilter(asset_key=AssetKey(key), asset_partitions=[tid]), limit=10
                    ).records
                    assert len(events) == expected, (key, tid, len(events))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()

    from marquee.resources.lake import LakeResource
    from marquee.resources.settings import Settings

    lake = LakeResource.from_settings(Settings.from_env(env))
    rows = lake.warehouse().sql("SELECT title_id, count(*) AS n FROM shots GROUP BY 1 ORDER BY 1").to_pylist()
    assert [(r["title_id"], r["n"]) for r in rows] == [("bf-one", 2), ("bf-two", 2), ("dropped", 2)]
    assert not list((home / "lake" / "incoming").glob("dropped.*"))  # adopted into titles/
