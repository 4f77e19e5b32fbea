"""``title``: probe the ingested video of a title and record what it is."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue

from marquee.assets.common import (
    Reads,
    bad_input_fails_fast,
    content_version,
    current_step,
    preview,
    title_asset,
)
from marquee.ops.errors import VideoError
from marquee.ops.video import file_sha256, probe_video
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES
from marquee.resources.titles import TitleRegistry

TITLE_CODE_VERSION = "title-1"
#: Run tag with the signature of the incoming/ group a sensor run was requested for.
INCOMING_SIGNATURE_TAG = "marquee/incoming_signature"


#: The title's manifest and source file only: no table.
READS = Reads("title")


@title_asset(
    READS,
    code_version=TITLE_CODE_VERSION,
    group_name="ingest",
    kinds={"pyav", "duckdb"},
    description="Probe the title's video (duration, frame rate incl. VFR, frame count, resolution, rotation, "
    "audio, content hash) into the `titles` table. Bad input fails this title only, naming file and reason.",
)
def title(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    title_id = context.partition_key
    registry = lake.titles()
    with bad_input_fails_fast():
        _adopt_incoming(context, lake, registry, title_id)
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
    table = TABLES["titles"].table([row])
    current_step(context).write({"titles": table})
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
        data_version=DataVersion(content_version(sha)),
    )


def _adopt_incoming(
    context: AssetExecutionContext, lake: LakeResource, registry: TitleRegistry, title_id: str
) -> None:
    """Move the files waiting in ``incoming/`` into the title, but only when this run is for them.

    A sensor run names the group it was requested for (its signature); a title never ingested takes
    the group whatever started the run. Any other run (``marquee run B --title X``, a re-run from the
    UI) processes the title's stored files and leaves a waiting group to the sensor's own run, saying
    so: a run must never process a different file from the one its user gave.
    """
    waiting = registry.pending(title_id)
    if waiting is None:
        return
    requested = context.run.tags.get(INCOMING_SIGNATURE_TAG)
    if requested != waiting.signature and registry.exists(title_id):
        context.log.warning(
            f"{title_id}: {lake.store().url(waiting.video_key)} waits in incoming/ for this title and was "
            "left alone; this run processes the title's stored source (the sensor's run will take it)"
        )
        return
    done = registry.adopt(waiting, lake.scratch())
    context.log.info(
        f"{title_id}: {done.status} from incoming/ ({done.manifest.source_name}) {done.stale}".strip()
    )
