"""The Dagster instance settings (``dagster.yaml``) Marquee runs under, written in one place.

Two deployments use them:
- the project-local instance of ``marquee run``/``marquee ui`` (SQLite under ``$MARQUEE_HOME/dagster``,
  runs in-process or in subprocesses): ``local_instance_config()``;
- a distributed deployment (Postgres for runs, events and schedules; runs launched as Celery tasks
  on worker processes or machines; object storage on S3): ``cluster_instance_config()``. ``marquee
  cluster up`` runs exactly this on one machine, and ``deploy/`` (docker-compose, Helm values) holds
  the same settings for real clusters; a test checks that they agree.

What both share, and why:
- runs queue, and at most one run per title (``dagster/partition``) runs at a time: a backfill and a
  sensor run of one title never overlap (the per-title lease in object storage also guards it);
- no telemetry banner.
The cluster adds run monitoring (a worker that dies mid-run fails its run instead of leaving it
``STARTED`` forever), one automatic retry of a failed run, and a concurrency pool for the steps that
run big models, so that a worker with one GPU never runs two of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from marquee.assets.common import MODEL_POOL

__all__ = ["MODEL_POOL", "ClusterEndpoints", "cluster_instance_config", "local_instance_config", "to_yaml"]

#: Environment variable naming the executor of every job: ``in_process`` (the default: one process per
#: run, so a run is one Celery task and killing it leaves no orphan step process; parallelism comes
#: from running titles side by side) or ``multiprocess`` (Dagster's own default: a subprocess per step,
#: which re-imports torch and the models for every step: under ``dagster dev`` the same two-title
#: backfill, refresh and sensor run took 223 s that way against 137 s in process).
EXECUTOR_ENV = "MARQUEE_EXECUTOR"


def _shared(max_concurrent_runs: int | None) -> dict[str, Any]:
    runs: dict[str, Any] = {
        "tag_concurrency_limits": [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
    }
    if max_concurrent_runs is not None:
        runs["max_concurrent_runs"] = max_concurrent_runs
    return {"concurrency": {"runs": runs}, "telemetry": {"enabled": False}}


def local_instance_config() -> dict[str, Any]:
    """The project-local instance: SQLite storage (Dagster's default), queued runs, one per title."""
    return _shared(None)


@dataclass(frozen=True)
class ClusterEndpoints:
    """Where the cluster's shared services are. Secrets may be ``{"env": NAME}`` references, which
    Dagster reads from the environment of each process (how the Helm chart passes them)."""

    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str | dict[str, str]
    postgres_db: str
    broker_url: str | dict[str, str]
    result_backend_url: str | dict[str, str]


def cluster_instance_config(
    endpoints: ClusterEndpoints,
    *,
    max_concurrent_runs: int,
    model_slots: int,
    start_timeout_s: int = 300,
) -> dict[str, Any]:
    """The distributed instance: Postgres storage, Celery run launcher, monitoring, retries, pools.

    ``max_concurrent_runs`` should be the number of worker slots: a dequeued run waits in the Celery
    queue otherwise, and run monitoring fails runs that do not start within ``start_timeout_s``.
    ``model_slots`` is how many model steps may run at once across the deployment (the number of
    GPUs; on CPU-only workers, the number of workers).
    """
    config = _shared(max_concurrent_runs)
    config["concurrency"]["pools"] = {"default_limit": model_slots}
    config["storage"] = {
        "postgres": {
            "postgres_db": {
                "hostname": endpoints.postgres_host,
                "port": endpoints.postgres_port,
                "username": endpoints.postgres_user,
                "password": endpoints.postgres_password,
                "db_name": endpoints.postgres_db,
                # With SQLAlchemy 2.x a bare postgresql:// URL means psycopg 3; Marquee ships psycopg2.
                "scheme": "postgresql+psycopg2",
            }
        }
    }
    config["run_launcher"] = {
        "module": "dagster_celery.launcher",
        "class": "CeleryRunLauncher",
        "config": {
            "broker": endpoints.broker_url,
            "backend": endpoints.result_backend_url,
            # One run at a time per worker process, and a worker takes the next task only when free.
            "config_source": {"worker_prefetch_multiplier": 1, "task_track_started": True},
        },
    }
    config["run_monitoring"] = {
        "enabled": True,
        "start_timeout_seconds": start_timeout_s,
        "poll_interval_seconds": 5,
        # A lost worker's run is failed (and retried below), not resumed in place: resuming would
        # re-enter a half-done step on another worker.
        "max_resume_run_attempts": 0,
    }
    config["run_retries"] = {"enabled": True, "max_retries": 1}
    return config


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
