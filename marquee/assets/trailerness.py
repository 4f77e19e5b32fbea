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

import pyarrow as pa
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from marquee.assets.common import (
    HEAVY_RETRY,
    bad_input_fails_fast,
    check_result,
    current_model_bytes,
    media_version,
    preview,
    table_data_version,
    title_step,
)
from marquee.assets.partitions import titles_partitions
from marquee.assets.shot_features import features_from_table
from marquee.assets.trailerness_model import MODEL_PREFIX
from marquee.ops.clips import ClipSpan, write_clip
from marquee.ops.errors import VideoError
from marquee.ops.trailers.model import TrailernessModel
from marquee.ops.trailers.moments import rank_moments
from marquee.resources.lake import LakeResource

MOMENTS_CHECK = "moments_point_at_existing_clips"
TOP_MOMENTS = 10

TRAILERNESS_SCHEMA = pa.schema(
    [
        ("shot_id", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("score", pa.float32()),
        ("rank", pa.int32()),  # 1 = most trailer-worthy shot of the title
        ("model", pa.string()),
    ]
)

MOMENTS_SCHEMA = pa.schema(
    [
        ("rank", pa.int32()),
        ("shot_ids", pa.list_(pa.int32())),
        ("start_frame", pa.int64()),
        ("end_frame", pa.int64()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("score", pa.float32()),  # the best shot's trailerness
        ("mean_score", pa.float32()),
        ("in_trailer", pa.bool_()),  # null: the title has no trailer
        ("clip_key", pa.string()),  # preview clip (MP4) in object storage
        ("poster_key", pa.string()),  # a keyframe of the moment's best shot
        ("model", pa.string()),
    ]
)


def load_trailerness_model(lake: LakeResource) -> TrailernessModel:
    """The stored current model, or the heuristic default when none was materialised yet."""
    data = current_model_bytes(lake.store(), MODEL_PREFIX)
    return TrailernessModel.default() if data is None else TrailernessModel.from_bytes(data)


@asset(
    deps=["shot_features", AssetKey("trailerness_model")],
    partitions_def=titles_partitions,
    code_version="trailerness-1",
    retry_policy=HEAVY_RETRY,
    group_name="trailers",
    kinds={"scikitlearn", "duckdb"},
    description="Per shot: trailer-worthiness in [0, 1] from the current trailerness model, and its "
    "rank in the title.",
)
@title_step
def trailerness(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    title_id = context.partition_key
    wh = lake.warehouse()
    model = load_trailerness_model(lake)
    ids, x, encoder = features_from_table(wh.read_table("shot_features", title_id))
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
    shots = {r["shot_id"]: r for r in wh.read_table("shots", title_id).to_pylist()}
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
    table = pa.Table.from_pylist(rows, schema=TRAILERNESS_SCHEMA)
    wh.write_table("trailerness", title_id, table)
    return MaterializeResult(
        metadata={
            "n_shots": len(rows),
            "model_version": model.version,
            "model_kind": model.kind,
            "preview": preview(table.sort_by("rank")),
        },
        data_version=table_data_version(table),
    )


@asset(
    deps=["trailerness", "shots", "keyframes", "trailer_matches", "title"],
    partitions_def=titles_partitions,
    code_version=f"trailer_moments-1|top={TOP_MOMENTS}",
    retry_policy=HEAVY_RETRY,
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
@title_step
def trailer_moments(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    store, wh, registry = lake.store(), lake.warehouse(), lake.titles()
    info = wh.read_table("titles", title_id).to_pylist()[0]
    scored = {r["shot_id"]: r for r in wh.read_table("trailerness", title_id).to_pylist()}
    shots = wh.read_table("shots", title_id).sort_by("shot_id").to_pylist()
    scores = [scored[s["shot_id"]]["score"] if s["shot_id"] in scored else float("nan") for s in shots]
    model = next(iter(scored.values()))["model"] if scored else ""
    moments = rank_moments(scores, shots, top_k=TOP_MOMENTS)
    labels = (
        wh.read_table("shot_labels", title_id).to_pylist() if wh.has_table("shot_labels", title_id) else []
    )
    in_trailer = {r["shot_id"] for r in labels if r["in_trailer"]}
    posters: dict[int, str] = {}
    for k in wh.read_table("keyframes", title_id).sort_by("rank_in_shot").to_pylist():
        posters.setdefault(int(k["shot_id"]), k["image_key"])
    media = media_version(context, "moments")
    started = time.perf_counter()
    rows = []
    manifest = registry.manifest(title_id)
    with bad_input_fails_fast(), registry.local_file(manifest.source_key, lake.scratch()) as source:
        for m in moments:
            best = max(m.shot_ids, key=lambda s: scored.get(s, {}).get("score", 0.0))
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
                    "poster_key": posters.get(best),
                    "model": model,
                }
            )
    seconds = time.perf_counter() - started
    table = pa.Table.from_pylist(rows, schema=MOMENTS_SCHEMA)
    wh.write_table("trailer_moments", title_id, table)
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
