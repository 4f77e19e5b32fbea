"""``shots`` and ``keyframes``: one decode pass per title yields both.

They are one Dagster multi-asset so that materialising both decodes the film once; either can still
be materialised alone (``can_subset``): ``keyframes`` alone re-decodes with the stored shots (after a
keyframe-policy change), ``shots`` alone skips the keyframe spool. The detector's name, version and
parameters are part of the ``shots`` code version, so changing the detector marks ``shots`` and
everything downstream stale for every title.
"""

import hashlib
import json
import time
from collections import Counter

import pyarrow as pa
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from marquee.assets.common import (
    HEAVY_RETRY,
    MODEL_POOL,
    bad_input_fails_fast,
    check_result,
    media_version,
    preview,
    table_data_version,
    title_step,
)
from marquee.assets.partitions import titles_partitions
from marquee.ops.errors import VideoError
from marquee.ops.keyframes import KeyframePolicy, KeyframeSpool, select_keyframes
from marquee.ops.scan import ScanResult, scan_video
from marquee.ops.shots.base import ShotDetector, Transition
from marquee.ops.shots.registry import make_detector
from marquee.ops.shots.validate import keyframe_problems, tiling_problems
from marquee.resources.lake import LakeResource

SHOTS = AssetKey("shots")
KEYFRAMES = AssetKey("keyframes")
SHOTS_CHECK = "shots_tile_the_title"
KEYFRAMES_CHECK = "keyframes_exist"


def policy_version(policy: KeyframePolicy) -> str:
    return hashlib.sha256(json.dumps(policy.as_dict(), sort_keys=True).encode()).hexdigest()[:8]


def build_shots_assets(
    detector_name: str = "hybrid", detector_params: dict | None = None, policy: KeyframePolicy | None = None
) -> AssetsDefinition:
    """The shots+keyframes multi-asset for one detector configuration."""
    params = dict(detector_params or {})
    policy = policy or KeyframePolicy()
    identity = make_detector(detector_name, **params).identity
    shots_version = f"shots-2|{identity}"  # shots-2: the motion column
    keyframes_version = f"keyframes-1|{policy_version(policy)}"

    @multi_asset(
        name="shots_and_keyframes",
        pool=MODEL_POOL,
        specs=[
            AssetSpec(
                SHOTS,
                deps=["title"],
                code_version=shots_version,
                group_name="shots",
                kinds={"pyav", "duckdb"},
                metadata={"detector": identity},
                description="Shot boundaries (cuts, dissolves, fades) over the whole title: shot id, "
                "start/end frame and seconds, the transition that begins the shot, confidence, and the "
                "shot's median frame-to-frame motion (measured in the same decode pass).",
            ),
            AssetSpec(
                KEYFRAMES,
                deps=[SHOTS],
                code_version=keyframes_version,
                group_name="shots",
                kinds={"pyav", "duckdb"},
                metadata={"policy": MetadataValue.json(policy.as_dict())},
                description="A few sharp representative frames per shot plus regular samples in long "
                "shots, as JPEG images in object storage, so later stages never decode the film again.",
            ),
        ],
        check_specs=[
            AssetCheckSpec(
                SHOTS_CHECK, asset=SHOTS, description="Shots tile every frame: no gap, no overlap."
            ),
            AssetCheckSpec(
                KEYFRAMES_CHECK,
                asset=KEYFRAMES,
                description="Every keyframe row points at an existing image; every shot has one.",
            ),
        ],
        partitions_def=titles_partitions,
        can_subset=True,
        retry_policy=HEAVY_RETRY,
    )
    @title_step
    def shots_and_keyframes(context: AssetExecutionContext, lake: LakeResource):
        title_id = context.partition_key
        selected = context.selected_asset_keys
        warehouse = lake.warehouse()
        info = warehouse.read_table("titles", title_id).to_pylist()[0]
        registry = lake.titles()
        manifest = registry.manifest(title_id)
        detector: ShotDetector | None = make_detector(detector_name, **params) if SHOTS in selected else None
        fixed = (
            None if detector is not None else _transitions_from_table(warehouse.read_table("shots", title_id))
        )
        spool = KeyframeSpool(policy) if KEYFRAMES in selected else None
        last_log = [0.0]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - last_log[0] > 10 or done == total:
                last_log[0] = time.monotonic()
                context.log.info(f"{title_id}: decoded {done}/{total or '?'} frames")

        try:
            with registry.local_file(manifest.source_key, lake.scratch()) as path:
                try:
                    scan = scan_video(
                        path,
                        detector=detector,
                        spool=spool,
                        progress=progress,
                        expected_frames=int(info["frame_count"]),
                        fixed_transitions=fixed,
                    )
                except VideoError as exc:
                    with bad_input_fails_fast():
                        raise VideoError(info["path"], exc.reason) from exc
            if SHOTS in selected:
                yield from _emit_shots(context, lake, title_id, scan, detector, float(info["duration_s"]))
            if KEYFRAMES in selected:
                yield from _emit_keyframes(context, lake, title_id, scan, float(info["fps"]), policy)
        finally:
            if spool is not None:
                spool.cleanup()

    return shots_and_keyframes


def _emit_shots(
    context: AssetExecutionContext,
    lake: LakeResource,
    title_id: str,
    scan: ScanResult,
    detector: ShotDetector,
    duration_s: float,
):
    spans = {
        t.start_frame if t.kind == "cut" else (t.start_frame + t.end_frame + 1) // 2: t
        for t in scan.transitions
    }
    rows = []
    motion = scan.shot_motion or [None] * len(scan.shots)
    for shot, shot_motion in zip(scan.shots, motion, strict=True):
        start_s, end_s = scan.shot_times(shot)
        t = spans.get(shot.start_frame)
        rows.append(
            {
                "shot_id": shot.shot_id,
                "start_frame": shot.start_frame,
                "end_frame": shot.end_frame,
                "start_s": round(start_s, 6),
                "end_s": round(end_s, 6),
                "duration_s": round(end_s - start_s, 6),
                "n_frames": shot.end_frame - shot.start_frame + 1,
                "transition": shot.transition,
                "transition_start_frame": t.start_frame if t else None,
                "transition_end_frame": t.end_frame if t else None,
                "confidence": round(float(shot.confidence), 4),
                "motion": shot_motion,
                "detector": detector.identity,
            }
        )
    table = pa.Table.from_pylist(rows, schema=SHOTS_SCHEMA)
    problems = tiling_problems(rows, scan.frame_count)
    lake.warehouse().write_table("shots", title_id, table)
    kinds = Counter(r["transition"] for r in rows)
    model_frames = int(getattr(detector, "model_frames", 0) or 0)
    yield MaterializeResult(
        asset_key=SHOTS,
        metadata={
            "n_shots": len(rows),
            "transitions": MetadataValue.json(dict(kinds)),
            "detector": detector.identity,
            "frames": scan.frame_count,
            "decode_pass_s": round(scan.seconds, 3),
            "frames_per_s": round(scan.frames_per_s, 1),
            "realtime_factor": round(duration_s / scan.seconds, 2) if scan.seconds else None,
            "detector_s": round(scan.detector_seconds, 3),
            "model_frames": model_frames,
            "preview": preview(table),
        },
        data_version=table_data_version(table),
    )
    yield check_result(SHOTS, SHOTS_CHECK, problems)


def _emit_keyframes(
    context: AssetExecutionContext,
    lake: LakeResource,
    title_id: str,
    scan: ScanResult,
    fps: float,
    policy: KeyframePolicy,
):
    store = lake.store()
    chosen = select_keyframes(scan.candidates, scan.shots, scan.transitions, fps, policy)
    media = media_version(context, "keyframes")
    rows = []
    for k in chosen:
        c = k.candidate
        key = media.key(f"{c.frame:08d}.jpg")
        store.put_file(c.path, key)
        rows.append(
            {
                "frame": c.frame,
                "time_s": round(c.time_s, 6),
                "shot_id": k.shot_id,
                "kind": k.kind,
                "rank_in_shot": k.rank_in_shot,
                "sharpness": round(c.sharpness, 4),
                "brightness": round(c.brightness, 4),
                "width": c.width,
                "height": c.height,
                "image_key": key,
            }
        )
    table = pa.Table.from_pylist(rows, schema=KEYFRAMES_SCHEMA)
    lake.warehouse().write_table("keyframes", title_id, table)
    problems = keyframe_problems(rows, [s.shot_id for s in scan.shots], store.exists)
    per_shot = len(rows) / max(1, len(scan.shots))
    yield MaterializeResult(
        asset_key=KEYFRAMES,
        metadata={
            "n_keyframes": len(rows),
            "keyframes_per_shot": round(per_shot, 2),
            "candidates_spooled": len(scan.candidates),
            "images": MetadataValue.path(store.url(media.prefix)),
            "preview": preview(table),
        },
        data_version=table_data_version(table.drop_columns(["image_key"])),
    )
    yield check_result(KEYFRAMES, KEYFRAMES_CHECK, problems)


def _transitions_from_table(table: pa.Table) -> list[Transition]:
    out = []
    for r in table.to_pylist():
        if r["transition"] in ("cut", "dissolve", "fade") and r["transition_start_frame"] is not None:
            out.append(
                Transition(
                    int(r["transition_start_frame"]),
                    int(r["transition_end_frame"]),
                    r["transition"],
                    float(r["confidence"]),
                )
            )
    return out


SHOTS_SCHEMA = pa.schema(
    [
        ("shot_id", pa.int32()),
        ("start_frame", pa.int64()),
        ("end_frame", pa.int64()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("duration_s", pa.float64()),
        ("n_frames", pa.int64()),
        ("transition", pa.string()),
        ("transition_start_frame", pa.int64()),
        ("transition_end_frame", pa.int64()),
        ("confidence", pa.float32()),
        # Median over the shot's own frames (not its first, none inside a transition) of the mean
        # absolute difference of consecutive 48x27 grey frames, in [0, 1]: ~0 for a still shot.
        ("motion", pa.float32()),
        ("detector", pa.string()),
    ]
)

KEYFRAMES_SCHEMA = pa.schema(
    [
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("shot_id", pa.int32()),
        ("kind", pa.string()),
        ("rank_in_shot", pa.int16()),
        ("sharpness", pa.float32()),
        ("brightness", pa.float32()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("image_key", pa.string()),
    ]
)

__all__ = ["KEYFRAMES", "SHOTS", "build_shots_assets"]
