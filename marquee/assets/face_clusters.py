"""``face_clusters``: tracks clustered into characters, numbered by screen time.

Tracks, not loose faces, are clustered (a track's faces are one person), two tracks seen in one frame
never join, and clusters seen too briefly are kept as background rather than promoted to characters.
Writes ``face_clusters`` (a character id per face) and ``characters`` (one row per cluster with face
and track counts, screen time, first appearance and a representative face picture).
"""

from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from marquee.assets.common import (
    Reads,
    check_result,
    current_step,
    media_version,
    preview,
    short_hash,
    table_data_version,
    title_asset,
)
from marquee.ops.faces.embed import DEFAULT_FACE_EMBEDDER, embedder_class
from marquee.ops.faces.pipeline import CharacterParams, cluster_characters
from marquee.ops.faces.tables import characters_rows, clusters_rows, embeddings_from_table, faces_from_table
from marquee.ops.faces.validate import cluster_problems
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES

CLUSTERS_CHECK = "cluster_ids_consistent"
#: Faces with their tracks and descriptors; keyframes and shots give screen time.
READS = Reads("face_clusters", tables=("faces", "face_embeddings", "keyframes", "shots"))


def clusters_config(embedder_name: str, params: CharacterParams) -> dict[str, Any]:
    cls = embedder_class(embedder_name)
    return {
        "threshold": params.threshold if params.threshold is not None else float(cls.track_threshold),
        "normalised": bool(cls.normalised),
        "method": params.method,
        "background": params.background.__dict__,
        "default_interval_s": params.default_interval_s,
    }


def build_face_clusters_asset(
    embedder_name: str = DEFAULT_FACE_EMBEDDER, params: CharacterParams | None = None
) -> AssetsDefinition:
    """The ``face_clusters`` asset; the embedder decides the distance threshold."""
    params = params or CharacterParams()
    config = clusters_config(embedder_name, params)
    embedder_prefix = f"{embedder_class(embedder_name).name}@"

    @title_asset(
        READS,
        code_version=f"face_clusters-1|{short_hash(config)}",
        group_name="characters",
        kinds={"scipy", "duckdb"},
        metadata={"config": MetadataValue.json(config)},
        check_specs=[
            AssetCheckSpec(
                CLUSTERS_CHECK,
                asset="face_clusters",
                description="One character per track, known ids numbered by screen time, counts that add "
                "up, never one character twice in a frame.",
            )
        ],
        description="A character id per face (`face_clusters`) and a row per character (`characters`): "
        "faces, tracks, screen time, first appearance, representative face; background clusters marked.",
    )
    def face_clusters(context: AssetExecutionContext, lake: LakeResource):
        title_id = context.partition_key
        store, step = lake.store(), current_step(context)
        faces_rows = step.read("faces")
        faces = faces_from_table(faces_rows)
        emb = step.read("face_embeddings")
        made_with = {e for e in emb.column("embedder").to_pylist() if not e.startswith(embedder_prefix)}
        if made_with:
            raise Failure(
                description=f"{title_id}: face_embeddings were made with {sorted(made_with)}, but this code "
                f"location clusters {embedder_name} descriptors; re-materialise face_embeddings first",
                allow_retries=False,
            )
        vectors = embeddings_from_table(emb, faces)
        keyframes = step.read("keyframes").select(["frame", "time_s", "shot_id"])
        shots = step.read("shots").select(["shot_id", "start_s", "end_s"]).to_pylist()
        characters, _ = cluster_characters(
            faces,
            vectors,
            [(r["frame"], r["time_s"], r["shot_id"]) for r in keyframes.to_pylist()],
            threshold=config["threshold"],
            normalised=config["normalised"],
            shots={s["shot_id"]: (s["start_s"], s["end_s"]) for s in shots},
            params=params,
        )
        # Each character's face picture is copied next to the table that names it, so it stays valid
        # when the faces asset is re-materialised (which replaces its crops).
        crop_of = dict(
            zip(
                faces_rows.column("face_id").to_pylist(),
                faces_rows.column("crop_key").to_pylist(),
                strict=True,
            )
        )
        media = media_version(context, "characters")
        face_keys: dict[int, str | None] = {}
        for c in characters:
            src = crop_of.get(c.representative_face_id)
            if src and store.exists(src):
                key = media.key(f"{c.character_id:04d}.jpg")
                store.write_bytes(key, store.read_bytes(src))
                face_keys[c.character_id] = key
        embedder_id = emb.column("embedder")[0].as_py() if emb.num_rows else embedder_prefix
        per_face = TABLES["face_clusters"].table(clusters_rows(faces, characters))
        per_character = TABLES["characters"].table(characters_rows(characters, face_keys, embedder_id))
        step.write({"face_clusters": per_face, "characters": per_character})
        problems = cluster_problems(faces_rows.to_pylist(), per_face.to_pylist(), per_character.to_pylist())
        main = [c for c in characters if not c.background]
        context.log.info(
            f"{title_id}: {len(main)} characters, {len(characters) - len(main)} background clusters "
            f"from {len({f.track_id for f in faces})} tracks"
        )
        yield MaterializeResult(
            metadata={
                "n_characters": len(main),
                "n_background": len(characters) - len(main),
                "n_faces": len(faces),
                "unidentified_faces": sum(f.character_id < 0 for f in faces),
                "screen_time_s": MetadataValue.json(
                    {str(c.character_id): round(c.screen_time_s, 2) for c in main}
                ),
                "preview": preview(per_character.drop_columns(["track_ids", "face_key", "embedder"])),
            },
            data_version=table_data_version(per_face, per_character.drop_columns(["face_key"]).to_pylist()),
        )
        yield check_result("face_clusters", CLUSTERS_CHECK, problems)

    return face_clusters
