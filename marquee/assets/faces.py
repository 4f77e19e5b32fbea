"""``faces``: faces detected on every keyframe, tracked within shots, with a crop per face.

Reads the keyframe images from object storage (never the film), detects in batches, tracks by box
overlap plus appearance, and writes the ``faces`` table (boxes and landmarks in source-video pixels)
and a square thumbnail per face. The detector's name, version and parameters are part of the code
version, so choosing another detector marks ``faces`` and everything after it stale.
"""

import time
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
)

from marquee.assets.common import (
    MODEL_POOL,
    Reads,
    bad_input_fails_fast,
    check_result,
    current_step,
    load_keyframe,
    media_version,
    preview,
    short_hash,
    step_progress,
    table_data_version,
    title_asset,
)
from marquee.ops.faces.detect import (
    DEFAULT_FACE_DETECTOR,
    detector_identity,
    detector_spec,
    make_face_detector,
)
from marquee.ops.faces.pipeline import CharacterParams, KeyframeImage, detect_and_track
from marquee.ops.faces.quality import face_thumbnail
from marquee.ops.faces.tables import faces_rows
from marquee.ops.faces.types import FaceRecord
from marquee.ops.faces.validate import face_crop_problems
from marquee.ops.images import encode_jpeg
from marquee.ops.prefetch import prefetched
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES

FACES_CHECK = "faces_have_crops"
CROP_SIZE = 128
#: The keyframes, and the title's size (face boxes are stored in source-video pixels).
READS = Reads("faces", tables=("titles", "keyframes"))


def faces_version(detector_name: str, detector_params: dict[str, Any], params: CharacterParams) -> str:
    tracking = {"tracker": params.tracker.__dict__, "use_appearance": params.use_appearance}
    return f"faces-1|{detector_spec(detector_name, **detector_params)}|{short_hash(tracking)}"


def build_faces_asset(
    detector_name: str = DEFAULT_FACE_DETECTOR,
    detector_params: dict[str, Any] | None = None,
    params: CharacterParams | None = None,
) -> AssetsDefinition:
    """The ``faces`` asset for one detector configuration."""
    dparams = dict(detector_params or {})
    params = params or CharacterParams()

    @title_asset(
        READS,
        pool=MODEL_POOL,
        code_version=faces_version(detector_name, dparams, params),
        group_name="characters",
        kinds={"pytorch", "duckdb"},
        metadata={"detector": detector_spec(detector_name, **dparams)},
        check_specs=[
            AssetCheckSpec(
                FACES_CHECK, asset="faces", description="Every face row points at its stored crop."
            )
        ],
        description="Faces on every keyframe (box, score, 5 landmarks, size, quality) tracked within shots "
        "(`track_id`), with a square crop per face in object storage.",
    )
    def faces(context: AssetExecutionContext, lake: LakeResource):
        title_id = context.partition_key
        store, step = lake.store(), current_step(context)
        info = step.read("titles").to_pylist()[0]
        keyframes = step.read("keyframes").sort_by("frame").to_pylist()
        with bad_input_fails_fast():
            detector = make_face_detector(detector_name, **dparams)
        scale = float(info["width"]) / float(keyframes[0]["width"]) if keyframes else 1.0
        media = media_version(context, "faces")
        crop_keys: dict[int, str] = {}

        def store_crops(kf: KeyframeImage, found: list[FaceRecord]) -> None:
            for f in found:
                key = media.key(f"{f.face_id:07d}.jpg")
                store.write_bytes(key, encode_jpeg(face_thumbnail(kf.image, f.box, size=CROP_SIZE)))
                crop_keys[f.face_id] = key

        started = time.perf_counter()
        images = prefetched(keyframes, lambda row: load_keyframe(store, row))
        records, _ = detect_and_track(
            images,
            detector,
            params=params,
            on_faces=store_crops,
            progress=step_progress(context)("faces", "keyframes"),
            total=len(keyframes),
        )
        seconds = time.perf_counter() - started
        identity = detector_identity(detector)
        table = TABLES["faces"].table(faces_rows(records, scale, identity, crop_keys))
        step.write({"faces": table})
        problems = face_crop_problems(table.to_pylist(), store.exists)
        n_tracks = len({f.track_id for f in records})
        context.log.info(
            f"{title_id}: {len(records)} faces in {len(keyframes)} keyframes, {n_tracks} tracks "
            f"({seconds:.1f}s)"
        )
        yield MaterializeResult(
            metadata={
                "n_keyframes": len(keyframes),
                "n_faces": len(records),
                "n_tracks": n_tracks,
                "keyframes_with_faces": len({f.frame for f in records}),
                "detector": identity,
                "seconds": round(seconds, 3),
                "keyframes_per_s": round(len(keyframes) / seconds, 2) if seconds else None,
                "crops": MetadataValue.path(store.url(media.prefix)),
                "preview": preview(table.drop_columns(["landmarks", "crop_key"])),
            },
            data_version=table_data_version(table.drop_columns(["crop_key"])),
        )
        yield check_result("faces", FACES_CHECK, problems)

    return faces
