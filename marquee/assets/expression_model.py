"""``expression_model`` (not partitioned): the model that scores faces for artwork.

With a thumbnail dataset under ``datasets/thumbnails/<title>/{artwork,frames}/`` in object storage
(see ``marquee.ops.expressions.dataset``) it trains a classifier, with metrics from cross-validation
grouped by title in its metadata; without one it is the calibrated rule. The model is stored under
``models/expression/`` and its version is this asset's data version, so re-training marks
``expression_scores`` and everything after it stale for every title.

Training measures the dataset's faces with the same face detector and embedder as the titles' face
stages (so a descriptor the model learnt from is comparable with the titles' ``face_embeddings``).
"""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from marquee.assets.common import HEAVY_RETRY, Reads, bad_input_fails_fast, store_model
from marquee.ops.expressions.dataset import IMAGE_SUFFIXES, build_training_set
from marquee.ops.expressions.model import RuleModel, describe, train_model
from marquee.ops.expressions.signals import FaceMeshLandmarker
from marquee.ops.faces.detect import DEFAULT_FACE_DETECTOR, detector_spec, make_face_detector
from marquee.ops.faces.embed import DEFAULT_FACE_EMBEDDER, embedder_identity, embedder_spec
from marquee.ops.images import decode_rgb
from marquee.resources.lake import LakeResource
from marquee.resources.storage import ObjectStore
from marquee.resources.tables import MODELS

DATASET = "datasets/thumbnails"


def _images(store: ObjectStore, prefix: str):
    keys = [k for k in store.list(prefix) if k.lower().endswith(IMAGE_SUFFIXES)]
    return [(store.url(k), (lambda k=k: decode_rgb(store.read_bytes(k), store.url(k)))) for k in keys]


def dataset_titles(store: ObjectStore) -> list[str]:
    """Titles with at least one artwork image in the dataset."""
    keys = store.list(DATASET)
    return sorted({k.split("/")[2] for k in keys if k.count("/") >= 4 and k.split("/")[3] == "artwork"})


#: No table: it learns from a dataset of stills in object storage (``datasets/thumbnails/``).
READS = Reads("expression_model")


def build_expression_model_asset(
    face_detector: str = DEFAULT_FACE_DETECTOR,
    face_embedder: str = DEFAULT_FACE_EMBEDDER,
    embedder_params: dict[str, Any] | None = None,
) -> AssetsDefinition:
    """The ``expression_model`` asset, measuring dataset faces with this detector and embedder."""
    eparams = dict(embedder_params or {})
    spec = f"{detector_spec(face_detector)}|{embedder_spec(face_embedder, **eparams)}"

    @asset(
        name="expression_model",
        deps=READS.deps,
        code_version=f"expression_model-2|{RuleModel().version}|{spec}",
        retry_policy=HEAVY_RETRY,
        group_name="thumbnails",
        kinds={"scikitlearn"},
        description="Faces' signals (and, where it helps on held-out titles, the face embedding) -> "
        "expression score: trained on `datasets/thumbnails/<title>/artwork` (positives) and "
        "`.../frames` (negatives) when present, else the calibrated rule. Stored under "
        "`models/expression/`.",
    )
    def expression_model(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        store = lake.store()
        titles = dataset_titles(store)
        if titles:
            with bad_input_fails_fast():
                detector, landmarker = make_face_detector(face_detector), FaceMeshLandmarker()
                embedder = lake.models().face_embedder(face_embedder, **eparams)
            data = {
                t: (_images(store, f"{DATASET}/{t}/artwork"), _images(store, f"{DATASET}/{t}/frames"))
                for t in titles
            }
            try:
                training = build_training_set(data, detector, landmarker, embedder=embedder)
            finally:
                landmarker.close()
            try:
                model = train_model(
                    training.rows,
                    training.labels,
                    training.groups,
                    embeddings=training.embeddings(embedder.dim),
                    embedder=embedder_identity(embedder),
                )
            except ValueError as exc:
                raise ValueError(f"{store.url(DATASET)}: {exc}") from exc
            model.metrics["per_title"] = training.counts()
        else:
            model = RuleModel()
        key = store_model(store, MODELS["expression"].prefix, model.version, model.to_bytes())
        info = describe(model)
        context.log.info(
            f"expression model {model.version} ({'trained on ' + str(titles) if titles else 'rule'})"
        )
        return MaterializeResult(
            metadata={
                "kind": info["kind"],
                "model_version": model.version,
                "inputs": (info.get("metrics") or {}).get("inputs", "signals"),
                "model": MetadataValue.path(store.url(key)),
                "dataset": MetadataValue.path(store.url(DATASET)),
                "dataset_titles": len(titles),
                "details": MetadataValue.json(info.get("metrics") or info.get("params") or {}),
            },
            data_version=DataVersion(model.version),
        )

    return expression_model
