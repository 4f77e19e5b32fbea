"""``shot_features``: one row of trailerness-model inputs per film shot (``marquee.ops.trailers.features``).

Default CPU configuration, with no second decode of the picture: shot length and position; the
shots pass's per-shot ``motion``; audio loudness and onsets (one decode of the audio track only);
faces and character prominence from the characters stages; and the ImageNet MobileNetV2 embedding
of the shot's stored keyframes. The encoder's version is stored on every row, and the trailerness
model refuses rows made by another encoder. ``MARQUEE_FRAME_ENCODER=none`` leaves the embedding out
(for users who do not want ImageNet-trained weights: see the README's licence table); the model then
learns from the other columns. ``r3d_18`` / ``r3d_34`` (the paper's 3D ResNet-34) embed a 16-frame
clip around each shot's middle instead, at the cost of one more decode of the film; their weights
must be placed in the model store (no package ships them).
"""

import time

import numpy as np
from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue

from marquee.assets.common import (
    MODEL_POOL,
    Reads,
    TitleStep,
    bad_input_fails_fast,
    current_step,
    load_keyframe,
    preview,
    table_data_version,
    title_asset,
)
from marquee.ops.errors import UnknownChoiceError, VideoError
from marquee.ops.prefetch import prefetched
from marquee.ops.trailers.audio import analyze_audio
from marquee.ops.trailers.features import (
    FileFeatureTiming,
    ShotFeatures,
    face_features,
    features_for_file,
    features_rows,
    shot_embeddings,
    shot_features,
)
from marquee.ops.trailers.visual import FrameEncoder
from marquee.resources.lake import LakeResource
from marquee.resources.storage import ObjectStore
from marquee.resources.tables import TABLES

#: Shots (spans, motion), their best keyframes, the title's probe, and the faces with their characters
#: and prominence.
READS = Reads(
    "shot_features",
    tables=("titles", "shots", "keyframes", "faces", "face_clusters", "character_nodes"),
)

#: Keyframes per shot that the encoder sees (the best-ranked ones): long shots have many samples,
#: and a few describe them as well as all.
KEYFRAMES_PER_SHOT = 3


#: Frame encoders for the shot embedding: the default, or none at all.
FRAME_ENCODERS = ("mobilenet_v2", "none", "r3d_18", "r3d_34")
#: 3D-CNN encoders see a clip around each shot's middle, which the stored keyframes cannot give:
#: they cost one more decode of the film (meant for users with a GPU and weights in the model store).
CLIP_ENCODERS = ("r3d_18", "r3d_34")


def build_shot_features_asset(frame_encoder: str = "mobilenet_v2") -> AssetsDefinition:
    """The ``shot_features`` asset with this frame encoder (``FRAME_ENCODERS``)."""
    if frame_encoder not in FRAME_ENCODERS:
        raise UnknownChoiceError(f"unknown frame encoder {frame_encoder!r}; choose one of {FRAME_ENCODERS}")

    @title_asset(
        READS,
        pool=MODEL_POOL,
        code_version=f"shot_features-1|{frame_encoder}@224|keyframes={KEYFRAMES_PER_SHOT}",
        group_name="trailers",
        kinds={"pytorch", "pyav", "duckdb"},
        description="Per film shot: length, position, motion, audio loudness and onsets, faces and "
        "character prominence, and the MobileNetV2 embedding of its keyframes.",
    )
    def shot_features_asset(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        title_id = context.partition_key
        store, step, registry = lake.store(), current_step(context), lake.titles()
        info = step.read("titles").to_pylist()[0]
        shots = step.read("shots").sort_by("shot_id").to_pylist()
        shot_ids = [int(s["shot_id"]) for s in shots]
        timings: dict[str, float] = {}

        # Faces and characters (already computed by the characters stages).
        faces = step.read("faces").to_pylist()
        character_of = {r["face_id"]: r["character_id"] for r in step.read("face_clusters").to_pylist()}
        for f in faces:
            f["character_id"] = character_of.get(f["face_id"], -1)
        nodes = {r["character_id"]: r for r in step.read("character_nodes").to_pylist()}
        face_cols = face_features(
            shot_ids, faces, frame_area=float(info["width"]) * float(info["height"]), characters=nodes
        )

        motion = [s.get("motion") for s in shots]
        known_motion = None if any(m is None for m in motion) else motion
        manifest = registry.manifest(title_id)
        if frame_encoder in CLIP_ENCODERS:
            feats, timings = _with_clips(
                lake, info, manifest.source_key, shots, known_motion, face_cols, frame_encoder
            )
            encoder_version, n_encoded, has_audio = (
                feats.encoder,
                len(shots),
                bool(np.nansum(feats.column("has_audio"))),
            )
        else:
            # Audio: one decode of the audio track.
            t0 = time.perf_counter()
            with bad_input_fails_fast():
                with registry.local_file(manifest.source_key, lake.scratch()) as path:
                    try:
                        audio = analyze_audio(path)
                    except VideoError as exc:
                        raise VideoError(info["path"], exc.reason) from exc
                encoder = lake.models().frame_encoder() if frame_encoder != "none" else None
            timings["audio_s"] = time.perf_counter() - t0
            has_audio = bool(audio.has_audio)

            # Visual: the best few stored keyframes of each shot (no decode of the film).
            t0 = time.perf_counter()
            embedding, n_encoded, encoder_version = None, 0, ""
            if encoder is not None:
                embedding, n_encoded = _keyframe_embeddings(store, step, shot_ids, encoder)
                encoder_version = encoder.version
            timings["visual_s"] = time.perf_counter() - t0
            feats = shot_features(
                shot_ids,
                [s["start_s"] for s in shots],
                [s["end_s"] for s in shots],
                float(info["duration_s"]),
                motion=known_motion,
                audio=audio,
                faces=face_cols,
                embeddings=embedding,
                encoder=encoder_version,
            )
        table = TABLES["shot_features"].table(
            features_rows(shot_ids, feats.scalars, feats.embedding, encoder_version)
        )
        step.write({"shot_features": table})
        context.log.info(
            f"{title_id}: features for {len(shot_ids)} shots ({n_encoded} keyframes or clips encoded, "
            f"audio {'yes' if has_audio else 'none'})"
        )
        return MaterializeResult(
            metadata={
                "n_shots": len(shot_ids),
                "keyframes_or_clips_encoded": n_encoded,
                "encoder": encoder_version or "none",
                "has_audio": has_audio,
                "has_motion": known_motion is not None,
                "timings_s": MetadataValue.json({k: round(v, 3) for k, v in timings.items()}),
                "ms_per_encoded_item": round(1000 * timings.get("visual_s", 0.0) / max(n_encoded, 1), 1),
                "preview": preview(table.drop_columns(["embedding"])),
            },
            data_version=table_data_version(table),
        )

    return shot_features_asset


def _keyframe_embeddings(
    store: ObjectStore, step: TitleStep, shot_ids: list[int], encoder: FrameEncoder
) -> tuple[np.ndarray, int]:
    """Per shot the mean embedding of its best ``KEYFRAMES_PER_SHOT`` stored keyframes, streamed from
    storage through the encoder (a film has thousands of shots: their pictures never sit in memory)."""
    keyframes = step.read("keyframes").sort_by([("shot_id", "ascending"), ("rank_in_shot", "ascending")])
    per_shot: dict[int, list[dict]] = {}
    for k in keyframes.select(["shot_id", "frame", "time_s", "image_key"]).to_pylist():
        chosen = per_shot.setdefault(int(k["shot_id"]), [])
        if len(chosen) < KEYFRAMES_PER_SHOT:
            chosen.append(k)
    wanted = [k for sid in shot_ids for k in per_shot.get(sid, [])]
    index_of = {sid: i for i, sid in enumerate(shot_ids)}
    pictures = prefetched(wanted, lambda row: load_keyframe(store, row))
    embedding = shot_embeddings(encoder, len(shot_ids), ((index_of[kf.shot_id], kf.image) for kf in pictures))
    return embedding, len(wanted)


def _with_clips(
    lake: LakeResource,
    info: dict,
    source_key: str,
    shots: list[dict],
    motion: list[float] | None,
    faces: np.ndarray,
    arch: str,
) -> tuple[ShotFeatures, dict[str, float]]:
    """Features with a 3D-CNN clip embedding: one more decode of the film samples a clip per shot."""
    timing = FileFeatureTiming()
    with bad_input_fails_fast():
        encoder = lake.models().clip_encoder(arch)
        with lake.titles().local_file(source_key, lake.scratch()) as path:
            try:
                feats = features_for_file(
                    path,
                    [(int(s["start_frame"]), int(s["end_frame"])) for s in shots],
                    motion,
                    clip_encoder=encoder,
                    faces=faces,
                    timing=timing,
                )
            except VideoError as exc:
                raise VideoError(info["path"], exc.reason) from exc
    return feats, {"decode_s": timing.decode_s, "visual_s": timing.encode_s, "audio_s": timing.audio_s}
