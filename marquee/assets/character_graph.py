"""``character_graph``: who appears with whom, and how prominent each character is.

Nodes are the characters (background clusters left out), edges count the keyframes and the shots two
characters share; prominence is screen time plus degree and eigenvector centrality on shared shots.
Stored as ``character_nodes`` and ``character_edges`` tables, a GraphML file, and a PNG with the
characters' faces as nodes.
"""

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from marquee.assets.common import HEAVY_RETRY, check_result, preview, table_data_version, title_step
from marquee.assets.partitions import titles_partitions
from marquee.ops.faces.graph import character_graph as build_graph
from marquee.ops.faces.graph import draw_graph_png, to_graphml
from marquee.ops.faces.tables import assign_characters, characters_from_table, faces_from_table, graph_tables
from marquee.ops.faces.validate import graph_problems
from marquee.ops.images import decode_rgb
from marquee.resources.lake import LakeResource

GRAPH_CHECK = "graph_nodes_match_characters"


def graph_keys(title_id: str) -> tuple[str, str]:
    """Object keys of the graph picture and GraphML file: fixed names, each replaced atomically."""
    return f"media/graphs/{title_id}/graph.png", f"media/graphs/{title_id}/graph.graphml"


@asset(
    deps=["face_clusters", "faces"],
    partitions_def=titles_partitions,
    code_version="character_graph-1",
    retry_policy=HEAVY_RETRY,
    group_name="characters",
    kinds={"networkx", "duckdb"},
    check_specs=[
        AssetCheckSpec(
            GRAPH_CHECK,
            asset="character_graph",
            description="Graph nodes are exactly the characters; edges join known nodes once.",
        )
    ],
    description="Character co-occurrence graph: `character_nodes` (prominence rank, screen time, degree, "
    "eigenvector centrality), `character_edges` (shared keyframes and shots), GraphML and a PNG.",
)
@title_step
def character_graph(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    store, wh = lake.store(), lake.warehouse()
    faces = faces_from_table(wh.read_table("faces", title_id))
    assign_characters(faces, wh.read_table("face_clusters", title_id))
    characters_rows = wh.read_table("characters", title_id)
    characters = characters_from_table(characters_rows)
    g = build_graph(faces, characters)
    nodes, edges = graph_tables(g)
    pictures = {}
    for r in characters_rows.to_pylist():
        if r["character_id"] in g and r["face_key"] and store.exists(r["face_key"]):
            pictures[r["character_id"]] = decode_rgb(
                store.read_bytes(r["face_key"]), store.url(r["face_key"])
            )
    png_key, graphml_key = graph_keys(title_id)
    store.write_bytes(graphml_key, to_graphml(g))
    store.write_bytes(png_key, draw_graph_png(g, pictures, title=f"{title_id}: characters"))
    wh.write_tables(title_id, {"character_nodes": nodes, "character_edges": edges})
    problems = graph_problems(characters_rows.to_pylist(), nodes.to_pylist(), edges.to_pylist())
    yield MaterializeResult(
        metadata={
            "n_nodes": g.number_of_nodes(),
            "n_edges": g.number_of_edges(),
            "picture": MetadataValue.path(store.url(png_key)),
            "graphml": MetadataValue.path(store.url(graphml_key)),
            "nodes": preview(nodes),
            "edges": preview(edges),
        },
        data_version=table_data_version(nodes, edges.to_pylist()),
    )
    yield check_result("character_graph", GRAPH_CHECK, problems)
