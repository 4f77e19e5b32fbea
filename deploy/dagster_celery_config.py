"""Celery settings of Marquee's workers in the container deployments (deploy/Dockerfile puts this module
on PYTHONPATH; ``dagster_celery.app`` imports it by name).

The same settings as the module ``marquee cluster up`` writes (marquee/orchestration/cluster.py), except
that the broker and result backend come from the environment instead of being written in.
tests/test_deploy_files.py checks that the two agree.
"""

import os


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: the Celery broker/backend URL (see deploy/README.md)")
    return value


broker_url = _required("DAGSTER_CELERY_BROKER_URL")
result_backend = _required("DAGSTER_CELERY_BACKEND_URL")
worker_prefetch_multiplier = 1
task_track_started = True
broker_connection_retry_on_startup = True
