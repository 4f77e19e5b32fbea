"""Jobs: the whole graph for a title, and re-running shots (and what follows) after a model update."""

from dagster import AssetSelection, define_asset_job

#: Everything per title; what the sensor launches and what `marquee run` executes in-process.
title_job = define_asset_job(
    "marquee_title_job",
    selection=AssetSelection.all(),
    description="Materialise every asset of one title (a partition).",
)

#: After a shot-detector update: shots and everything downstream, for a backfill over titles.
shots_refresh_job = define_asset_job(
    "shots_refresh_job",
    selection=AssetSelection.assets("shots").downstream(),
    description="Re-materialise shots and all downstream assets (e.g. after changing the shot detector).",
)

#: After a face detector or embedder update: faces and everything downstream, for a backfill.
characters_refresh_job = define_asset_job(
    "characters_refresh_job",
    selection=AssetSelection.assets("faces").downstream(),
    description="Re-materialise faces, embeddings, clusters, the character graph and what follows "
    "(e.g. after changing the face detector or embedder).",
)
