"""``trailerness`` and ``trailer_moments`` (per title): a score per shot, then ranked moments with
preview clips, for every title, trailer or not.

``trailerness`` applies the current ``trailerness_model`` (the heuristic until one is trained) to
the title's ``shot_features``. ``trailer_moments`` grows the best shots into moments (a shot or a few
adjacent ones, spread over the film: ``marquee.ops.trailers.moments``), cuts a short preview clip of
each from the source (only those spans are decoded) and points at a poster keyframe; for a title with
a trailer, each moment says whether the trailer used it.
"""

import itertools
import time

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from marquee.assets.common import (
    Reads,
    bad_input_fails_fast,
    check_result,
    current_model_bytes,
    current_step,
    media_version,
    preview,
    table_data_version,
    title_asset,
)
from marquee.ops.clips import ClipSpan, write_clip
from marquee.ops.errors import VideoError
from marquee.ops.trailers.features import features_from_table
from marquee.ops.trailers.model import TrailernessModel
from marquee.ops.trailers.moments import rank_moments
from marquee.resources.lake import LakeResource
from marquee.resources.tables import MODELS, TABLES

MOMENTS_CHECK = "moments_point_at_existing_clips"
TOP_MOMENTS = 10

#: The shots' features and spans, and the current trailerness model.
TRAILERNESS_READS = Reads("trailerness", tables=("shot_features", "shots"), models=("trailerness",))
#: The scores with the shots they rank, keyframes for posters, the trailer's labels (titles with one),
#: and the title's stored file name for error messages.
MOMENTS_READS = Reads(
    "trailer_moments", tables=("trailerness", "shots", "keyframes", "shot_labels", "titles")
)


def load_trailerness_model(lake: LakeResource) -> TrailernessModel:
    """The stored current model, or the heuristic default when none was materialised yet."""
    data = current_model_bytes(lake.store(), MODELS["trailerness"].prefix)
    return TrailernessModel.default() if data is None else TrailernessModel.from_bytes(data)


@title_asset(
    TRAILERNESS_READS,
    code_version="trailerness-1",
    group_name="trailers",
    kinds={"scikitlearn", "duckdb"},
    description="Per shot: trailer-worthiness in [0, 1] from the current trailerness model, and its "
    "rank in the title.",
)
def trailerness(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    title_id = context.partition_key
    step = current_step(context)
    model = load_trailerness_model(lake)
    ids, x, encoder = features_from_table(step.read("shot_features"))
    if model.kind == "trained" and model.encoder and encoder and model.encoder != encoder:
        raise Failure(
            description=f"{title_id}: shot_features made by {encoder}, the trailerness model "
            f"{model.version} by {model.encoder}; re-train trailerness_model (or re-make shot_features)",
            allow_retries=False,
        )
    try:
        scores = model.score(x)
    except ValueError as exc:
        raise Failure(description=f"{title_id}: {exc}", allow_retries=False) from exc
    shots = {r["shot_id"]: r for r in step.read("shots").to_pylist()}
    order = sorted(range(len(ids)), key=lambda i: -float(scores[i]))
    rank = {ids[i]: n + 1 for n, i in enumerate(order)}
    rows = [
        {
            "shot_id": sid,
            "start_s": shots[sid]["start_s"],
            "end_s": shots[sid]["end_s"],
            "score": round(float(scores[i]), 5),
            "rank": rank[sid],
            "model": model.version,
        }
        for i, sid in enumerate(ids)
    ]
    table = TABLES["trailerness"].table(rows)
    step.write({"trailerness": table})
    return MaterializeResult(
        metadata={
            "n_shots": len(rows),
            "model_version": model.version,
            "model_kind": model.kind,
            "preview": preview(table.sort_by("rank")),
        },
        data_version=table_data_version(table),
    )


@title_asset(
    MOMENTS_READS,
    code_version=f"trailer_moments-2|top={TOP_MOMENTS}",
    group_name="trailers",
    kinds={"pyav", "duckdb"},
    check_specs=[
        AssetCheckSpec(
            MOMENTS_CHECK,
            asset="trailer_moments",
            description="Every moment has a preview clip and a poster in object storage; moments "
            "do not overlap.",
        )
    ],
    description="Ranked trailer moments (a shot or a few adjacent shots) with times, score, a "
    "preview clip and a poster frame; for titles with a trailer, whether it used them.",
)
def trailer_moments(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    store, step, registry = lake.store(), current_step(context), lake.titles()
    info = step.read("titles").to_pylist()[0]
    scored = {r["shot_id"]: r for r in step.read("trailerness").to_pylist()}
    shots = step.read("shots").sort_by("shot_id").to_pylist()
    scores = [scored[s["shot_id"]]["score"] if s["shot_id"] in scored else float("nan") for s in shots]
    model = next(iter(scored.values()))["model"] if scored else ""
    moments = rank_moments(scores, shots, top_k=TOP_MOMENTS)
    labels = step.read("shot_labels").to_pylist() if step.has("shot_labels") else []
    in_trailer = {r["shot_id"] for r in labels if r["in_trailer"]}
    posters: dict[int, str] = {}
    for k in step.read("keyframes").sort_by("rank_in_shot").to_pylist():
        posters.setdefault(int(k["shot_id"]), k["image_key"])
    media = media_version(context, "moments")
    started = time.perf_counter()
    rows = []
    manifest = registry.manifest(title_id)
    with bad_input_fails_fast(), registry.local_file(manifest.source_key, lake.scratch()) as source:
        for m in moments:
            # the best-scored shot's keyframe; a shot too short to have one lends its place to the next
            by_score = sorted(m.shot_ids, key=lambda s: -scored.get(s, {}).get("score", 0.0))
            poster = next((posters[s] for s in by_score if s in posters), None)
            key = media.key(f"{m.rank:02d}.mp4")
            local = lake.scratch() / f"{title_id}-{media.version}-{m.rank:02d}.mp4"
            try:
                write_clip(source, ClipSpan(m.start_s, m.end_s), local)
            except VideoError as exc:
                raise VideoError(info["path"], exc.reason) from exc
            try:
                store.put_file(local, key)
            finally:
                local.unlink(missing_ok=True)
            rows.append(
                m.as_dict()
                | {
                    "in_trailer": bool(set(m.shot_ids) & in_trailer) if labels else None,
                    "clip_key": key,
                    "poster_key": poster,
                    "model": model,
                }
            )
    seconds = time.perf_counter() - started
    table = TABLES["trailer_moments"].table(rows)
    step.write({"trailer_moments": table})
    problems = [f"moment {r['rank']}: no clip" for r in rows if not store.exists(r["clip_key"])]
    problems += [f"moment {r['rank']}: no poster" for r in rows if not r["poster_key"]]
    spans = sorted((r["start_frame"], r["end_frame"]) for r in rows)
    problems += [f"moments overlap at frame {b[0]}" for a, b in itertools.pairwise(spans) if b[0] <= a[1]]
    used = [r["in_trailer"] for r in rows if r["in_trailer"] is not None]
    yield MaterializeResult(
        metadata={
            "n_moments": len(rows),
            "model_version": model,
            "clips_s": round(seconds, 3),
            "clips": MetadataValue.path(store.url(media.prefix)),
            **({"in_trailer_top10": sum(used)} if used else {}),
            "preview": preview(table.drop_columns(["shot_ids"])),
        },
        data_version=table_data_version(table.drop_columns(["clip_key"])),
    )
    yield check_result("trailer_moments", MOMENTS_CHECK, problems)
