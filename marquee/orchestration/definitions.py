"""The Dagster code location: assets, checks, jobs, sensors and resources, from the environment.

Configuration that changes results is read here, at load time, and baked into asset code versions,
so that changing it (e.g. ``MARQUEE_SHOT_DETECTOR=transnetv2``) marks the affected assets stale (and,
through ``lineage.py``, everything downstream of them):
- ``MARQUEE_SHOT_DETECTOR``: ``hybrid`` (default), ``fast`` or ``transnetv2``.
- ``MARQUEE_FACE_DETECTOR``: ``mtcnn`` (default) or ``blazeface`` (needs mediapipe).
- ``MARQUEE_FACE_EMBEDDER``: ``dlib`` (default) or ``facenet`` (weights in the model store:
  ``models/facenet/20180402-114759-vggface2.pt`` under the object storage root).
- ``MARQUEE_EXECUTOR``: ``in_process`` (default: one process per run; titles run in parallel as runs)
  or ``multiprocess`` (a process per step; does not change results).
- ``MARQUEE_FRAME_ENCODER``: ``mobilenet_v2`` (default, the shot embedding of ``shot_features``) or
  ``none`` (no visual embedding).
Storage locations come from ``marquee.resources.settings`` (``MARQUEE_HOME``, ``MARQUEE_STORAGE``, ...).
"""

from __future__ import annotations

import os

from dagster import Definitions, in_process_executor, multiprocess_executor

from marquee.assets.character_graph import character_graph
from marquee.assets.expression_model import build_expression_model_asset
from marquee.assets.expression_scores import expression_scores
from marquee.assets.face_clusters import build_face_clusters_asset
from marquee.assets.face_embeddings import build_face_embeddings_asset
from marquee.assets.faces import build_faces_asset
from marquee.assets.report import report
from marquee.assets.shot_features import build_shot_features_asset
from marquee.assets.shots import build_shots_assets
from marquee.assets.thumbnail_candidates import thumbnail_candidates
from marquee.assets.title import title
from marquee.assets.trailer import build_trailer_asset
from marquee.assets.trailer_matches import trailer_matches
from marquee.assets.trailerness import trailer_moments, trailerness
from marquee.assets.trailerness_model import trailerness_model
from marquee.ops.faces.detect import DEFAULT_FACE_DETECTOR
from marquee.ops.faces.embed import DEFAULT_FACE_EMBEDDER
from marquee.ops.memory import tune_allocator
from marquee.ops.shots.registry import DEFAULT_DETECTOR
from marquee.orchestration.instance import EXECUTOR_ENV
from marquee.orchestration.jobs import (
    characters_refresh_job,
    expression_model_job,
    expressions_refresh_job,
    shots_refresh_job,
    title_job,
    trailerness_model_job,
    trailers_refresh_job,
)
from marquee.orchestration.lineage import with_upstream_code_versions
from marquee.orchestration.logs import LOGGERS
from marquee.orchestration.sensors import incoming_titles_sensor
from marquee.resources.lake import LakeResource
from marquee.resources.settings import Settings


def build_definitions(
    settings: Settings | None = None,
    *,
    shot_detector: str | None = None,
    face_detector: str | None = None,
    face_embedder: str | None = None,
    frame_encoder: str | None = None,
) -> Definitions:
    tune_allocator()  # every process that runs steps builds the definitions first
    settings = settings or Settings.from_env()
    detector = shot_detector or os.environ.get("MARQUEE_SHOT_DETECTOR") or DEFAULT_DETECTOR
    faces_with = face_detector or os.environ.get("MARQUEE_FACE_DETECTOR") or DEFAULT_FACE_DETECTOR
    embed_with = face_embedder or os.environ.get("MARQUEE_FACE_EMBEDDER") or DEFAULT_FACE_EMBEDDER
    assets = [
        title,
        build_shots_assets(detector),
        build_faces_asset(faces_with),
        build_face_embeddings_asset(embed_with),
        build_face_clusters_asset(embed_with),
        character_graph,
        build_expression_model_asset(faces_with, embed_with),
        expression_scores,
        thumbnail_candidates,
        build_trailer_asset(detector),
        trailer_matches,
        build_shot_features_asset(frame_encoder or os.environ.get("MARQUEE_FRAME_ENCODER") or "mobilenet_v2"),
        trailerness_model,
        trailerness,
        trailer_moments,
        report,
    ]
    return Definitions(
        assets=with_upstream_code_versions(assets),
        jobs=[
            title_job,
            shots_refresh_job,
            characters_refresh_job,
            expression_model_job,
            expressions_refresh_job,
            trailerness_model_job,
            trailers_refresh_job,
        ],
        sensors=[incoming_titles_sensor],
        loggers=LOGGERS,
        resources={"lake": LakeResource.from_settings(settings)},
        executor=_executor(),
    )


def _executor():
    """The executor named by ``MARQUEE_EXECUTOR``; an unknown name fails at load, naming the choices."""
    choice = os.environ.get(EXECUTOR_ENV) or "in_process"
    executors = {"in_process": in_process_executor, "multiprocess": multiprocess_executor}
    if choice not in executors:
        raise ValueError(f"{EXECUTOR_ENV}={choice!r}: choose one of {', '.join(executors)}")
    return executors[choice]


defs = build_definitions()
