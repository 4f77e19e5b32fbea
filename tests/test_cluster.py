"""The distributed deployment, for real: Postgres, Redis + two Celery workers, SeaweedFS's S3 server,
the Dagster daemon and webserver (``marquee cluster``), with backfills launched through GraphQL and
faults injected while they run (a worker killed mid-step, S3 gone for a while, Redis restarted).

Slow: every run is a real Celery task on a worker process, writing to the S3 server.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deployment import backfill_status, client_env, ingest_tiny_titles, launch_backfill, wait_for
from videos import write_video

from marquee.orchestration import cluster as cl

pytestmark = pytest.mark.slow
DONE = ("COMPLETED", "COMPLETED_SUCCESS")
#: The fault tests need a few steps that write media and tables, not the whole graph.
FIRST_STAGES = [{"path": [a]} for a in ("title", "shots", "keyframes", "faces", "face_embeddings")]


def _runs(state: cl.ClusterState, titles: list[str]) -> list[dict]:
    """Every run of these titles: status, times, retry number, the run worker's pid and its Celery
    worker (the parent of the pool process that ran it)."""
    from dagster import DagsterEventType, DagsterInstance, RunsFilter

    out = []
    with client_env(state), DagsterInstance.get() as instance:
        for record in instance.get_run_records(RunsFilter()):
            run = record.dagster_run
            tid = run.tags.get("dagster/partition")
            if tid not in titles:
                continue
            starts = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_START)
            pid = starts[0].dagster_event.pid if starts else None
            out.append(
                {
                    "run_id": run.run_id,
                    "title": tid,
                    "status": run.status.value,
                    "start": record.start_time,
                    "end": record.end_time,
                    "retry": int(run.tags.get("dagster/retry_number", 0)),
                    "pid": pid,
                    "worker": _parent(pid) if pid else None,
                }
            )
    return out


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def _marquee(state: cl.ClusterState, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **state.client_env()}
    env.pop("MARQUEE_CATALOG", None)
    return subprocess.run(
        [sys.executable, "-m", "marquee.orchestration.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_status_and_env_describe_the_running_deployment(cluster: cl.ClusterState):
    info = cl.status(Path(cluster.home))
    assert info["ok"], json.dumps(info, indent=2)
    assert {w["name"] for w in info["workers"]} == {"worker-1", "worker-2"}
    assert info["s3"]["endpoint"] == cluster.s3_endpoint and info["s3"]["bucket"] == cl.BUCKET
    assert info["webserver"]["url"] == cluster.webserver_url
    env = _marquee(cluster, "cluster", "env", "--home", cluster.home)
    assert env.returncode == 0, env.stderr
    assert f"export MARQUEE_STORAGE={cluster.storage_url}" in env.stdout.splitlines()
    assert any(line.startswith("export DAGSTER_HOME=") for line in env.stdout.splitlines())
    shown = _marquee(cluster, "cluster", "status", "--home", cluster.home, "--format", "json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["redis"]["ok"]


def test_backfill_of_four_titles_runs_on_two_workers_into_s3_and_survives_a_redis_restart(
    cluster: cl.ClusterState, tmp_path: Path
):
    titles = ["cl-one", "cl-two", "cl-three", "cl-four"]
    ingest_tiny_titles(cluster, tmp_path, titles)
    backfill = launch_backfill(cluster, titles)

    # Two runs start (one per worker); the other two wait in Dagster's queue (Postgres). Restart the
    # broker now: nothing queued may be lost, and the running tasks must still report their end.
    wait_for(lambda: sum(r["status"] == "STARTED" for r in _runs(cluster, titles)) >= 2, 240, "two runs")
    cl.restart(Path(cluster.home), "redis")

    assert wait_for(lambda: backfill_status(cluster, backfill) in (*DONE, "FAILED", "CANCELED")
                    and backfill_status(cluster, backfill), 900, "the backfill") in DONE  # fmt: skip
    runs = _runs(cluster, titles)
    assert sorted(r["title"] for r in runs) == sorted(titles), runs  # one run per title: none twice
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    workers = {r["worker"] for r in runs}
    expected = {
        p.pid
        for n, p in cl.ClusterState.load(Path(cluster.home)).processes.items()
        if n.startswith("worker-")
    }
    assert workers == expected, (workers, expected)
    spans = sorted((r["start"], r["end"]) for r in runs)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans)), f"no two runs overlapped: {spans}"

    # Dagster's storage is Postgres: its runs and event_logs tables hold these runs.
    con = cl._postgres_connect(cluster)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs WHERE run_id = ANY(%s)", ([r["run_id"] for r in runs],))
            assert cur.fetchone()[0] == 4
            cur.execute(
                "SELECT count(DISTINCT run_id) FROM event_logs WHERE run_id = ANY(%s) "
                "AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                ([r["run_id"] for r in runs],),
            )
            assert cur.fetchone()[0] == 4
    finally:
        con.close()

    # Every title's tables are objects on the S3 server, and `marquee sql` reads them all from there.
    s3 = cl._s3_client(cluster)
    for tid in titles:
        listed = s3.list_objects_v2(Bucket=cl.BUCKET, Prefix=f"{cl.LAKE_PREFIX}/tables/shots/title_id={tid}/")
        assert [o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", [])] == ["part-0.parquet"]
    query = _marquee(
        cluster, "sql", "SELECT title_id, count(*) AS n FROM shots GROUP BY 1 ORDER BY 1", "--format", "json"
    )
    assert query.returncode == 0, query.stderr
    assert {r["title_id"]: r["n"] for r in json.loads(query.stdout) if r["title_id"] in titles} == {
        t: 2 for t in titles
    }


def test_a_worker_killed_mid_step_fails_its_run_and_the_retry_succeeds(
    cluster: cl.ClusterState, tmp_path: Path
):
    titles = ["kill-one", "kill-two"]
    ingest_tiny_titles(cluster, tmp_path, titles, seed=10)
    launch_backfill(cluster, titles, FIRST_STAGES)
    from dagster import DagsterEventType, DagsterInstance

    def victim():
        """The run worker of kill-one, once it is inside a step after the shots were written."""
        for r in _runs(cluster, ["kill-one"]):
            if r["status"] != "STARTED" or not r["pid"]:
                continue
            with client_env(cluster), DagsterInstance.get() as instance:
                started = instance.all_logs(r["run_id"], of_type=DagsterEventType.STEP_START)
            if any(e.step_key not in ("title", "shots_and_keyframes") for e in started):
                return r
        return None

    target = wait_for(victim, 300, "kill-one's run to get past its shots", poll=0.5)
    os.kill(target["pid"], signal.SIGKILL)

    def settled():
        runs = _runs(cluster, titles)
        ok = {r["title"] for r in runs if r["status"] == "SUCCESS"}
        return runs if ok == set(titles) else None

    runs = wait_for(settled, 900, "both titles to succeed (kill-one through a retry)")
    killed = next(r for r in runs if r["run_id"] == target["run_id"])
    assert killed["status"] == "FAILURE", runs  # run monitoring noticed the dead worker
    retries = [r for r in runs if r["title"] == "kill-one" and r["retry"] == 1]
    assert [r["status"] for r in retries] == ["SUCCESS"], runs
    assert [r["retry"] for r in runs if r["title"] == "kill-two"] == [0], runs  # the other title unaffected
    # Nothing half-written is visible: every stored key is referenced, every version is complete.
    doctor = _marquee(cluster, "doctor", *titles)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_ingest_and_sensor_on_s3_and_an_s3_outage_mid_run(cluster: cl.ClusterState, tmp_path: Path):
    """`marquee ingest` puts a title into S3's incoming/, the sensor registers and runs it; S3 then goes
    away for a while mid-run: step retries (or the run retry) carry it over, or it fails clearly."""
    titles = ["s3-one"]
    video = tmp_path / "s3-one.mp4"
    write_video(video, [30, 30], seed=20)
    staged = _marquee(cluster, "ingest", str(video))
    assert staged.returncode == 0 and f"{cluster.storage_url}/incoming/" in staged.stdout, staged
    wait_for(
        lambda: any(r["status"] == "STARTED" for r in _runs(cluster, titles)), 300, "the run to start", 0.5
    )
    home = Path(cluster.home)
    cl.stop_component(home, "s3")
    time.sleep(8)
    cl.restart(home, "s3")

    def finished():
        runs = _runs(cluster, titles)
        return runs if any(r["status"] == "SUCCESS" for r in runs) or (
            runs and all(r["status"] in ("FAILURE", "CANCELED") for r in runs) and len(runs) >= 2
        ) else None  # fmt: skip

    runs = wait_for(finished, 900, "the title to succeed, or to fail after its retry")
    assert any(r["status"] == "SUCCESS" for r in runs), runs  # step retries and one run retry suffice
    from dagster import DagsterEventType, DagsterInstance

    with client_env(cluster), DagsterInstance.get() as instance:
        for r in runs:
            if r["status"] != "FAILURE":
                continue
            failures = instance.all_logs(r["run_id"], of_type=DagsterEventType.STEP_FAILURE)
            messages = [e.dagster_event.step_failure_data.error.message for e in failures]
            assert all("object storage" in m or "s3://" in m for m in messages), messages
    doctor = _marquee(cluster, "doctor", *titles)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    incoming = cl._s3_client(cluster).list_objects_v2(Bucket=cl.BUCKET, Prefix=f"{cl.LAKE_PREFIX}/incoming/")
    assert [o["Key"] for o in incoming.get("Contents", []) if "s3-one" in o["Key"]] == []  # adopted
