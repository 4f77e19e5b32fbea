"""The Dagster code location: assets, checks, jobs, sensors and resources, from the environment.

Configuration that changes results is read here, at load time, and baked into asset code versions,
so that changing it (e.g. ``MARQUEE_SHOT_DETECTOR=transnetv2``) marks the affected assets stale (and,
through ``lineage.py``, everything downstream of them):
- ``MARQUEE_SHOT_DETECTOR``: ``hybrid`` (default), ``fast`` or ``transnetv2``.
Storage locations come from ``marquee.resources.settings`` (``MARQUEE_HOME``, ``MARQUEE_STORAGE``, ...).
"""

from __future__ import annotations

import os

from dagster import Definitions

from marquee.assets.report import report
from marquee.assets.shots import build_shots_assets
from marquee.assets.title import title
from marquee.ops.shots.registry import DEFAULT_DETECTOR
from marquee.orchestration.jobs import shots_refresh_job, title_job
from marquee.orchestration.lineage import with_upstream_code_versions
from marquee.orchestration.sensors import incoming_titles_sensor
from marquee.resources.lake import LakeResource
from marquee.resources.settings import Settings


def build_definitions(settings: Settings | None = None, *, shot_detector: str | None = None) -> Definitions:
    settings = settings or Settings.from_env()
    detector = shot_detector or os.environ.get("MARQUEE_SHOT_DETECTOR") or DEFAULT_DETECTOR
    return Definitions(
        assets=with_upstream_code_versions([title, build_shots_assets(detector), report]),
        jobs=[title_job, shots_refresh_job],
        sensors=[incoming_titles_sensor],
        resources={"lake": LakeResource.from_settings(settings)},
    )


defs = build_definitions()
