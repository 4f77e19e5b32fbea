"""``report``: an HTML page with a shot timeline and keyframe contact sheets per title.

The page and its pictures live in object storage under ``reports/<title>/``; ``marquee run`` prints
where. Later stages (characters, thumbnails, trailer moments) add their sections here.
"""

import io

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue
from PIL import Image

from marquee.assets.common import Reads, TitleStep, current_step, title_asset
from marquee.ops.report import (
    TRANSITION_COLOURS,
    Tile,
    candidates_section,
    characters_section,
    contact_sheets,
    data_uri,
    moments_section,
    shot_timeline,
    title_report_html,
)
from marquee.ops.thumbnails.crops import ASPECTS
from marquee.resources.lake import LakeResource
from marquee.resources.storage import ObjectStore
from marquee.resources.tables import graph_keys, report_prefix

#: Everything the page shows; each section is left out while its table is missing.
READS = Reads(
    "report",
    tables=(
        "titles",
        "shots",
        "keyframes",
        "characters",
        "character_nodes",
        "character_edges",
        "thumbnail_candidates",
        "trailer_moments",
        "trailerness",
        "shot_labels",
    ),
)


@title_asset(
    READS,
    retry_policy=None,
    code_version="report-5",
    group_name="report",
    kinds={"html"},
    description="A self-contained page per title (pictures inlined) to judge results by eye: ranked "
    "thumbnail candidates with their crops, trailer moments on a timeline, characters with their faces, "
    "screen time and graph, shot timeline, one keyframe per shot, shot table.",
)
def report(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    title_id = context.partition_key
    store, step = lake.store(), current_step(context)
    info = step.read("titles").to_pylist()[0]
    shots = step.read("shots").sort_by("shot_id").to_pylist()
    keyframes = step.read("keyframes").sort_by([("shot_id", "ascending"), ("rank_in_shot", "ascending")])
    best: dict[int, dict] = {}
    for k in keyframes.to_pylist():
        best.setdefault(k["shot_id"], k)
    by_id = {s["shot_id"]: s for s in shots}
    tiles = [
        Tile(
            load=_loader(store, k["image_key"]),
            caption=f"#{sid} {k['time_s']:.1f}s {by_id[sid]['transition']}",
            colour=TRANSITION_COLOURS.get(by_id[sid]["transition"], (255, 255, 255)),
        )
        for sid, k in sorted(best.items())
        if sid in by_id
    ]
    pages = contact_sheets(tiles, fmt="JPEG")
    sheets = [data_uri(p, "image/jpeg") for p in pages]
    timeline = data_uri(shot_timeline(shots, float(info["duration_s"])), "image/png")
    page = title_report_html(
        title_id,
        info,
        shots,
        keyframes.num_rows,
        sheets,
        timeline,
        characters_html=_characters(store, step),
        candidates_html=_candidates(store, step),
        moments_html=_moments(store, step, float(info["duration_s"])),
    )
    prefix = report_prefix(title_id)
    store.write_bytes(f"{prefix}/index.html", page.encode())
    for key in store.list(prefix):  # pictures that earlier versions kept beside the page
        if key != f"{prefix}/index.html":
            store.delete(key)
    url = store.url(f"{prefix}/index.html")
    context.log.info(f"{title_id}: report at {url}")
    return MaterializeResult(
        metadata={
            "report": MetadataValue.url(url) if "://" in url else MetadataValue.path(url),
            "contact_sheets": len(pages),
            "tiles": len(tiles),
            "bytes": len(page),
        }
    )


def _image(store: ObjectStore, key: str | None, max_side: int = 640) -> str:
    """A stored picture as a JPEG data URI, shrunk to ``max_side`` (empty when missing)."""
    if not key or not store.exists(key):
        return ""
    img = Image.open(io.BytesIO(store.read_bytes(key))).convert("RGB")
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return data_uri(buf.getvalue(), "image/jpeg")


def _characters(store: ObjectStore, step: TitleStep) -> str:
    """The characters section (empty before the characters assets ran)."""
    if not step.has("characters"):
        return ""
    characters = step.read("characters").sort_by("character_id").to_pylist()
    have_graph = step.has("character_nodes") and step.has("character_edges")
    nodes = step.read("character_nodes").to_pylist() if have_graph else []
    edges = step.read("character_edges").to_pylist() if have_graph else []
    faces = {c["character_id"]: _image(store, c["face_key"], 160) for c in characters if not c["background"]}
    graph_png, _ = graph_keys(step.title_id)
    graph = _image(store, graph_png, 960) or None
    return characters_section(characters, nodes, edges, faces, graph)


def _candidates(store: ObjectStore, step: TitleStep) -> str:
    """The thumbnail candidates section (empty before that asset ran)."""
    if not step.has("thumbnail_candidates"):
        return ""
    rows = step.read("thumbnail_candidates").sort_by("rank").to_pylist()
    images = {}
    for r in rows:
        for a in ASPECTS:
            key = r.get(f"logo_{a}_key") or r[f"crop_{a}_key"]
            images[key] = _image(store, key, 360)
    return candidates_section(rows, images, list(ASPECTS))


def _moments(store: ObjectStore, step: TitleStep, duration_s: float) -> str:
    """The trailer moments section with its timeline (empty before those assets ran). Clips are
    linked, not inlined (they are video); the link is relative to the page, so it works wherever the
    object storage folder is opened or served as it is."""
    if not (step.has("trailer_moments") and step.has("trailerness")):
        return ""
    moments = step.read("trailer_moments").sort_by("rank").to_pylist()
    scores = step.read("trailerness").sort_by("shot_id").to_pylist()
    labels = step.read("shot_labels").to_pylist() if step.has("shot_labels") else []
    used = {r["shot_id"] for r in labels if r["in_trailer"]}
    for r in scores:
        r["used"] = r["shot_id"] in used
    for m in moments:
        m["used_in_trailer"] = m["in_trailer"]
    posters = {m["rank"]: _image(store, m["poster_key"], 320) for m in moments}
    depth = report_prefix(step.title_id).count("/") + 1
    links = {m["rank"]: "../" * depth + m["clip_key"] for m in moments if m["clip_key"]}
    model = moments[0]["model"] if moments else ""
    return moments_section(duration_s, scores, moments, posters, links, model=model, has_trailer=bool(labels))


def _loader(store: ObjectStore, key: str):
    return lambda: Image.open(io.BytesIO(store.read_bytes(key)))
