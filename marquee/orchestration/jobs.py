"""Jobs: the whole graph for a title, and re-running shots (and what follows) after a model update."""

from dagster import AssetSelection, define_asset_job

from marquee.assets.partitions import titles_partitions

#: Everything per title; what the sensor launches and what `marquee run` executes in-process.
title_job = define_asset_job(
    "marquee_title_job",
    selection=AssetSelection.all(),
    partitions_def=titles_partitions,
    description="Materialise every asset of one title (a partition).",
)

#: After a shot-detector update: shots and everything downstream, for a backfill over titles.
shots_refresh_job = define_asset_job(
    "shots_refresh_job",
    selection=AssetSelection.keys("shots").downstream(),
    partitions_def=titles_partitions,
    description="Re-materialise shots and all downstream assets (e.g. after changing the shot detector).",
)
