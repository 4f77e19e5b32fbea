"""Jobs: the whole graph for a title, and re-running shots (and what follows) after a model update."""

from dagster import AssetSelection, define_asset_job

#: Models that serve every title (not partitioned) are materialised by their own jobs.
TITLE_ASSETS = AssetSelection.all() - AssetSelection.assets("expression_model", "trailerness_model")

#: Everything per title; what the sensor launches and what `marquee run` executes in-process.
title_job = define_asset_job(
    "marquee_title_job",
    selection=TITLE_ASSETS,
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

#: (Re-)train the expression model from the thumbnail dataset (or store the calibrated rule).
expression_model_job = define_asset_job(
    "expression_model_job",
    selection=AssetSelection.assets("expression_model"),
    description="Train the expression model on datasets/thumbnails/ (or store the rule when there is none).",
)

#: After re-training the expression model: scores and everything downstream, for a backfill.
expressions_refresh_job = define_asset_job(
    "expressions_refresh_job",
    selection=AssetSelection.assets("expression_scores").downstream(),
    description="Re-score faces and re-rank thumbnail candidates (after re-training the expression model).",
)

#: (Re-)train the trailerness model on every title with a trailer (or store the heuristic).
trailerness_model_job = define_asset_job(
    "trailerness_model_job",
    selection=AssetSelection.assets("trailerness_model"),
    description="Train the trailerness model on the soft labels of every title that has a trailer.",
)

#: After re-training the trailerness model: scores, moments and reports, for a backfill.
trailers_refresh_job = define_asset_job(
    "trailers_refresh_job",
    selection=AssetSelection.assets("trailerness").downstream(),
    description="Re-score shots and re-rank trailer moments (after re-training the trailerness model).",
)
