"""``trailer_matches``: every trailer shot traced back to the film shot it was cut from, and the soft
labels per film shot that the trailerness model learns from (``marquee.ops.trailers``).

Only titles with a trailer pay for this. The film's fingerprints come from the shots pass, which makes
them when the title has a trailer at that time (``film_fingerprints``: an .npz in object storage), so
the film is decoded once in all; the trailer is decoded once here. A trailer added after the shots ran
(or fingerprints of another fingerprinter version) costs one more decode of the film, here. Titles
without a trailer write empty tables, so a backfill over every title simply skips them.
"""

import time
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
)

from marquee.assets.common import (
    NO_TRAILER,
    Reads,
    TitleStep,
    bad_input_fails_fast,
    check_result,
    current_step,
    preview,
    step_progress,
    table_data_version,
    title_asset,
)
from marquee.ops.errors import VideoError
from marquee.ops.timeline import Shot, shots_from_rows
from marquee.ops.trailers.decode import fingerprint_film_timed, trailer_luma_timed
from marquee.ops.trailers.fingerprint import FINGERPRINTER, FilmFingerprints
from marquee.ops.trailers.labels import DEFAULT_TEMPERATURE
from marquee.ops.trailers.match import THRESHOLD, match_trailer
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES

MATCHES_CHECK = "every_trailer_shot_has_a_row"

#: The trailer's row and shots, the film's shots and probe (its size frames the fingerprints).
READS = Reads("trailer_matches", tables=("trailers", "trailer_shots", "shots", "titles", "film_fingerprints"))


@title_asset(
    READS,
    code_version=f"trailer_matches-1|threshold={THRESHOLD}|temperature={DEFAULT_TEMPERATURE}",
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
def trailer_matches(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    step, registry = current_step(context), lake.titles()
    trailer_info = step.read("trailers").to_pylist()[0]
    if not trailer_info["has_trailer"]:
        step.write({"trailer_matches": [], "shot_labels": []})
        yield MaterializeResult(metadata={"has_trailer": False}, data_version=DataVersion(NO_TRAILER))
        yield check_result("trailer_matches", MATCHES_CHECK, [])
        return
    info = step.read("titles").to_pylist()[0]
    film_shots = shots_from_rows(step.read("shots").to_pylist())
    trailer_shots = shots_from_rows(step.read("trailer_shots").to_pylist())
    manifest = registry.manifest(title_id)
    started = time.perf_counter()
    stored = _stored_fingerprints(step, lake, int(info["frame_count"]))
    with bad_input_fails_fast():
        if stored is not None:
            film_fp, film_times = stored
        else:
            with registry.local_file(manifest.source_key, lake.scratch()) as film_path:
                try:
                    aspect = float(info["width"]) / max(float(info["height"]), 1.0)
                    film_fp, film_times = fingerprint_film_timed(
                        film_path,
                        aspect,
                        expected_frames=int(info["frame_count"]),
                        progress=step_progress(context)("fingerprinting", "frames"),
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
    result = match_trailer(
        film=info["path"],
        trailer=trailer_info["path"],
        film_fingerprints=film_fp,
        film_shots=film_shots,
        film_times=film_times,
        trailer_luma=luma,
        trailer_shots=trailer_shots,
        trailer_times=trailer_times,
        trailer_aspect=trailer_aspect,
    )
    matched_seconds = time.perf_counter() - decoded
    rows, label_rows = result.rows(), result.label_rows()
    table = TABLES["trailer_matches"].table(rows)
    label_table = TABLES["shot_labels"].table(label_rows)
    step.write({"trailer_matches": table, "shot_labels": label_table})
    used = {r["shot_id"] for r in label_rows if r["in_trailer"]}
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
            "film_fingerprints": "from the shots pass" if stored is not None else "decoded the film",
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


def _stored_fingerprints(
    step: TitleStep, lake: LakeResource, frames: int
) -> tuple[FilmFingerprints, Any] | None:
    """The fingerprints the shots pass stored for this film, if it made them with this fingerprinter
    and they cover every frame; else None (decode the film)."""
    if not step.has("film_fingerprints"):
        return None
    rows = step.read("film_fingerprints").to_pylist()
    if not rows or rows[0]["fingerprinter"] != FINGERPRINTER or rows[0]["frames"] != frames:
        return None
    return FilmFingerprints.from_bytes(lake.store().read_bytes(rows[0]["fingerprints_key"]))


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
