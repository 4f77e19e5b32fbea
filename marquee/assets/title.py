"""``title``: probe the ingested video of a title and record what it is."""

import pyarrow as pa
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from marquee.assets.common import HEAVY_RETRY, bad_input_fails_fast, preview
from marquee.assets.partitions import titles_partitions
from marquee.ops.errors import VideoError
from marquee.ops.video import file_sha256, probe_video
from marquee.resources.lake import LakeResource

TITLE_CODE_VERSION = "title-1"


@asset(
    partitions_def=titles_partitions,
    code_version=TITLE_CODE_VERSION,
    retry_policy=HEAVY_RETRY,
    group_name="ingest",
    kinds={"pyav", "duckdb"},
    description="Probe the title's video (duration, frame rate incl. VFR, frame count, resolution, rotation, "
    "audio, content hash) into the `titles` table. Bad input fails this title only, naming file and reason.",
)
def title(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    title_id = context.partition_key
    registry = lake.titles()
    adopted = registry.adopt_pending(title_id)  # files dropped into incoming/ for this title
    if adopted is not None:
        context.log.info(f"{title_id}: adopted {adopted.source_name} from incoming/")
    with bad_input_fails_fast():
        manifest = registry.manifest(title_id)
        source_url = lake.store().url(manifest.source_key)
        if not lake.store().exists(manifest.source_key):
            raise VideoError(source_url, "file not found in object storage")
        with registry.local_file(manifest.source_key, lake.scratch()) as path:
            try:
                info = probe_video(path)
            except VideoError as exc:  # name the stored file, not a scratch copy
                raise VideoError(source_url, exc.reason) from exc
            sha = file_sha256(path)
    row = info.as_dict() | {
        "path": source_url,
        "source_name": manifest.source_name,
        "trailer_key": manifest.trailer_key,
        "content_sha256": sha,
        "manifest_version": manifest.version,
        "ingested_at": manifest.ingested_at,
    }
    table = pa.Table.from_pylist([row])
    lake.warehouse().write_table("titles", title_id, table)
    context.log.info(
        f"{title_id}: {info.frame_count} frames, {info.duration_s:.1f}s at {info.fps:.3f} fps, "
        f"{info.width}x{info.height}{' VFR' if info.variable_frame_rate else ''}"
    )
    return MaterializeResult(
        metadata={
            "source": MetadataValue.url(source_url)
            if "://" in source_url
            else MetadataValue.path(source_url),
            "duration_s": info.duration_s,
            "fps": info.fps,
            "frame_count": info.frame_count,
            "resolution": f"{info.width}x{info.height}",
            "variable_frame_rate": info.variable_frame_rate,
            "has_audio": info.has_audio,
            "content_sha256": sha,
            "preview": preview(table),
        },
        # Same bytes -> same data version: re-ingesting an identical file does not make shots stale.
        data_version=DataVersion(sha[:24]),
    )
