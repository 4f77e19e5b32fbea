"""``report``: an HTML page with a shot timeline and keyframe contact sheets per title.

The page and its pictures live in object storage under ``reports/<title>/``; ``marquee run`` prints
where. Later stages (characters, thumbnails, trailer moments) add their sections here.
"""

import io

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset
from PIL import Image

from marquee.assets.character_graph import graph_keys
from marquee.assets.partitions import titles_partitions
from marquee.ops.report import (
    TRANSITION_COLOURS,
    Tile,
    characters_section,
    contact_sheets,
    shot_timeline,
    title_report_html,
)
from marquee.resources.lake import LakeResource
from marquee.resources.storage import ObjectStore
from marquee.resources.warehouse import Warehouse


def report_prefix(title_id: str) -> str:
    return f"reports/{title_id}"


@asset(
    deps=[AssetKey("title"), AssetKey("shots"), AssetKey("keyframes"), AssetKey("character_graph")],
    partitions_def=titles_partitions,
    code_version="report-2",
    group_name="report",
    kinds={"html"},
    description="A page per title to judge results by eye: shot timeline, characters with their faces, "
    "screen time and graph, one keyframe per shot, shot table.",
)
def report(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    title_id = context.partition_key
    store, wh = lake.store(), lake.warehouse()
    info = wh.read_table("titles", title_id).to_pylist()[0]
    shots = wh.read_table("shots", title_id).sort_by("shot_id").to_pylist()
    keyframes = wh.read_table("keyframes", title_id).sort_by(
        [("shot_id", "ascending"), ("rank_in_shot", "ascending")]
    )
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
    prefix = report_prefix(title_id)
    pages = contact_sheets(tiles)
    sheet_names = [f"keyframes-{i + 1:03d}.png" for i in range(len(pages))]
    for name, png in zip(sheet_names, pages, strict=True):
        store.write_bytes(f"{prefix}/{name}", png)
    store.write_bytes(f"{prefix}/timeline.png", shot_timeline(shots, float(info["duration_s"])))
    section, character_files = _characters(store, wh, title_id, prefix)
    page = title_report_html(
        title_id, info, shots, keyframes.num_rows, sheet_names, "timeline.png", characters_html=section
    )
    store.write_bytes(f"{prefix}/index.html", page.encode())
    keep = {*sheet_names, *character_files, "timeline.png", "index.html"}
    for key in store.list(prefix):
        if key.rsplit("/", 1)[-1] not in keep:  # sheets of an earlier, longer version
            store.delete(key)
    url = store.url(f"{prefix}/index.html")
    context.log.info(f"{title_id}: report at {url}")
    return MaterializeResult(
        metadata={
            "report": MetadataValue.url(url) if "://" in url else MetadataValue.path(url),
            "contact_sheets": len(pages),
            "tiles": len(tiles),
        }
    )


def _characters(store: ObjectStore, wh: Warehouse, title_id: str, prefix: str) -> tuple[str, list[str]]:
    """The characters section and the pictures it copied next to the page (none without characters)."""
    if not wh.has_table("characters", title_id):
        return "", []
    characters = wh.read_table("characters", title_id).sort_by("character_id").to_pylist()
    have_graph = wh.has_table("character_nodes", title_id) and wh.has_table("character_edges", title_id)
    nodes = wh.read_table("character_nodes", title_id).to_pylist() if have_graph else []
    edges = wh.read_table("character_edges", title_id).to_pylist() if have_graph else []
    files: list[str] = []
    faces: dict[int, str] = {}
    for c in characters:
        if not c["background"] and c["face_key"] and store.exists(c["face_key"]):
            name = f"character-{c['character_id']:04d}.jpg"
            store.write_bytes(f"{prefix}/{name}", store.read_bytes(c["face_key"]))
            faces[c["character_id"]] = name
            files.append(name)
    graph_png, _ = graph_keys(title_id)
    graph_name = None
    if store.exists(graph_png):
        graph_name = "characters.png"
        store.write_bytes(f"{prefix}/{graph_name}", store.read_bytes(graph_png))
        files.append(graph_name)
    return characters_section(characters, nodes, edges, faces, graph_name), files


def _loader(store: ObjectStore, key: str):
    return lambda: Image.open(io.BytesIO(store.read_bytes(key)))
