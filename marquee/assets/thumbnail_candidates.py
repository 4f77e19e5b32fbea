"""``thumbnail_candidates``: a short, diverse, ranked list of character-focused frames with artwork crops.

Ranking and diversity are in ``marquee.ops.thumbnails.rank``, crops and logo-safe areas in
``marquee.ops.thumbnails.crops``. Each candidate stores the full keyframe and a crop per artwork shape
(16:9, 2:3, 1:1, 4:5) with its logo-safe box; when the title has a logo (``titles/<id>/logo.png``,
RGBA) a copy of each crop with the logo composited into that box is stored too.
"""

from collections import defaultdict

from dagster import AssetCheckSpec, AssetExecutionContext, MaterializeResult, MetadataValue

from marquee.assets.common import (
    Reads,
    check_result,
    current_step,
    media_version,
    preview,
    short_hash,
    table_data_version,
    title_asset,
)
from marquee.ops.faces.tables import faces_from_table
from marquee.ops.images import decode_rgb, decode_rgba, encode_jpeg
from marquee.ops.thumbnails.candidates import (
    CandidateMedia,
    candidate_rows,
    render_candidate,
)
from marquee.ops.thumbnails.crops import ASPECTS, CropPolicy
from marquee.ops.thumbnails.rank import RankPolicy, frame_candidates, select_diverse
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES

CANDIDATES_CHECK = "candidates_point_at_images"
RANK_POLICY = RankPolicy()
CROP_POLICY = CropPolicy()


def logo_key(title_id: str) -> str:
    return f"titles/{title_id}/logo.png"


#: Faces with their characters and expression scores, the characters' screen-time shares, the
#: keyframes to crop, and the title's size and duration.
READS = Reads(
    "thumbnail_candidates",
    tables=("titles", "faces", "face_clusters", "characters", "expression_scores", "keyframes"),
)


@title_asset(
    READS,
    code_version=f"thumbnail_candidates-2|{short_hash([RANK_POLICY.__dict__, CROP_POLICY.__dict__])}",
    group_name="thumbnails",
    kinds={"opencv", "duckdb"},
    check_specs=[
        AssetCheckSpec(
            CANDIDATES_CHECK,
            asset="thumbnail_candidates",
            description="Every candidate's frame and crops exist in object storage.",
        )
    ],
    description="Ranked thumbnail candidates (prominence x expression x quality, diverse by character, shot "
    "and time) with crops for 16:9, 2:3, 1:1, 4:5 and a logo-safe box in each.",
)
def thumbnail_candidates(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    store, step = lake.store(), current_step(context)
    info = step.read("titles").to_pylist()[0]
    faces_table = step.read("faces")
    faces_by_frame = defaultdict(list)
    for f in faces_from_table(faces_table):
        faces_by_frame[f.frame].append(f)
    face_rows = {r["face_id"]: r for r in faces_table.to_pylist()}
    clusters = {r["face_id"]: r for r in step.read("face_clusters").to_pylist()}
    scores = {r["face_id"]: r for r in step.read("expression_scores").to_pylist()}
    characters = step.read("characters").to_pylist()
    prominence = {c["character_id"]: c["screen_time_share"] for c in characters if not c["background"]}
    keyframes = {k["frame"]: k for k in step.read("keyframes").to_pylist()}
    rows = []
    for fid, r in face_rows.items():
        if fid in scores and fid in clusters:
            rows.append(
                r
                | {
                    "character_id": clusters[fid]["character_id"],
                    "expression": scores[fid]["expression"],
                    "eyes_open": scores[fid]["eyes_open"],
                }
            )
    scale = {f: float(info["width"]) / float(k["width"]) for f, k in keyframes.items()}
    kf_rows = [k | {"keyframe_scale": scale[f]} for f, k in keyframes.items()]
    ranked = frame_candidates(rows, kf_rows, prominence, RANK_POLICY)
    chosen = select_diverse(ranked, float(info["duration_s"]), RANK_POLICY)
    logo_at = logo_key(title_id)
    logo = decode_rgba(store.read_bytes(logo_at), store.url(logo_at)) if store.exists(logo_at) else None
    version = media_version(context, "thumbnails")
    media: list[CandidateMedia] = []
    for rank, c in enumerate(chosen, 1):
        k = keyframes[c.frame]
        keyframe_jpeg = store.read_bytes(k["image_key"])
        image = decode_rgb(keyframe_jpeg, store.url(k["image_key"]))
        order = sorted(
            faces_by_frame[c.frame],
            key=lambda f: (
                f.face_id != c.primary_face_id,
                -prominence.get(clusters.get(f.face_id, {}).get("character_id", -1), -1.0),
                -(f.box[3] - f.box[1]),
            ),
        )
        rendered = render_candidate(image, [f.box for f in order], CROP_POLICY, logo)
        prefix = version.key(f"{rank:03d}-{c.frame:08d}")
        frame_key = f"{prefix}/frame.jpg"
        store.write_bytes(frame_key, keyframe_jpeg)
        keys, logo_keys = {}, {}
        for name in ASPECTS:
            keys[name] = f"{prefix}/{name}.jpg"
            store.write_bytes(keys[name], encode_jpeg(rendered.crops[name]))
            if name in rendered.with_logo:
                logo_keys[name] = f"{prefix}/{name}-logo.jpg"
                store.write_bytes(logo_keys[name], encode_jpeg(rendered.with_logo[name]))
        media.append(CandidateMedia(rank, c, frame_key, keys, logo_keys, rendered, scale[c.frame]))
    table = TABLES["thumbnail_candidates"].table(candidate_rows(media))
    step.write({"thumbnail_candidates": table})
    problems = [
        f"rank {r['rank']}: {key} missing"
        for r in table.to_pylist()
        for key in [r["frame_key"], *(r[f"crop_{a}_key"] for a in ASPECTS)]
        if not store.exists(key)
    ]
    context.log.info(
        f"{title_id}: {len(chosen)} thumbnail candidates from "
        f"{len({c.frame for c in ranked})} frames with characters"
    )
    yield MaterializeResult(
        metadata={
            "n_candidates": len(chosen),
            "frames_considered": len({c.frame for c in ranked}),
            "shots": len({c.shot_id for c in chosen}),
            "characters": MetadataValue.json(sorted({c.primary_character for c in chosen})),
            "logo": logo is not None,
            "media": MetadataValue.path(store.url(version.prefix)),
            "preview": preview(
                table.select(
                    ["rank", "frame", "time_s", "shot_id", "prominence", "expression", "quality", "score"]
                )
            ),
        },
        data_version=table_data_version(
            table.drop_columns([c for c in table.column_names if c.endswith("_key")])
        ),
    )
    yield check_result("thumbnail_candidates", CANDIDATES_CHECK, problems)
