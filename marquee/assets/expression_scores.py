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
from dagster import AssetCheckSpec, AssetExecutionContext, MaterializeResult

from marquee.assets.common import (
    Reads,
    TitleStep,
    bad_input_fails_fast,
    check_result,
    current_model_bytes,
    current_step,
    load_keyframe,
    preview,
    step_progress,
    table_data_version,
    title_asset,
)
from marquee.ops.errors import ModelUnavailableError
from marquee.ops.expressions.emotion import FER_STORE_DIR, EmotionClassifier
from marquee.ops.expressions.model import (
    RuleModel,
    TrainedModel,
    feature_matrix,
    load_model,
    model_embeddings,
)
from marquee.ops.expressions.signals import FaceMeshLandmarker, measure_faces
from marquee.ops.faces.tables import faces_from_table
from marquee.ops.faces.types import FaceRecord
from marquee.ops.prefetch import prefetched
from marquee.resources.lake import LakeResource
from marquee.resources.tables import MODELS, TABLES

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
    data = current_model_bytes(lake.store(), MODELS["expression"].prefix)
    return RuleModel() if data is None else load_model(data)


#: Faces on their keyframes; the descriptors when the trained model reads them; the current model.
READS = Reads("expression_scores", tables=("faces", "keyframes", "face_embeddings"), models=("expression",))


@title_asset(
    READS,
    code_version=f"expression_scores-3|facemesh@{FaceMeshLandmarker.version}|{EmotionClassifier.name}",
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
def expression_scores(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    store, step = lake.store(), current_step(context)
    faces = faces_from_table(step.read("faces"))
    keyframes = step.read("keyframes").sort_by("frame").to_pylist()
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
    progress = step_progress(context)("expressions", "keyframes")
    progress(0, len(wanted))
    try:
        for done, kf in enumerate(prefetched(wanted, lambda row: load_keyframe(store, row)), 1):
            frame_faces = by_frame[kf.frame]
            measured = measure_faces(kf.image, [f.box for f in frame_faces], landmarker, emotions)
            for f, signals in zip(frame_faces, measured, strict=True):
                rows.append(
                    {"face_id": f.face_id, "frame": f.frame, "time_s": f.time_s, "shot_id": f.shot_id}
                    | signals.as_dict()
                )
            progress(done, len(wanted))
    finally:
        landmarker.close()
    seconds = time.perf_counter() - started
    x = feature_matrix(rows)
    embeddings, note = _model_embeddings(model, step, faces, [r["face_id"] for r in rows])
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
    table = TABLES["expression_scores"].table(rows)
    frame_table = TABLES["frame_expressions"].table(_frame_rows(rows, keyframes))
    step.write({"expression_scores": table, "frame_expressions": frame_table})
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
    model, step: TitleStep, faces: list[FaceRecord], face_ids: list[int]
) -> tuple[np.ndarray | None, str]:
    """Per scored face, the descriptor the model reads (NaN when none), and a note when the title's
    descriptors cannot be used; None when the model reads no descriptor (nothing is read)."""
    if not (isinstance(model, TrainedModel) and model.uses_embedding):
        return None, ""
    return model_embeddings(model, step.read("face_embeddings"), faces, face_ids)


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
