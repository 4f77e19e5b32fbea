"""The character picture and the report's characters section stay readable for a feature film's cast.

A synthetic 40-character title (long-tailed screen time, random co-occurrence) must come out as a
dozen labelled leads, most prominent in the centre, with the rest grouped; a 5-character title must
still show every character on its own. The geometry is checked on ``plan_graph`` (what is drawn where),
the pixels on a few face centres, the page on the order of its parts.
"""

from __future__ import annotations

import re
from itertools import combinations

import cv2
import networkx as nx
import numpy as np
import pytest

from marquee.ops.cast import MAX_LEADS, split_cast
from marquee.ops.faces.cluster import Character
from marquee.ops.faces.graph import (
    CIRCLE_MAX,
    EDGES_PER_LEAD,
    MINOR_GROUP,
    GraphPlan,
    character_graph,
    draw_graph_png,
    graph_edges,
    plan_graph,
    prominence_order,
    render_graph_png,
)
from marquee.ops.faces.tables import graph_rows
from marquee.ops.faces.types import FaceRecord
from marquee.ops.report import PAIRS_SHOWN, characters_section

SIZE = (960, 720)


def synthetic_title(n: int, seed: int = 7, n_shots: int = 600) -> tuple[nx.Graph, list[Character]]:
    """A title of ``n`` characters: Zipf-like screen time (character 0 the lead), each shot showing one
    to four of them drawn by screen time, one face per character per shot; plus two background
    clusters that the graph must leave out."""
    rng = np.random.default_rng(seed)
    times = 900.0 / np.arange(1, n + 1) ** 1.3
    p = times / times.sum()
    faces = []
    for shot in range(n_shots):
        k = min(int(rng.choice([1, 1, 2, 2, 3, 4])), n)
        for c in rng.choice(n, size=k, replace=False, p=p):
            faces.append(
                FaceRecord(
                    face_id=len(faces),
                    frame=shot * 10,
                    time_s=shot * 2.0,
                    shot_id=shot,
                    box=np.asarray([10, 10, 60, 70], np.float32),
                    score=0.99,
                    landmarks=np.zeros((5, 2), np.float32),
                    character_id=int(c),
                )
            )
    chars = [
        Character(i, float(times[i]), float(p[i]), 10, 2, float(i), 0, background=False) for i in range(n)
    ]
    chars += [Character(n + i, 0.5, 0.0, 1, 1, 0.0, 0, background=True) for i in range(2)]
    return character_graph(faces, chars), chars


def face_colours(ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """A distinct, saturated RGB colour per character (none of them grey, so no edge or text
    pixel can equal one)."""
    return {v: (255 - 5 * i, 5 * i, 128 + (i * 37) % 100) for i, v in enumerate(ids)}


def solid_faces(colours: dict[int, tuple[int, int, int]]) -> dict[int, np.ndarray]:
    return {v: np.full((32, 32, 3), c, np.uint8) for v, c in colours.items()}


def decode(png: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def assert_readable(plan: GraphPlan) -> None:
    """Faces apart, every text box on the canvas, clear of every face and of every other text box."""
    w, h = plan.size
    boxes = plan.text_boxes
    for b in boxes:
        assert 0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h, b
    for a, b in combinations(boxes, 2):
        apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        assert apart, (a, b)
    for m, n in combinations(plan.nodes, 2):
        gap = np.hypot(m.centre[0] - n.centre[0], m.centre[1] - n.centre[1]) - (m.diameter + n.diameter) / 2
        assert gap > 0, (m.key, n.key)
    for n in plan.nodes:
        r = n.diameter / 2
        for b in boxes:
            nearest = (min(max(n.centre[0], b[0]), b[2]), min(max(n.centre[1], b[1]), b[3]))
            assert np.hypot(nearest[0] - n.centre[0], nearest[1] - n.centre[1]) >= r, (n.key, b)


@pytest.fixture(scope="module")
def big() -> tuple[nx.Graph, list[Character], GraphPlan]:
    g, chars = synthetic_title(40)
    return g, chars, plan_graph(g, size=SIZE, title="feature: characters")


def test_split_cast_keeps_a_dozen_leads_and_groups_the_tail():
    few = [(i, 0.2) for i in range(MAX_LEADS + 1)]
    assert split_cast(few) == (list(range(MAX_LEADS + 1)), [])  # one left over is not worth a group
    many = [(i, 0.5 / (i + 1)) for i in range(40)]
    leads, minor = split_cast(many)
    assert leads == list(range(MAX_LEADS)) and minor == list(range(MAX_LEADS, 40))
    steep = [(i, 0.9 if i == 0 else 0.001) for i in range(40)]  # one star and a crowd
    leads, minor = split_cast(steep)
    assert leads == [0, 1, 2] and len(minor) == 37


def test_big_cast_plan_draws_leads_as_labelled_faces_and_groups_the_rest(big):
    g, _, plan = big
    assert g.number_of_nodes() == 40 and plan.layout == "rings"
    order = prominence_order(g)
    assert 3 <= len(plan.leads) <= MAX_LEADS
    assert list(plan.leads) == order[: len(plan.leads)] and list(plan.minor) == order[len(plan.leads) :]
    times = [g.nodes[v]["screen_time_s"] for v in plan.leads]
    assert times == sorted(times, reverse=True)

    lead_nodes = [n for n in plan.nodes if not n.is_group]
    groups = [n for n in plan.nodes if n.is_group]
    assert [n.key for n in lead_nodes] == list(plan.leads)  # only leads get a face, in rank order
    for n in lead_nodes:
        assert n.label[0].startswith(f"#{n.key} ") and n.members == (n.key,)
    assert len(groups) == 1 and groups[0].members == plan.minor
    assert f"{len(plan.minor)} minor characters" in groups[0].label[0]

    # Most prominent in the middle: rank 1 alone in the centre, rings outward in rank order, faces
    # shrinking with rank.
    rings = [n.ring for n in lead_nodes]
    assert rings[0] == 0 and rings.count(0) == 1 and rings == sorted(rings) and max(rings) == 2
    centre = np.asarray(lead_nodes[0].centre, float)
    dist = {
        r: [np.linalg.norm(np.asarray(n.centre) - centre) for n in lead_nodes if n.ring == r] for r in (1, 2)
    }
    assert max(dist[1]) < min(dist[2])
    diameters = [n.diameter for n in lead_nodes]
    assert diameters == sorted(diameters, reverse=True) and diameters[0] > groups[0].diameter
    assert_readable(plan)


def test_big_cast_edges_sum_minor_ties_and_keep_only_strong_lead_pairs(big):
    g, _, plan = big
    leads, minor = set(plan.leads), set(plan.minor)
    to_group = {e.b: e for e in plan.edges if e.a == MINOR_GROUP}
    for lead in plan.leads:
        expected = sum(d["shots"] for _, m, d in g.edges(lead, data=True) if m in minor)
        assert (to_group[lead].shots if lead in to_group else 0) == expected
    pairs = [e for e in plan.edges if e.a != MINOR_GROUP]
    assert all(e.a in leads and e.b in leads for e in pairs)  # no minor character drawn on its own
    all_pairs = [(a, b) for a, b in g.edges if a in leads and b in leads]
    assert len(pairs) + plan.hidden_edges == len(all_pairs) and plan.hidden_edges > 0
    assert len(pairs) <= EDGES_PER_LEAD * len(leads) + len(leads)
    # Drawn: the strongest pairs (at least a tenth of the strongest), plus each lead's strongest tie
    # (so no lead looks alone).
    ranked = sorted((g[a][b]["shots"] for a, b in all_pairs), reverse=True)
    cut = ranked[EDGES_PER_LEAD * len(leads) - 1]
    best = {v: max((g[v][m]["shots"] for m in g[v] if m in leads), default=0) for v in leads}
    for e in pairs:
        assert (e.shots >= cut and e.shots >= 0.1 * ranked[0]) or e.shots in (best[e.a], best[e.b]), e
    drawn = {frozenset((e.a, e.b)) for e in pairs}
    assert all(any(v in p for p in drawn) for v in leads if best[v])
    hidden = [g[a][b]["shots"] for a, b in all_pairs if frozenset((a, b)) not in drawn]
    assert all(s <= cut or s < 0.1 * ranked[0] for s in hidden)  # left out: weak, absolutely or relatively
    by_shots = sorted(pairs, key=lambda e: e.shots)
    assert [e.width for e in by_shots] == sorted(e.width for e in by_shots)  # wider = more shared shots
    assert [e.shots for e in pairs] == sorted(e.shots for e in pairs)  # the strongest drawn on top
    assert any(f"{plan.hidden_edges} weaker pairs" in line for line in plan.legend)


def test_big_cast_picture_decodes_with_lead_faces_and_no_minor_face(big):
    g, _, plan = big
    colours = face_colours(prominence_order(g))
    png = draw_graph_png(g, solid_faces(colours), size=SIZE, title="feature: characters")
    assert png == render_graph_png(plan, solid_faces(colours))  # the picture is the plan
    img = decode(png)
    assert img.shape == (SIZE[1], SIZE[0], 3)
    for n in plan.nodes:
        if not n.is_group:
            r, gg, b = colours[n.key]
            assert tuple(int(x) for x in img[n.centre[1], n.centre[0]]) == (b, gg, r), n.key
    flat = img.reshape(-1, 3)
    for v in plan.minor:
        r, gg, b = colours[v]
        assert not np.any(np.all(flat == (b, gg, r), axis=1)), v
    gx, gy = plan.node(MINOR_GROUP).centre
    assert abs(int(img[gy, gx].astype(int).max()) - int(img[gy, gx].astype(int).min())) < 8  # grey


def test_small_cast_still_draws_every_character_with_labelled_edges():
    g, _ = synthetic_title(5, n_shots=60)
    plan = plan_graph(g, size=SIZE, title="short: characters")
    assert len(g) == 5 <= CIRCLE_MAX and plan.layout == "circle"
    assert list(plan.leads) == prominence_order(g) and plan.minor == () and plan.hidden_edges == 0
    assert [n.key for n in plan.nodes] == list(plan.leads) and not any(n.is_group for n in plan.nodes)
    assert min(plan.nodes, key=lambda n: n.centre[1]).key == plan.leads[0]  # the lead on top
    assert sorted((min(e.a, e.b), max(e.a, e.b)) for e in plan.edges) == sorted(
        (r["a"], r["b"]) for r in graph_edges(g)
    )
    for e in plan.edges:
        assert e.label == f"{e.shots} sh / {e.frames} kf" and e.label_box is not None
    assert_readable(plan)
    colours = face_colours(list(plan.leads))
    img = decode(render_graph_png(plan, solid_faces(colours)))
    for n in plan.nodes:
        r, gg, b = colours[n.key]
        assert tuple(int(x) for x in img[n.centre[1], n.centre[0]]) == (b, gg, r)


def report_inputs(g: nx.Graph, chars: list[Character]) -> tuple[list[dict], list[dict], list[dict], dict]:
    characters = [c.as_dict() for c in chars]
    nodes, edges = graph_rows(g)
    faces = {
        c.character_id: f"data:image/jpeg;base64,FACE{c.character_id}" for c in chars if not c.background
    }
    return characters, nodes, edges, faces


def test_report_lists_leads_first_and_folds_minor_characters_and_weak_pairs(big):
    g, chars, plan = big
    characters, nodes, edges, faces = report_inputs(g, chars)
    page = characters_section(characters, nodes, edges, faces, "data:image/png;base64,GRAPH")
    head, _, rest = page.partition('<details class="chr-fold chr-minor">')
    minor_part, _, pairs_part = rest.partition("</details>")
    assert minor_part.startswith(f"<summary>{len(plan.minor)} minor characters")
    lead_rows = re.findall(r"<tr><td><img [^>]*src=\"data:image/jpeg;base64,FACE(\d+)\"", head)
    assert [int(i) for i in lead_rows] == list(plan.leads)  # the page's leads are the picture's
    assert [int(i) for i in re.findall(r"FACE(\d+)", minor_part)] == list(plan.minor)
    assert head.index("GRAPH") < head.index("<h3>Leads</h3>")
    assert page.count('class="chr-card"') == len(plan.minor) and "<tr" not in minor_part
    # Pairs: the strongest few in view, every pair in the fold.
    shown, _, folded = pairs_part.partition("<details")
    assert shown.count("<tr><td>#") == PAIRS_SHOWN and folded.count("<tr><td>#") == len(edges)
    shots = [int(s) for s in re.findall(r"<tr><td>#\d+ – #\d+</td><td>(\d+)</td>", shown)]
    assert shots == sorted(shots, reverse=True) and shots[0] == max(e["shots"] for e in edges)
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))  # self-contained


def test_report_small_cast_is_one_table_without_folds():
    g, chars = synthetic_title(5, n_shots=60)
    characters, nodes, edges, faces = report_inputs(g, chars)
    page = characters_section(characters, nodes, edges, faces, None)
    assert "<details" not in page and "Leads" not in page
    rows = re.findall(r"<tr><td><img [^>]*src=\"data:image/jpeg;base64,FACE(\d+)\"", page)
    assert [int(i) for i in rows] == prominence_order(g)
    assert page.count("<tr><td>#") == len(edges) <= PAIRS_SHOWN
