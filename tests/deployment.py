"""The real local deployment (``marquee cluster``) for tests: bring it up, talk to it, take it down.

``deployment()`` is used by the session fixture ``cluster`` in ``conftest.py``; the GraphQL and
waiting helpers are shared by the cluster, fault and browser tests.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from marquee.orchestration import cluster

LAUNCH = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
  ... on PartitionSetNotFoundError { message } ... on UnauthorizedError { message } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status } ... on PythonError { message } } }"""
ASSETS = "{ assetNodes { assetKey { path } isPartitioned } }"
FINISHED = ("COMPLETED", "COMPLETED_SUCCESS", "FAILED", "COMPLETED_FAILED", "CANCELED")


def private_home(prefix: str = "marquee-cluster-") -> Path:
    """A fresh folder the ``postgres`` user can traverse (pytest's own tmp folders are root-only)."""
    base = Path(os.environ.get("MARQUEE_TEST_CLUSTER_DIR") or "/var/tmp")
    if not os.access(base, os.W_OK):
        base = Path(tempfile.gettempdir())
    home = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    home.chmod(0o711)
    return home


@contextmanager
def deployment(workers: int = 2, **env: str) -> Iterator[cluster.ClusterState]:
    """A running deployment in a fresh home; everything it started is gone afterwards (asserted)."""
    home = private_home()
    try:
        with cluster.environ(dict(env)):  # ``up`` hands model settings on to the deployment's processes
            state = cluster.up(home, workers=workers, say=lambda _line: None)
        yield state
    finally:
        if (home / cluster.STATE_FILE).exists():
            cluster_id = cluster.ClusterState.load(home).cluster_id
            cluster.down(home, say=lambda _line: None)
            assert cluster.cluster_processes(cluster_id) == [], "cluster down left processes behind"
        if not os.environ.get("MARQUEE_KEEP_CLUSTER_HOME"):  # set it to read the logs afterwards
            shutil.rmtree(home, ignore_errors=True)


@contextmanager
def client_env(state: cluster.ClusterState) -> Iterator[dict[str, str]]:
    """This process's environment pointed at the deployment (storage, Dagster instance) for a block."""
    values = state.client_env()
    with cluster.environ({**values, "MARQUEE_CATALOG": None}):
        yield values


def ingest_titles(state: cluster.ClusterState, videos: Mapping[str, Path]) -> None:
    """Put these videos (title id -> file) into the deployment's S3 storage; register their partitions."""
    from dagster import DagsterInstance

    from marquee.resources.lake import LakeResource
    from marquee.resources.settings import Settings

    with client_env(state):
        lake = LakeResource.from_settings(Settings.from_env())
        for tid, video in videos.items():
            lake.titles().ingest_file(video, title_id=tid)
        with DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("titles", list(videos))


def ingest_tiny_titles(state: cluster.ClusterState, folder: Path, titles: list[str], seed: int = 0) -> None:
    """Two-shot 2.4 s titles (``videos.write_video``), one seed each, into the deployment."""
    from videos import write_video

    videos = {tid: folder / f"{tid}.mp4" for tid in titles}
    for i, video in enumerate(videos.values()):
        write_video(video, [30, 30], seed=seed + i)
    ingest_titles(state, videos)


def gql(where: cluster.ClusterState | str, query: str, variables: dict | None = None) -> dict[str, Any]:
    """Run a GraphQL query on a deployment's webserver (or on the webserver at the URL ``where``)."""
    url = where if isinstance(where, str) else where.webserver_url
    req = urllib.request.Request(
        f"{url}/graphql",
        method="POST",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = json.loads(resp.read())
    assert "errors" not in body, body
    return body["data"]


def title_assets(state: cluster.ClusterState) -> list[dict[str, list[str]]]:
    """Every per-title (partitioned) asset, as GraphQL asset keys."""
    nodes = gql(state, ASSETS)["assetNodes"]
    return [{"path": n["assetKey"]["path"]} for n in nodes if n["isPartitioned"]]


def launch_backfill(state: cluster.ClusterState, titles: list[str], assets: list[dict] | None = None) -> str:
    params = {"partitionNames": titles, "assetSelection": assets or title_assets(state)}
    launched = gql(state, LAUNCH, {"p": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def backfill_status(state: cluster.ClusterState, backfill_id: str) -> str:
    return gql(state, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]["status"]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
