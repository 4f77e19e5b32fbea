"""The sensor that turns videos dropped into ``incoming/`` into title partitions and runs.

It has no side effects on storage: it only looks. The ``title`` asset adopts the files (moves them
into ``titles/<id>/``) when its run starts, so a tick that dies half-way loses nothing, and the run
key (title id + the files' signature) makes repeated ticks idempotent.
"""

from __future__ import annotations

import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, sensor

from marquee.assets.partitions import titles_partitions
from marquee.assets.title import INCOMING_SIGNATURE_TAG
from marquee.orchestration.jobs import title_job
from marquee.resources.lake import LakeResource


@sensor(
    job=title_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers titles dropped into incoming/ (video, optional <name>.trailer.<ext> and "
    "<name>.json sidecar) as partitions and requests a run for each new or changed one.",
)
def incoming_titles_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
    registry = lake.titles()
    cursor = json.loads(context.cursor) if context.cursor else {}
    pending: dict[str, str] = cursor.get("pending", {})  # bare videos seen once, by signature
    stable: dict[str, str] = cursor.get("stable", {})  # bare videos seen unchanged on two ticks
    known = set(context.instance.get_dynamic_partitions(titles_partitions.name))
    new_titles: list[str] = []
    requests: list[RunRequest] = []
    next_pending: dict[str, str] = {}
    next_stable: dict[str, str] = {}
    for inc in registry.scan_incoming():
        # A group without a sidecar may still be uploading: take it once it looks the same twice,
        # and keep requesting it (same run key, so no duplicate run) until the title adopts it.
        if not inc.complete:
            if inc.signature not in (pending.get(inc.video_key), stable.get(inc.video_key)):
                next_pending[inc.video_key] = inc.signature
                continue
            next_stable[inc.video_key] = inc.signature
        if inc.title_id not in known and inc.title_id not in new_titles:
            new_titles.append(inc.title_id)
        requests.append(
            RunRequest(
                run_key=f"{inc.title_id}:{inc.signature}",
                partition_key=inc.title_id,
                tags={
                    "marquee/incoming": inc.video_key,
                    INCOMING_SIGNATURE_TAG: inc.signature,
                    "marquee/source": "incoming_titles_sensor",
                },
            )
        )
    for key, reason in registry.invalid_incoming():
        context.log.warning(f"ignoring {lake.store().url(key)}: {reason}")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[titles_partitions.build_add_request(new_titles)] if new_titles else [],
        cursor=json.dumps({"pending": next_pending, "stable": next_stable}, sort_keys=True),
    )
