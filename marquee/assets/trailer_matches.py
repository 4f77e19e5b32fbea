"""``trailer_matches``: every trailer shot traced back to the film shot it was cut from, and the soft
labels per film shot that the trailerness model learns from (``marquee.ops.trailers``).

Only titles with a trailer pay for this: the film is decoded once more, for fingerprints, and the
trailer once. (Riding in the shots pass would save that decode but charge every title, with or
without a trailer, for fingerprints that only trailer titles use.) Titles without a trailer write
empty tables, so a backfill over every title simply skips them.
"""

import time

import pyarrow as pa
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from marquee.assets.common import (
    HEAVY_RETRY,
    NO_TRAILER,
    bad_input_fails_fast,
    check_result,
    preview,
    table_data_version,
    title_step,
)
from marquee.assets.partitions import titles_partitions
from marquee.ops.errors import VideoError
from marquee.ops.shots.base import Shot
from marquee.ops.trailers.decode import fingerprint_film_timed, trailer_luma_timed
from marquee.ops.trailers.labels import DEFAULT_TEMPERATURE, soft_labels
from marquee.ops.trailers.match import THRESHOLD, TrailerMatchResult, match_shots
from marquee.resources.lake import LakeResource

MATCHES_CHECK = "every_trailer_shot_has_a_row"

MATCHES_SCHEMA = pa.schema(
    [
        ("trailer_shot_id", pa.int32()),
        ("trailer_start_s", pa.float64()),
        ("trailer_end_s", pa.float64()),
        ("trailer_start_frame", pa.int64()),
        ("trailer_end_frame", pa.int64()),
        ("film_shot_id", pa.int32()),  # null: unmatched (title card, shot not in the film)
        ("film_start_s", pa.float64()),
        ("film_end_s", pa.float64()),
        ("film_start_frame", pa.int64()),
        ("film_end_frame", pa.int64()),
        ("similarity", pa.float32()),
        ("speed", pa.float32()),  # film frames per trailer frame
        ("matched", pa.bool_()),
        # 1 for the second half of a detected trailer shot that really held two shots (a missed cut)
        ("part", pa.int8()),
    ]
)

LABELS_SCHEMA = pa.schema(
    [
        ("shot_id", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("soft_label", pa.float32()),  # in [0, 1]: the largest share any trailer shot gives this shot
        ("in_trailer", pa.bool_()),  # some trailer shot's best match lies in it
    ]
)


def _shots(rows: list[dict]) -> list[Shot]:
    return [
        Shot(int(r["shot_id"]), int(r["start_frame"]), int(r["end_frame"]), r["transition"], r["confidence"])
        for r in sorted(rows, key=lambda r: r["shot_id"])
    ]


@asset(
    deps=["trailer", "shots", "title"],
    partitions_def=titles_partitions,
    code_version=f"trailer_matches-1|threshold={THRESHOLD}|temperature={DEFAULT_TEMPERATURE}",
    retry_policy=HEAVY_RETRY,
    group_name="trailers",
    kinds={"pyav", "numpy", "duckdb"},
    check_specs=[
        AssetCheckSpec(
            MATCHES_CHECK,
            asset="trailer_matches",
            description="Every trailer shot has a row; matched rows point at a film shot and labels are "
            "in [0, 1].",
        )
    ],
    description="Per trailer shot (two rows, `part` 0 and 1, when a detected shot held two): the film "
    "shot it comes from (or none), similarity, film times and speed (`trailer_matches`); per film "
    "shot: its soft label (`shot_labels`). Empty without a trailer.",
)
@title_step
def trailer_matches(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    wh, registry = lake.warehouse(), lake.titles()
    trailer_info = wh.read_table("trailers", title_id).to_pylist()[0]
    if not trailer_info["has_trailer"]:
        wh.write_tables(
            title_id,
            {"trailer_matches": MATCHES_SCHEMA.empty_table(), "shot_labels": LABELS_SCHEMA.empty_table()},
        )
        yield MaterializeResult(metadata={"has_trailer": False}, data_version=DataVersion(NO_TRAILER))
        yield check_result("trailer_matches", MATCHES_CHECK, [])
        return
    info = wh.read_table("titles", title_id).to_pylist()[0]
    film_rows = wh.read_table("shots", title_id).to_pylist()
    film_shots = _shots(film_rows)
    trailer_shots = _shots(wh.read_table("trailer_shots", title_id).to_pylist())
    manifest = registry.manifest(title_id)
    started = time.perf_counter()
    with bad_input_fails_fast():
        with registry.local_file(manifest.source_key, lake.scratch()) as film_path:
            try:
                aspect = float(info["width"]) / max(float(info["height"]), 1.0)
                film_fp, film_times = fingerprint_film_timed(
                    film_path, aspect, expected_frames=int(info["frame_count"])
                )
            except VideoError as exc:
                raise VideoError(info["path"], exc.reason) from exc
        decoded_film = time.perf_counter()
        with registry.local_file(manifest.trailer_key, lake.scratch()) as trailer_path:
            try:
                luma, trailer_times = trailer_luma_timed(
                    trailer_path, expected_frames=int(trailer_info["frame_count"])
                )
            except VideoError as exc:
                raise VideoError(trailer_info["path"], exc.reason) from exc
    decoded = time.perf_counter()
    trailer_aspect = float(trailer_info["width"]) / max(float(trailer_info["height"]), 1.0)
    matches = match_shots(luma, trailer_shots, trailer_aspect, film_fp, film_shots)
    labels = soft_labels(matches, len(film_shots))
    matched_seconds = time.perf_counter() - decoded
    result = TrailerMatchResult(
        film=info["path"],
        trailer=trailer_info["path"],
        film_shots=film_shots,
        trailer_shots=trailer_shots,
        film_times=film_times,
        trailer_times=trailer_times,
        matches=matches,
        soft_labels=labels,
    )
    rows = result.rows()
    table = pa.Table.from_pylist(rows, schema=MATCHES_SCHEMA)
    used = {m.film_shot_id for m in matches if m.matched and m.film_shot_id is not None}
    label_rows = [
        {
            "shot_id": r["shot_id"],
            "start_s": r["start_s"],
            "end_s": r["end_s"],
            "soft_label": round(float(labels[r["shot_id"]]), 4),
            "in_trailer": r["shot_id"] in used,
        }
        for r in sorted(film_rows, key=lambda r: r["shot_id"])
    ]
    label_table = pa.Table.from_pylist(label_rows, schema=LABELS_SCHEMA)
    wh.write_tables(title_id, {"trailer_matches": table, "shot_labels": label_table})
    n_matched = sum(r["matched"] for r in rows)
    context.log.info(
        f"{title_id}: matched {n_matched} of {len(rows)} trailer shots to {len(used)} film shots"
    )
    problems = _problems(rows, label_rows, trailer_shots, len(film_shots))
    yield MaterializeResult(
        metadata={
            "has_trailer": True,
            "trailer_shots": len(rows),
            "matched": n_matched,
            "film_shots_in_trailer": len(used),
            "mean_similarity_matched": round(
                sum(r["similarity"] for r in rows if r["matched"]) / max(n_matched, 1), 4
            ),
            "film_fingerprint_s": round(decoded_film - started, 3),
            "trailer_decode_s": round(decoded - decoded_film, 3),
            "matching_s": round(matched_seconds, 3),
            "preview": preview(table),
            "labels": MetadataValue.json(
                {
                    "positive (>= 0.5)": sum(r["soft_label"] >= 0.5 for r in label_rows),
                    "shots": len(label_rows),
                }
            ),
        },
        data_version=table_data_version(label_table),
    )
    yield check_result("trailer_matches", MATCHES_CHECK, problems)


def _problems(rows: list[dict], labels: list[dict], trailer_shots: list[Shot], n_film: int) -> list[str]:
    problems = []
    have = {r["trailer_shot_id"] for r in rows}
    problems += [f"trailer shot {s.shot_id}: no row" for s in trailer_shots if s.shot_id not in have]
    for r in rows:
        if r["matched"] and not (r["film_shot_id"] is not None and 0 <= r["film_shot_id"] < n_film):
            problems.append(f"trailer shot {r['trailer_shot_id']}: matched to no valid film shot")
    problems += [
        f"film shot {r['shot_id']}: label {r['soft_label']}" for r in labels if not 0 <= r["soft_label"] <= 1
    ]
    return problems
