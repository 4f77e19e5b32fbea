"""Running the title job (or a selection of assets) for one title in-process, for the Dagster tests."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetKey, DagsterInstance

from marquee.orchestration.partitions import register_titles


def run_title(
    defs, instance: DagsterInstance, title_id: str, selection: Sequence[AssetKey | str] | None = None
):
    """Materialise every asset of ``title_id`` (or only ``selection``); errors are returned, not raised."""
    register_titles(instance, [title_id])
    if selection is None:
        job = defs.resolve_job_def("marquee_title_job")
        return job.execute_in_process(partition_key=title_id, instance=instance, raise_on_error=False)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = [k if isinstance(k, AssetKey) else AssetKey(k) for k in selection]
    return job.execute_in_process(
        partition_key=title_id, instance=instance, asset_selection=keys, raise_on_error=False
    )
