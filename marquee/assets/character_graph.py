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
)

from marquee.assets.common import (
    Reads,
    check_result,
    current_step,
    preview,
    table_data_version,
    title_asset,
)
from marquee.ops.faces.graph import character_graph as build_graph
from marquee.ops.faces.graph import draw_graph_png, to_graphml
from marquee.ops.faces.tables import assign_characters, characters_from_table, faces_from_table, graph_rows
from marquee.ops.faces.validate import graph_problems
from marquee.ops.images import decode_rgb
from marquee.resources.lake import LakeResource
from marquee.resources.tables import TABLES, graph_keys

GRAPH_CHECK = "graph_nodes_match_characters"


#: Faces with their characters, and the characters' rows (face pictures, screen time).
READS = Reads("character_graph", tables=("faces", "face_clusters", "characters"))


@title_asset(
    READS,
    code_version="character_graph-2",
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
def character_graph(context: AssetExecutionContext, lake: LakeResource):
    title_id = context.partition_key
    store, step = lake.store(), current_step(context)
    faces = faces_from_table(step.read("faces"))
    assign_characters(faces, step.read("face_clusters"))
    characters_rows = step.read("characters")
    characters = characters_from_table(characters_rows)
    g = build_graph(faces, characters)
    node_rows, edge_rows = graph_rows(g)
    nodes, edges = TABLES["character_nodes"].table(node_rows), TABLES["character_edges"].table(edge_rows)
    pictures = {}
    for r in characters_rows.to_pylist():
        if r["character_id"] in g and r["face_key"] and store.exists(r["face_key"]):
            pictures[r["character_id"]] = decode_rgb(
                store.read_bytes(r["face_key"]), store.url(r["face_key"])
            )
    png_key, graphml_key = graph_keys(title_id)
    store.write_bytes(graphml_key, to_graphml(g))
    store.write_bytes(png_key, draw_graph_png(g, pictures, title=f"{title_id}: characters"))
    step.write({"character_nodes": nodes, "character_edges": edges})
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
