"""``shots`` and ``keyframes``: one decode pass per title yields both.

They are one Dagster multi-asset so that materialising both decodes the film once; either can still
be materialised alone (``can_subset``): ``keyframes`` alone re-decodes with the stored shots (after a
keyframe-policy change), ``shots`` alone skips the keyframe spool. The detector's name, version and
parameters are part of the ``shots`` code version, so changing the detector marks ``shots`` and
everything downstream stale for every title.
"""

import hashlib
import json
from collections import Counter

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
    Reads,
    bad_input_fails_fast,
    check_result,
    current_step,
    media_version,
    preview,
    step_progress,
    table_data_version,
    title_step,
)
from marquee.assets.partitions import titles_partitions
from marquee.ops.errors import VideoError
from marquee.ops.keyframes import KeyframePolicy, KeyframeSpool, select_keyframes
from marquee.ops.shots.base import ShotDetector
from marquee.ops.shots.registry import make_detector
from marquee.ops.shots.scan import ScanResult, scan_video
from marquee.ops.shots.validate import keyframe_problems, tiling_problems
from marquee.ops.timeline import transitions_from_rows
from marquee.ops.trailers.fingerprint import FINGERPRINTER, FilmFingerprinter
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES

SHOTS = AssetKey("shots")
KEYFRAMES = AssetKey("keyframes")
SHOTS_CHECK = "shots_tile_the_title"
KEYFRAMES_CHECK = "keyframes_exist"
SHOTS_READS = Reads("shots", tables=("titles",))
#: ``keyframes`` alone (after a keyframe-policy change) reads the stored shots instead of detecting them.
KEYFRAMES_READS = Reads("keyframes", tables=("titles", "shots"))


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
                deps=SHOTS_READS.deps,
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
                deps=KEYFRAMES_READS.deps,
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
    @title_step(SHOTS_READS, KEYFRAMES_READS)
    def shots_and_keyframes(context: AssetExecutionContext, lake: LakeResource):
        title_id = context.partition_key
        selected = context.selected_asset_keys
        step = current_step(context)
        info = step.read("titles").to_pylist()[0]
        registry = lake.titles()
        manifest = registry.manifest(title_id)
        detector: ShotDetector | None = make_detector(detector_name, **params) if SHOTS in selected else None
        fixed = None if detector is not None else transitions_from_rows(step.read("shots").to_pylist())
        spool = KeyframeSpool(policy) if KEYFRAMES in selected else None
        # A title with a trailer gets the film's fingerprints from this pass, not from a second decode.
        fingerprinter = None
        if SHOTS in selected and manifest.trailer_key:
            fingerprinter = FilmFingerprinter(float(info["width"]) / max(float(info["height"]), 1.0))
        progress = step_progress(context)("decoding", "frames")

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
                        sinks=[fingerprinter] if fingerprinter is not None else [],
                    )
                except VideoError as exc:
                    with bad_input_fails_fast():
                        raise VideoError(info["path"], exc.reason) from exc
            if SHOTS in selected:
                fingerprints = _store_fingerprints(context, lake, scan, fingerprinter)
                yield from _emit_shots(
                    context, lake, title_id, scan, detector, float(info["duration_s"]), fingerprints
                )
            if KEYFRAMES in selected:
                yield from _emit_keyframes(context, lake, title_id, scan, float(info["fps"]), policy)
        finally:
            if spool is not None:
                spool.cleanup()

    return shots_and_keyframes


def _store_fingerprints(
    context: AssetExecutionContext,
    lake: LakeResource,
    scan: ScanResult,
    fingerprinter: FilmFingerprinter | None,
) -> list[dict]:
    """The ``film_fingerprints`` rows: one, with its .npz stored in object storage, for a title with a
    trailer; none without (the matcher then decodes the film itself, e.g. for a trailer added later).
    Written together with the shots (``_emit_shots``), so the two never disagree."""
    rows = []
    if fingerprinter is not None:
        media = media_version(context, "fingerprints")
        key = media.key("film.npz")
        lake.store().write_bytes(key, fingerprinter.finish().to_bytes(scan.frame_times))
        rows.append({"frames": scan.frame_count, "fingerprinter": FINGERPRINTER, "fingerprints_key": key})
    return rows


def _emit_shots(
    context: AssetExecutionContext,
    lake: LakeResource,
    title_id: str,
    scan: ScanResult,
    detector: ShotDetector,
    duration_s: float,
    fingerprints: list[dict],
):
    rows = scan.shot_rows(detector.identity)
    table = TABLES["shots"].table(rows)
    problems = tiling_problems(rows, scan.frame_count)
    current_step(context).write({"shots": table, "film_fingerprints": fingerprints})  # one atomic write
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
    table = TABLES["keyframes"].table(rows)
    current_step(context).write({"keyframes": table})
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


__all__ = ["KEYFRAMES", "SHOTS", "build_shots_assets"]
