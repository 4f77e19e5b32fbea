"""``trailerness_model`` (not partitioned): learnt from every title that has a trailer.

The labels are the soft labels of ``trailer_matches`` (no annotation: the trailer says which film
shots an editor chose); the inputs are ``shot_features``. Metrics from cross-validation grouped by
title (the model against a random ranking and a motion/loudness heuristic, in the same run) go into
the asset's metadata. Without any title with a trailer the model is the documented heuristic. The
model version is the data version, so re-training marks ``trailerness`` and what follows stale for
every title; ``trailers_refresh_job`` backfills them.
"""

import numpy as np
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from marquee.assets.common import HEAVY_RETRY, Reads, TableReader, store_model
from marquee.ops.errors import MarqueeError
from marquee.ops.trailers.features import features_from_table
from marquee.ops.trailers.model import TrailernessModel, describe, train_model
from marquee.resources.lake import LakeResource
from marquee.resources.tables import MODELS


def training_data(
    tables: TableReader,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str], str]:
    """Rows of every title with a matched trailer: features, soft labels, matched-in-trailer flags,
    the title of each row, the titles used, and the visual encoder that made the features."""
    xs, ys, hard, groups, used, encoders = [], [], [], [], [], set()
    for title_id in tables.titles("shot_labels"):
        labels = tables.read("shot_labels", title_id)
        if labels.num_rows == 0 or not tables.has("shot_features", title_id):
            continue
        ids, x, encoder = features_from_table(tables.read("shot_features", title_id))
        by_id = {r["shot_id"]: r for r in labels.to_pylist()}
        if set(ids) != set(by_id):
            raise MarqueeError(
                f"title {title_id!r}: shot_features and shot_labels cover different shots; "
                "re-materialise shot_features and trailer_matches for it"
            )
        xs.append(x)
        ys.append([by_id[i]["soft_label"] for i in ids])
        hard.append([by_id[i]["in_trailer"] for i in ids])
        groups += [title_id] * len(ids)
        used.append(title_id)
        encoders.add(encoder)
    if len(encoders) > 1:
        raise MarqueeError(
            f"shot_features of the trailer titles come from different encoders {sorted(encoders)}; "
            "re-materialise shot_features for all of them with one"
        )
    if not xs:
        return np.zeros((0, 0)), np.zeros(0), np.zeros(0, bool), [], [], ""
    widths = {x.shape[1] for x in xs}
    if len(widths) > 1:
        raise MarqueeError(f"shot_features tables have different widths {sorted(widths)}")
    return (
        np.vstack(xs),
        np.concatenate(ys).astype(np.float64),
        np.concatenate(hard).astype(bool),
        groups,
        used,
        encoders.pop(),
    )


#: The soft labels of every title with a trailer, and those titles' shot features.
READS = Reads("trailerness_model", tables=("shot_labels", "shot_features"))


@asset(
    deps=READS.deps,
    code_version="trailerness_model-1",
    retry_policy=HEAVY_RETRY,
    group_name="trailers",
    kinds={"scikitlearn"},
    description="Shot features -> trailerness, trained on the soft labels of every title with a "
    "trailer (cross-validated by title against random and motion/loudness baselines); the "
    "heuristic when no title has one. Stored under `models/trailerness/`.",
)
def trailerness_model(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    x, y, hard, groups, titles, encoder = training_data(TableReader(READS, lake.warehouse()))
    if titles:
        model = train_model(x, y, groups, truth=hard, encoder=encoder)
        model.metrics["titles_used"] = titles
    else:
        model = TrailernessModel.default()
    key = store_model(lake.store(), MODELS["trailerness"].prefix, model.version, model.to_bytes())
    info = describe(model)
    metrics = info.get("metrics") or {}
    context.log.info(
        f"trailerness model {model.version}: "
        + (f"trained on {len(titles)} titles, {len(y)} shots" if titles else "heuristic (no trailers)")
    )
    return MaterializeResult(
        metadata={
            "kind": model.kind,
            "model_version": model.version,
            "model": MetadataValue.path(lake.store().url(key)),
            "titles": len(titles),
            "shots": len(y),
            "top10_precision_cv": (metrics.get("model") or {}).get("precision@10"),
            "details": MetadataValue.json(info),
        },
        data_version=DataVersion(model.version),
    )
