"""``expression_scores``: per face, the measured signals and the expression score; per keyframe, the
best and mean of its faces.

Landmarks come from MediaPipe FaceMesh on each stored keyframe (never the film); the expression CNN
(fer's mini-Xception, ``marquee.ops.expressions.emotion``) adds ``smile`` (P(happy)) and ``negative``
per face, or nulls with a warning where its weights are not installed. The current
``expression_model`` turns the signals into a score; its version is stored on every row. A model
that reads the face embedding gets each face's descriptor from ``face_embeddings``, or its track's
mean descriptor (a track is one person) for faces that were not embedded.
"""

import time
from collections import defaultdict

import numpy as np
import pyarrow as pa
from dagster import AssetCheckSpec, AssetExecutionContext, AssetKey, MaterializeResult, asset

from marquee.assets.common import (
    HEAVY_RETRY,
    bad_input_fails_fast,
    check_result,
    current_model_bytes,
    preview,
    table_data_version,
    title_step,
)
from marquee.assets.expression_model import MODEL_PREFIX
from marquee.assets.faces import load_keyframe
from marquee.assets.partitions import titles_partitions
from marquee.ops.errors import ModelUnavailableError
from marquee.ops.expressions.emotion import FER_STORE_DIR, EmotionClassifier
from marquee.ops.expressions.model import RuleModel, TrainedModel, feature_matrix, load_model
from marquee.ops.expressions.signals import FaceMeshLandmarker, measure_faces
from marquee.ops.faces.tables import embeddings_from_table, faces_from_table
from marquee.ops.faces.types import FaceRecord
from marquee.ops.prefetch import prefetched
from marquee.resources.lake import LakeResource

SCORES_CHECK = "every_face_scored"
SIGNALS = (
    "landmarks_found",
    "eye_open_left",
    "eye_open_right",
    "eye_open",
    "mouth_open",
    "yaw",
    "pitch",
    "roll",
    "sharpness",
    "size",
    "brightness",
    "clipped",
    "smile",
    "negative",
)


def load_current_model(lake: LakeResource):
    """The stored current expression model, or the default rule when none was materialised yet."""
    data = current_model_bytes(lake.store(), MODEL_PREFIX)
    return RuleModel() if data is None else load_model(data)


@asset(
    deps=["faces", "keyframes", "face_embeddings", AssetKey("expression_model")],
    partitions_def=titles_partitions,
    code_version=f"expression_scores-3|facemesh@{FaceMeshLandmarker.version}|{EmotionClassifier.name}",
    retry_policy=HEAVY_RETRY,
    group_name="thumbnails",
    kinds={"mediapipe", "duckdb"},
    check_specs=[
        AssetCheckSpec(
            SCORES_CHECK,
            asset="expression_scores",
            description="Every face has a row with a score in [0, 1].",
        )
    ],
    description="Per face: eye openness (EAR per eye), mouth openness, head pose, sharpness, size, "
    "exposure, smile and negative expression (CNN), the expression factors and score "
    "(`expression_scores`); per keyframe: best and mean (`frame_expressions`).",
)
@title_step
def expression_scores(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    store, wh = lake.store(), lake.warehouse()
    faces = faces_from_table(wh.read_table("faces", title_id))
    keyframes = wh.read_table("keyframes", title_id).sort_by("frame").to_pylist()
    model = load_current_model(lake)
    with bad_input_fails_fast():
        landmarker = FaceMeshLandmarker()
    emotions = _emotion_classifier(context, lake)
    by_frame = defaultdict(list)
    for f in faces:
        by_frame[f.frame].append(f)
    wanted = [k for k in keyframes if k["frame"] in by_frame]
    rows = []
    started = time.perf_counter()
    try:
        for kf in prefetched(wanted, lambda row: load_keyframe(store, row)):
            frame_faces = by_frame[kf.frame]
            measured = measure_faces(kf.image, [f.box for f in frame_faces], landmarker, emotions)
            for f, signals in zip(frame_faces, measured, strict=True):
                rows.append(
                    {"face_id": f.face_id, "frame": f.frame, "time_s": f.time_s, "shot_id": f.shot_id}
                    | signals.as_dict()
                )
    finally:
        landmarker.close()
    seconds = time.perf_counter() - started
    x = feature_matrix(rows)
    embeddings, note = _model_embeddings(model, lake, title_id, faces, [r["face_id"] for r in rows])
    if note:
        context.log.warning(f"{title_id}: {note}")
    parts = model.parts(x) if rows else {}
    score = model.score(x, embeddings) if rows else np.zeros(0)
    for i, r in enumerate(rows):
        for name, values in parts.items():
            r[name] = round(float(values[i]), 4)
        r["expression"] = round(float(score[i]), 4)
        r["model"] = model.version
        for k in SIGNALS:
            if isinstance(r[k], float):
                r[k] = None if np.isnan(r[k]) else round(r[k], 4)
    table = pa.Table.from_pylist(rows, schema=SCORES_SCHEMA)
    frames = _frame_rows(rows, keyframes)
    frame_table = pa.Table.from_pylist(frames, schema=FRAMES_SCHEMA)
    wh.write_tables(title_id, {"expression_scores": table, "frame_expressions": frame_table})
    found = sum(bool(r["landmarks_found"]) for r in rows)
    context.log.info(f"{title_id}: scored {len(rows)} faces ({found} with landmarks) in {seconds:.1f}s")
    scored = {r["face_id"] for r in rows if 0.0 <= r["expression"] <= 1.0}
    problems = [f"face {f.face_id}: no expression score" for f in faces if f.face_id not in scored]
    yield MaterializeResult(
        metadata={
            "n_faces": len(rows),
            "landmarks_found": found,
            "model_version": model.version,
            "expression_cnn": emotions.version if emotions is not None else None,
            "model_reads_embedding": isinstance(model, TrainedModel) and model.uses_embedding,
            **({"embedding_note": note} if note else {}),
            "seconds": round(seconds, 3),
            "ms_per_face": round(1000 * seconds / len(rows), 1) if rows else None,
            "mean_expression": round(float(score.mean()), 4) if rows else None,
            "preview": preview(
                table.select(["face_id", "frame", "eye_open", "mouth_open", "sharpness", "expression"])
            ),
        },
        data_version=table_data_version(table),
    )
    yield check_result("expression_scores", SCORES_CHECK, problems)


def _emotion_classifier(context: AssetExecutionContext, lake: LakeResource) -> EmotionClassifier | None:
    """The expression CNN (a file in the model store wins over the installed wheel's), or None with a
    warning when neither has the weights: smiles are an extra signal, not a reason to fail the title."""
    models = lake.models()
    try:
        return EmotionClassifier(model_store=models.local_root(FER_STORE_DIR), store_url=models.url())
    except ModelUnavailableError as exc:
        context.log.warning(f"expression_scores without smile/negative: {exc}")
        return None


def _model_embeddings(
    model, lake: LakeResource, title_id: str, faces: list[FaceRecord], face_ids: list[int]
) -> tuple[np.ndarray | None, str]:
    """Per scored face, the descriptor the model reads (NaN when none), and a note when the title's
    descriptors cannot be used (another embedder than the model was trained with)."""
    if not (isinstance(model, TrainedModel) and model.uses_embedding):
        return None, ""
    table = lake.warehouse().read_table("face_embeddings", title_id)
    made_by = set(table.column("embedder").drop_null().to_pylist()) if table.num_rows else set()
    out = np.full((len(face_ids), model.embedding_dim), np.nan)
    if made_by and made_by != {model.embedder}:
        return out, (
            f"face_embeddings made by {sorted(made_by)}, the expression model by {model.embedder}: "
            "scored without the embedding; re-train expression_model with this embedder"
        )
    vectors = embeddings_from_table(table)
    tracks: dict[int, list[np.ndarray]] = defaultdict(list)
    track_of = {f.face_id: f.track_id for f in faces}
    for face_id, v in vectors.items():
        tracks[track_of.get(face_id, -1)].append(v)
    for i, face_id in enumerate(face_ids):
        v = vectors.get(face_id)
        if v is None and tracks.get(track_of.get(face_id, -2)):
            v = np.mean(tracks[track_of[face_id]], axis=0)
        if v is not None and len(v) == model.embedding_dim:
            out[i] = v
    return out, ""


def _frame_rows(rows: list[dict], keyframes: list[dict]) -> list[dict]:
    per: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        per[r["frame"]].append(r["expression"])
    out = []
    for k in keyframes:
        values = per.get(k["frame"], [])
        out.append(
            {
                "frame": k["frame"],
                "time_s": k["time_s"],
                "shot_id": k["shot_id"],
                "n_faces": len(values),
                "best_expression": round(max(values), 4) if values else None,
                "mean_expression": round(sum(values) / len(values), 4) if values else None,
                "sharpness": k["sharpness"],
                "brightness": k["brightness"],
            }
        )
    return out


SCORES_SCHEMA = pa.schema(
    [
        ("face_id", pa.int64()),
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("shot_id", pa.int32()),
        ("landmarks_found", pa.bool_()),
        ("eye_open_left", pa.float32()),
        ("eye_open_right", pa.float32()),
        ("eye_open", pa.float32()),
        ("mouth_open", pa.float32()),
        ("yaw", pa.float32()),
        ("pitch", pa.float32()),
        ("roll", pa.float32()),
        ("sharpness", pa.float32()),
        ("size", pa.float32()),  # face box height, keyframe pixels
        ("brightness", pa.float32()),
        ("clipped", pa.float32()),
        ("smile", pa.float32()),  # expression CNN: P(happy); null without its weights
        ("negative", pa.float32()),  # P(angry + disgust + fear + sad)
        ("eyes_open", pa.float32()),  # rule factors in [0, 1]
        ("mouth_closed", pa.float32()),
        ("sharp", pa.float32()),
        ("frontal", pa.float32()),
        ("expression", pa.float32()),  # the model's score
        ("model", pa.string()),
    ]
)

FRAMES_SCHEMA = pa.schema(
    [
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("shot_id", pa.int32()),
        ("n_faces", pa.int32()),
        ("best_expression", pa.float32()),
        ("mean_expression", pa.float32()),
        ("sharpness", pa.float32()),
        ("brightness", pa.float32()),
    ]
)
