"""``expression_model`` (not partitioned): the model that scores faces for artwork.

With a thumbnail dataset under ``datasets/thumbnails/<title>/{artwork,frames}/`` in object storage
(see ``marquee.ops.expressions.dataset``) it trains a classifier, with metrics from cross-validation
grouped by title in its metadata; without one it is the calibrated rule. The model is stored under
``models/expression/`` and its version is this asset's data version, so re-training marks
``expression_scores`` and everything after it stale for every title.
"""

import json

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from marquee.assets.common import HEAVY_RETRY, bad_input_fails_fast
from marquee.ops.expressions.dataset import IMAGE_SUFFIXES, build_training_set
from marquee.ops.expressions.model import RuleModel, describe, train_model
from marquee.ops.expressions.signals import FaceMeshLandmarker
from marquee.ops.faces.detect import make_face_detector
from marquee.ops.images import decode_rgb
from marquee.resources.lake import LakeResource
from marquee.resources.storage import ObjectStore

DATASET = "datasets/thumbnails"
MODEL_PREFIX = "models/expression"
CURRENT = f"{MODEL_PREFIX}/current.json"


def _images(store: ObjectStore, prefix: str):
    keys = [k for k in store.list(prefix) if k.lower().endswith(IMAGE_SUFFIXES)]
    return [(store.url(k), (lambda k=k: decode_rgb(store.read_bytes(k), store.url(k)))) for k in keys]


def dataset_titles(store: ObjectStore) -> list[str]:
    """Titles with at least one artwork image in the dataset."""
    keys = store.list(DATASET)
    return sorted({k.split("/")[2] for k in keys if k.count("/") >= 4 and k.split("/")[3] == "artwork"})


@asset(
    code_version=f"expression_model-1|{RuleModel().version}",
    retry_policy=HEAVY_RETRY,
    group_name="thumbnails",
    kinds={"scikitlearn"},
    description="Faces' signals -> expression score: trained on `datasets/thumbnails/<title>/artwork` "
    "(positives) and `.../frames` (negatives) when present, else the calibrated rule. "
    "Stored under `models/expression/`.",
)
def expression_model(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    store = lake.store()
    titles = dataset_titles(store)
    if titles:
        with bad_input_fails_fast():
            detector, landmarker = make_face_detector(), FaceMeshLandmarker()
        data = {
            t: (_images(store, f"{DATASET}/{t}/artwork"), _images(store, f"{DATASET}/{t}/frames"))
            for t in titles
        }
        training = build_training_set(data, detector, landmarker)
        landmarker.close()
        try:
            model = train_model(training.rows, training.labels, training.groups)
        except ValueError as exc:
            raise ValueError(f"{store.url(DATASET)}: {exc}") from exc
        model.metrics["per_title"] = training.counts()
    else:
        model = RuleModel()
    key = f"{MODEL_PREFIX}/{model.version}.bin"
    store.write_bytes(key, model.to_bytes())
    store.write_bytes(CURRENT, json.dumps({"key": key, "version": model.version}).encode())
    info = describe(model)
    context.log.info(
        f"expression model {model.version} ({'trained on ' + str(titles) if titles else 'rule'})"
    )
    return MaterializeResult(
        metadata={
            "kind": info["kind"],
            "model_version": model.version,
            "model": MetadataValue.path(store.url(key)),
            "dataset": MetadataValue.path(store.url(DATASET)),
            "dataset_titles": len(titles),
            "details": MetadataValue.json(info.get("metrics") or info.get("params") or {}),
        },
        data_version=DataVersion(model.version),
    )
