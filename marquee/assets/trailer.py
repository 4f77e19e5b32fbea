"""``trailer``: the title's trailer, when it came with one: probed, hashed, and cut into its own shots.

A title may be ingested with its trailer (``marquee ingest FILM --trailer TRAILER``, or
``<name>.trailer.<ext>`` beside the film in ``incoming/``). Titles without one materialise an empty
``trailer_shots`` table and a ``trailers`` row saying so, so the graph below runs the same for every
title. The data version is the trailer file's hash (plus the shot detector): replacing a trailer marks
``trailer_matches`` and what learns from it stale, while the film's own stages stay fresh.
"""

from dagster import AssetExecutionContext, AssetsDefinition, DataVersion, MaterializeResult

from marquee.assets.common import (
    MODEL_POOL,
    Reads,
    bad_input_fails_fast,
    current_step,
    preview,
    title_asset,
    trailer_data_version,
)
from marquee.ops.errors import VideoError
from marquee.ops.shots.registry import make_detector
from marquee.ops.shots.scan import scan_video
from marquee.ops.video import file_sha256, probe_video
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES

#: The trailer comes from the title's manifest, which the `title` asset adopts (from ``incoming/``)
#: before anything reads it: a dependency on `title` that no table read expresses.
READS = Reads("trailer", after=("title",))


def build_trailer_asset(
    detector_name: str = "hybrid", detector_params: dict | None = None
) -> AssetsDefinition:
    """The ``trailer`` asset, cutting trailers into shots with the same detector as the films."""
    params = dict(detector_params or {})
    identity = make_detector(detector_name, **params).identity

    @title_asset(
        READS,
        pool=MODEL_POOL,
        code_version=f"trailer-1|{identity}",
        group_name="trailers",
        kinds={"pyav", "duckdb"},
        description="The title's trailer, if it has one: probe and hash (`trailers`) and its own shots "
        "(`trailer_shots`). Empty for titles without a trailer.",
    )
    def trailer(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        title_id = context.partition_key
        registry, step = lake.titles(), current_step(context)
        manifest = registry.manifest(title_id)
        if manifest.trailer_key is None:
            row = {"has_trailer": False, "n_shots": 0, "detector": identity}
            step.write({"trailers": [row], "trailer_shots": []})
            context.log.info(f"{title_id}: no trailer")
            return MaterializeResult(
                metadata={"has_trailer": False},
                data_version=DataVersion(trailer_data_version(None, identity)),
            )
        url = lake.store().url(manifest.trailer_key)
        with bad_input_fails_fast():
            if not lake.store().exists(manifest.trailer_key):
                raise VideoError(url, "trailer file not found in object storage")
            with registry.local_file(manifest.trailer_key, lake.scratch()) as path:
                try:
                    info = probe_video(path)
                    sha = file_sha256(path)
                    scan = scan_video(
                        path,
                        detector=make_detector(detector_name, **params),
                        expected_frames=info.frame_count,
                    )
                except VideoError as exc:  # name the stored file, not a scratch copy
                    raise VideoError(url, exc.reason) from exc
        shots = scan.shot_rows()
        row = {
            "has_trailer": True,
            "path": url,
            "source_name": manifest.trailer_name,
            "duration_s": info.duration_s,
            "fps": info.fps,
            "frame_count": scan.frame_count,
            "width": info.width,
            "height": info.height,
            "content_sha256": sha,
            "n_shots": len(shots),
            "detector": identity,
        }
        shots_table = TABLES["trailer_shots"].table(shots)
        step.write({"trailers": [row], "trailer_shots": shots_table})
        context.log.info(f"{title_id}: trailer {info.duration_s:.1f}s, {len(shots)} shots")
        return MaterializeResult(
            metadata={
                "has_trailer": True,
                "trailer": url,
                "duration_s": info.duration_s,
                "n_shots": len(shots),
                "decode_pass_s": round(scan.seconds, 3),
                "preview": preview(shots_table),
            },
            data_version=DataVersion(trailer_data_version(sha, identity)),
        )

    return trailer
