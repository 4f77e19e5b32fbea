"""``face_embeddings``: a descriptor for the best few faces of every track, a reason for the others.

Embedding is the slowest step per face, and the faces of one track are one person, so only the best
``faces_per_track`` faces (sharp, frontal, large) of each track are embedded; every face gets a row
saying whether it was embedded and why not. The embedder (dlib by default; FaceNet when its weights
are in the model store) and its version are recorded per row and are part of the code version.
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
    preview,
    short_hash,
    step_progress,
    table_data_version,
    title_asset,
)
from marquee.ops.faces.embed import DEFAULT_FACE_EMBEDDER, embedder_identity, embedder_spec
from marquee.ops.faces.pipeline import CharacterParams, embed_tracks
from marquee.ops.faces.tables import embeddings_rows, faces_from_table
from marquee.ops.faces.validate import embedding_problems
from marquee.ops.images import decode_rgb
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES

EMBEDDINGS_CHECK = "every_face_has_embedding_or_reason"


READS = Reads("face_embeddings", tables=("faces", "keyframes"))


def embeddings_version(embedder_name: str, embedder_params: dict[str, Any], params: CharacterParams) -> str:
    choice = {"faces_per_track": params.faces_per_track, "min_embed_size": params.min_embed_size}
    return f"face_embeddings-1|{embedder_spec(embedder_name, **embedder_params)}|{short_hash(choice)}"


def build_face_embeddings_asset(
    embedder_name: str = DEFAULT_FACE_EMBEDDER,
    embedder_params: dict[str, Any] | None = None,
    params: CharacterParams | None = None,
) -> AssetsDefinition:
    """The ``face_embeddings`` asset for one embedder configuration."""
    eparams = dict(embedder_params or {})
    params = params or CharacterParams()

    @title_asset(
        READS,
        pool=MODEL_POOL,
        code_version=embeddings_version(embedder_name, eparams, params),
        group_name="characters",
        kinds={"dlib", "duckdb"},
        metadata={"embedder": embedder_spec(embedder_name, **eparams)},
        check_specs=[
            AssetCheckSpec(
                EMBEDDINGS_CHECK,
                asset="face_embeddings",
                description="Every face has a descriptor or the reason it has none; one descriptor size.",
            )
        ],
        description="Descriptors of the best few faces per track (`embedded`, `reason`, `embedder`, "
        "`embedding`), one row per face.",
    )
    def face_embeddings(context: AssetExecutionContext, lake: LakeResource):
        title_id = context.partition_key
        store, step = lake.store(), current_step(context)
        faces_rows = step.read("faces")
        faces = faces_from_table(faces_rows)
        keyframes = step.read("keyframes")
        image_keys = dict(
            zip(keyframes.column("frame").to_pylist(), keyframes.column("image_key").to_pylist(), strict=True)
        )
        with bad_input_fails_fast():
            embedder = lake.models().face_embedder(embedder_name, **eparams)

        def load_image(frame: int):
            key = image_keys[frame]
            return decode_rgb(store.read_bytes(key), store.url(key))

        started = time.perf_counter()
        vectors = embed_tracks(
            faces,
            load_image,
            embedder,
            k=params.faces_per_track,
            min_size=params.min_embed_size,
            progress=step_progress(context)("embeddings", "keyframes"),
        )
        seconds = time.perf_counter() - started
        identity = embedder_identity(embedder)
        table = TABLES["face_embeddings"].table(embeddings_rows(faces, vectors, identity))
        step.write({"face_embeddings": table})
        problems = embedding_problems(faces_rows.to_pylist(), table.to_pylist())
        reasons: dict[str, int] = {}
        for f in faces:
            reasons[f.embed_reason] = reasons.get(f.embed_reason, 0) + 1
        context.log.info(f"{title_id}: embedded {len(vectors)} of {len(faces)} faces ({seconds:.1f}s)")
        yield MaterializeResult(
            metadata={
                "n_faces": len(faces),
                "n_embedded": len(vectors),
                "n_tracks": len({f.track_id for f in faces}),
                "reasons": MetadataValue.json(reasons),
                "embedder": identity,
                "seconds": round(seconds, 3),
                "faces_embedded_per_s": round(len(vectors) / seconds, 2) if seconds else None,
                "preview": preview(table.drop_columns(["embedding"])),
            },
            data_version=table_data_version(table),
        )
        yield check_result("face_embeddings", EMBEDDINGS_CHECK, problems)

    return face_embeddings
