"""The character interaction graph: who appears with whom, and how central each character is.

Nodes are characters (background clusters are left out); an edge counts the keyframes in which two
characters are both visible (``frames``) and the shots in which both appear (``shots``). Shot
co-occurrence is the better interaction signal (shot/reverse-shot dialogue rarely puts both faces in
one frame), so centrality is computed on it. The picture is drawn with OpenCV (matplotlib is not a
dependency): face crops as nodes, edge width by shot count, screen time beside each face. A feature
film's cast of forty would be an unreadable pile, so past a dozen characters only the leads get a face
(most prominent in the centre) and the minor characters are drawn as one group node (``plan_graph``).
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import cv2
import networkx as nx
import numpy as np

from marquee.ops.cast import MAX_LEADS, MIN_LEAD_SHARE, split_cast
from marquee.ops.faces.cluster import Character
from marquee.ops.faces.types import FaceRecord


def character_graph(faces: Iterable[FaceRecord], characters: Sequence[Character]) -> nx.Graph:
    """Graph of non-background characters with co-occurrence edges and prominence attributes."""
    keep = {c.character_id: c for c in characters if not c.background}
    g = nx.Graph()
    for c in keep.values():
        g.add_node(
            c.character_id,
            screen_time_s=round(c.screen_time_s, 3),
            screen_time_share=0.0,
            n_faces=c.n_faces,
            n_tracks=c.n_tracks,
            first_appearance_s=round(c.first_appearance_s, 3),
        )
    in_frame: dict[int, set[int]] = defaultdict(set)
    in_shot: dict[int, set[int]] = defaultdict(set)
    for f in faces:
        if f.character_id in keep:
            in_frame[f.frame].add(f.character_id)
            in_shot[f.shot_id].add(f.character_id)
    for key, groups in (("frames", in_frame), ("shots", in_shot)):
        for members in groups.values():
            for a, b in combinations(sorted(members), 2):
                if not g.has_edge(a, b):
                    g.add_edge(a, b, frames=0, shots=0)
                g[a][b][key] += 1
    add_prominence(g)
    return g


def add_prominence(g: nx.Graph) -> None:
    """Node attributes: ``screen_time_share`` (of all characters' screen time), ``degree`` (weighted
    by shared shots, over the largest) and ``eigenvector`` centrality on shared shots.

    Eigenvector centrality is computed per connected component and scaled by the component's share of
    nodes, so a disconnected graph (common: a prologue with other people) still gets sensible values
    and an isolated character gets 0.
    """
    total = sum(d["screen_time_s"] for _, d in g.nodes(data=True)) or 1.0
    strength = dict(g.degree(weight="shots"))
    top = max(strength.values(), default=0) or 1
    eig: dict[int, float] = {}
    n = g.number_of_nodes()
    for comp in nx.connected_components(g):
        sub = g.subgraph(comp)
        if sub.number_of_edges() == 0:
            eig.update({v: 0.0 for v in comp})
            continue
        nodes = list(sub.nodes)
        adj = nx.to_numpy_array(sub, nodelist=nodes, weight="shots")
        _, vecs = np.linalg.eigh(adj)  # symmetric: the last eigenvector is the Perron vector
        values = dict(zip(nodes, np.abs(vecs[:, -1]).tolist(), strict=True))
        peak = max(values.values()) or 1.0
        eig.update({v: abs(x) / abs(peak) * len(comp) / n for v, x in values.items()})
    for v, d in g.nodes(data=True):
        d["screen_time_share"] = round(d["screen_time_s"] / total, 4)
        d["degree"] = round(strength[v] / top, 4)
        d["eigenvector"] = round(float(eig.get(v, 0.0)), 4)


def graph_edges(g: nx.Graph) -> list[dict[str, int]]:
    """Edges as rows ``{a, b, frames, shots}`` with ``a < b``, sorted."""
    rows = [
        {"a": min(a, b), "b": max(a, b), "frames": d["frames"], "shots": d["shots"]}
        for a, b, d in g.edges(data=True)
    ]
    return sorted(rows, key=lambda r: (r["a"], r["b"]))


def to_graphml(g: nx.Graph) -> bytes:
    """GraphML bytes (opens in Gephi, yEd, networkx)."""
    buf = io.BytesIO()
    nx.write_graphml(g, buf)
    return buf.getvalue()


# ---------------------------------------------------------------- picture
#
# The picture is planned first (``plan_graph``: who is drawn, where, how big, where every label goes)
# and rendered second (``render_graph_png``), so tests and callers can check the geometry (labels apart,
# leads in the centre) without reading pixels.

#: Casts up to this size keep the original picture: every character on one circle, the most prominent
#: at the top, every edge labelled with its counts. Past it, faces and edge labels on a circle collide.
CIRCLE_MAX = 7
#: Node key of the one node that stands for all minor characters (character ids are >= 0).
MINOR_GROUP = -1
#: Cast-size-independent cap on drawn lead-to-lead edges, per lead: a dense 12-node graph has 66 edges,
#: and the weak ones only hide the strong.
EDGES_PER_LEAD = 2

#: ``x0, y0, x1, y1`` in canvas pixels, ends exclusive.
Box = tuple[int, int, int, int]
BGR = tuple[int, int, int]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_NODE_FONT = (0.55, 2)
_EDGE_FONT = (0.45, 1)
_LEGEND_FONT = (0.45, 1)
_TITLE_FONT = (0.7, 2)
_BACKGROUND: BGR = (250, 250, 250)
_EDGE_DARK: BGR = (150, 120, 90)  # the original edge colour; the strongest edges keep it
_EDGE_LIGHT: BGR = (222, 212, 202)
_GROUP_EDGE: BGR = (212, 212, 212)


@dataclass(frozen=True)
class NodePlan:
    """One drawn node: a lead's face, or the single node standing for all minor characters.

    ``ring`` is the lead's distance class from the middle (0 = the centre, 1 = inner ring, 2 = outer
    ring; every node of the small-cast circle is on ring 1); the minor group's ring is -1."""

    key: int  # character id, or MINOR_GROUP
    members: tuple[int, ...]  # the characters the node stands for
    centre: tuple[int, int]
    diameter: int
    ring: int
    label: tuple[str, ...]  # lines
    label_box: Box
    screen_time_s: float
    share: float

    @property
    def is_group(self) -> bool:
        return self.key == MINOR_GROUP


@dataclass(frozen=True)
class EdgePlan:
    """One drawn edge between two node keys (a lead and a lead, or a lead and the minor group, whose
    counts are then summed over the minor characters)."""

    a: int
    b: int
    shots: int
    frames: int
    width: int
    colour: BGR
    label: str | None = None
    label_box: Box | None = None


@dataclass(frozen=True)
class GraphPlan:
    """What ``render_graph_png`` draws: leads (most prominent first) and the grouped minor characters,
    node and edge geometry, every text box. ``hidden_edges`` counts lead pairs left out as too weak."""

    size: tuple[int, int]
    layout: str  # "empty", "circle" (small cast) or "rings" (most prominent in the centre)
    leads: tuple[int, ...]
    minor: tuple[int, ...]
    nodes: tuple[NodePlan, ...]  # leads in prominence order, then the minor group if any
    edges: tuple[EdgePlan, ...]  # in drawing order: group edges, then weakest to strongest
    hidden_edges: int = 0
    title: str | None = None
    title_box: Box | None = None
    legend: tuple[str, ...] = ()
    legend_box: Box | None = None

    def node(self, key: int) -> NodePlan:
        return next(n for n in self.nodes if n.key == key)

    @property
    def text_boxes(self) -> list[Box]:
        """Every box holding text: title, legend, node labels, edge labels."""
        boxes = [b for b in (self.title_box, self.legend_box) if b is not None]
        boxes += [n.label_box for n in self.nodes]
        boxes += [e.label_box for e in self.edges if e.label_box is not None]
        return boxes


def prominence_order(g: nx.Graph) -> list[int]:
    """Characters, most prominent first: screen time, then eigenvector centrality, then id (the order
    of ``prominence_rank`` in the ``character_nodes`` table)."""
    return sorted(
        g.nodes,
        key=lambda v: (-float(g.nodes[v].get("screen_time_s", 0.0)), -g.nodes[v].get("eigenvector", 0.0), v),
    )


def plan_graph(
    g: nx.Graph,
    *,
    size: tuple[int, int] = (960, 720),
    title: str | None = None,
    max_leads: int = MAX_LEADS,
    min_lead_share: float = MIN_LEAD_SHARE,
) -> GraphPlan:
    """Where everything of the character picture goes.

    A small cast (up to ``CIRCLE_MAX``) keeps the original design: faces on a circle, the most
    prominent at the top, every edge labelled. A bigger one puts the most prominent lead in the centre
    and the other leads on an inner and an outer ring by prominence; minor characters (``split_cast``)
    become one grey node in a corner whose edges to the leads sum their shared shots, and only the
    strongest lead pairs are drawn, darker and wider by shared shots. Labels are placed one by one,
    most prominent first, at the first spot clear of every face and earlier text.
    """
    w, h = size
    title_box = _title_box(title) if title else None
    reserved = [title_box] if title_box else []
    order = prominence_order(g)
    shares = {v: float(g.nodes[v].get("screen_time_share", 0.0)) for v in order}
    leads, minor = split_cast([(v, shares[v]) for v in order], max_leads=max_leads, min_share=min_lead_share)
    if not leads:
        return GraphPlan(size, "empty", (), (), (), (), title=title, title_box=title_box)
    circle = not minor and len(leads) <= CIRCLE_MAX
    edges, hidden, top_shots = _plan_edges(g, leads, minor, circle)
    top_y, bottom_y = (title_box[3] + 6) if title_box else 10, h - 4
    legend: tuple[str, ...] = ()
    legend_box = None
    if not circle:  # a caption band under the picture, so no face can sit on it
        legend = (
            "face size: screen time; most prominent in the centre; "
            f"line width: shared shots (widest {top_shots})",
        )
        rest = []
        if minor:
            rest.append(f"grey lines: shots shared with the {len(minor)} minor characters")
        if hidden:
            rest.append(f"{hidden} weaker pairs not drawn")
        if rest:
            legend += ("; ".join(rest),)
        lw, lh, _, _ = _text_size(legend, _LEGEND_FONT)
        legend_box = (12, h - 8 - lh, 12 + lw, h - 8)
        reserved.append(legend_box)
        bottom_y = legend_box[1] - 4
    if circle:
        centres, diameters, rings = _circle_layout(leads, shares, w, h)
    else:
        centres, diameters, rings = _ring_layout(leads, shares, size, top_y, bottom_y)
    circles = [(centres[k], diameters[k] / 2) for k in leads]
    mid = (w / 2, (top_y + bottom_y) / 2)
    nodes = []
    for v in leads:  # most prominent first: they get the best label spots
        (cx, cy), r = centres[v], diameters[v] / 2
        t = float(g.nodes[v].get("screen_time_s", 0.0))
        label = (f"#{v}  {t:.1f} s",)
        outward = (0.0, 1.0) if circle or rings[v] == 0 else (cx - mid[0], cy - mid[1])
        box, _ = _place_label(label, _NODE_FONT, (cx, cy), r, outward, circles, reserved, size)
        reserved.append(box)
        nodes.append(NodePlan(v, (v,), (cx, cy), diameters[v], rings[v], label, box, t, shares[v]))
    if minor:
        t = sum(float(g.nodes[v].get("screen_time_s", 0.0)) for v in minor)
        s = sum(shares[v] for v in minor)
        label = (f"{len(minor)} minor characters", f"{t:.1f} s, {100 * s:.1f}% together")
        d = _even(64 * _base(w, h))
        centre, box = _place_group(label, d, circles, reserved, size, top_y, bottom_y)
        centres[MINOR_GROUP] = centre
        circles.append((centre, d / 2))
        reserved.append(box)
        nodes.append(NodePlan(MINOR_GROUP, tuple(minor), centre, d, -1, label, box, t, s))

    placed = []
    for e in edges:
        if e.label is None:
            placed.append(e)
            continue
        box = _place_edge_label(
            e.label, centres[min(e.a, e.b)], centres[max(e.a, e.b)], circles, reserved, size
        )
        reserved.append(box)
        placed.append(EdgePlan(e.a, e.b, e.shots, e.frames, e.width, e.colour, e.label, box))
    return GraphPlan(
        size,
        "circle" if circle else "rings",
        tuple(leads),
        tuple(minor),
        tuple(nodes),
        tuple(placed),
        hidden,
        title,
        title_box,
        legend,
        legend_box,
    )


def _base(w: int, h: int) -> float:
    """Size unit: 1 on the default 960 x 720 canvas."""
    return min(w / 960, h / 720)


def _even(x: float) -> int:
    n = int(x)
    return n - n % 2


def _circle_layout(
    leads: list[int], shares: Mapping[int, float], w: int, h: int
) -> tuple[dict[int, tuple[int, int]], dict[int, int], dict[int, int]]:
    """The original small-cast geometry: a circle, the most prominent at the top, then clockwise by
    prominence; one scale for both axes, centred below the title; diameter 56-120 px by share."""
    if len(leads) == 1:
        unit = {leads[0]: (0.0, 0.0)}
    else:
        step = 2 * math.pi / len(leads)
        unit = {v: (math.sin(i * step), -math.cos(i * step)) for i, v in enumerate(leads)}
    xy = np.array(list(unit.values()), np.float64)
    centre = (xy.min(0) + xy.max(0)) / 2
    half = float(np.max(xy.max(0) - xy.min(0))) / 2 or 1.0
    margin = 110
    scale = min(w - 2 * margin, h - 2 * margin - 20) / 2 / half
    centres = {
        v: (int(w / 2 + (x - centre[0]) * scale), int(h / 2 + 10 + (y - centre[1]) * scale))
        for v, (x, y) in unit.items()
    }
    top = max(shares[v] for v in leads) or 1.0
    diameters = {v: _even(56 + 64 * math.sqrt(shares[v] / top)) for v in leads}
    return centres, diameters, dict.fromkeys(leads, 1)


def _ring_layout(
    leads: list[int], shares: Mapping[int, float], size: tuple[int, int], top_y: int, bottom_y: int
) -> tuple[dict[int, tuple[int, int]], dict[int, int], dict[int, int]]:
    """Most prominent lead in the centre, the next on an inner ring, the rest on an outer ring, each
    ring clockwise by prominence from the top (the outer one offset by half a step so its faces sit
    between the inner ones). Rings are ellipses stretched to the canvas's width; diameter 44-110 px by
    the square root of share, so area follows screen time."""
    w, h = size
    base = _base(w, h)
    top = max(shares[v] for v in leads) or 1.0
    diameters = {v: _even(base * (44 + 66 * math.sqrt(shares[v] / top))) for v in leads}
    others = leads[1:]
    if len(others) <= 7:
        rings = [others, []]
    else:
        n_in = max(3, round(len(others) * 0.42))
        rings = [others[:n_in], others[n_in:]]
    cx, cy = w / 2, (top_y + bottom_y) / 2
    label_h = 26 * base
    far = rings[1] or rings[0]
    d_far = max((diameters[v] for v in far), default=0)
    ry_out = (bottom_y - top_y) / 2 - d_far / 2 - label_h - 4
    rx_out = min(ry_out * 1.4, w / 2 - d_far / 2 - 12)
    radii = [(rx_out * 0.5, ry_out * 0.5), (rx_out, ry_out)] if rings[1] else [(rx_out * 0.8, ry_out * 0.8)]
    centres = {leads[0]: (int(cx), int(cy))}
    ring_of = {leads[0]: 0}
    for i, (members, (rx, ry)) in enumerate(zip(rings, radii, strict=False)):
        offset = 0.5 if i == 1 else 0.0
        for j, v in enumerate(members):
            a = 2 * math.pi * (j + offset) / len(members)
            centres[v] = (int(cx + rx * math.sin(a)), int(cy - ry * math.cos(a)))
            ring_of[v] = i + 1
    return centres, diameters, ring_of


def _plan_edges(
    g: nx.Graph, leads: list[int], minor: list[int], circle: bool
) -> tuple[list[EdgePlan], int, int]:
    """Edges to draw (weakest first, so the strong lie on top), how many lead pairs were left out,
    and the shot count of the widest.

    The small circle draws and labels every edge, as before. Otherwise a lead pair is drawn when it
    is among the ``EDGES_PER_LEAD`` x leads strongest, at least a tenth of the strongest, or a lead's
    strongest tie (no lead looks alone when it is not); shots shared with minor characters are
    summed into one grey edge per lead.
    """
    lead_set, minor_set = set(leads), set(minor)
    pairs = sorted(
        ((a, b, d) for a, b, d in g.edges(data=True) if a in lead_set and b in lead_set),
        key=lambda e: (-e[2]["shots"], -e[2]["frames"], min(e[0], e[1]), max(e[0], e[1])),
    )
    group: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for a, b, d in g.edges(data=True):
        if (a in minor_set) != (b in minor_set):
            lead = a if a in lead_set else b
            group[lead][0] += d["shots"]
            group[lead][1] += d["frames"]
    if circle:
        top = max((d["shots"] for _, _, d in pairs), default=1) or 1
        drawn = [
            EdgePlan(a, b, d["shots"], d["frames"], 1 + round(9 * d["shots"] / top), _EDGE_DARK, "")
            for a, b, d in reversed(pairs)
        ]
        return [_with_label(e) for e in drawn], 0, top
    top = max((d["shots"] for _, _, d in pairs), default=0) or max((s for s, _ in group.values()), default=1)
    top = top or 1
    strongest = {}
    for a, b, _ in pairs:  # strongest first: the first pair seen per lead is its strongest tie
        strongest.setdefault(a, (a, b))
        strongest.setdefault(b, (a, b))
    ties = set(strongest.values())
    cap = EDGES_PER_LEAD * len(leads)
    keep = [
        (a, b, d)
        for i, (a, b, d) in enumerate(pairs)
        if (i < cap and d["shots"] >= 0.1 * top) or (a, b) in ties
    ]
    hidden = len(pairs) - len(keep)
    drawn = []
    top_group = max((s for s, _ in group.values()), default=1) or 1
    for lead in sorted(group, key=lambda v: (group[v][0], v)):
        shots, frames = group[lead]
        width = 1 + round(3 * shots / top_group)
        drawn.append(EdgePlan(MINOR_GROUP, lead, shots, frames, width, _GROUP_EDGE))
    for a, b, d in reversed(keep):
        t = min(1.0, d["shots"] / top)
        colour = tuple(int(lo + (hi - lo) * t) for lo, hi in zip(_EDGE_LIGHT, _EDGE_DARK, strict=True))
        drawn.append(EdgePlan(a, b, d["shots"], d["frames"], _width(d["shots"], top), colour))  # type: ignore[arg-type]
    if len(drawn) <= 10:
        drawn = [_with_label(e) for e in drawn]
    return drawn, hidden, top


def _width(shots: int, top: int) -> int:
    """Line width 1-8 px by shared shots, the widest drawn lead pair at 8."""
    return 1 + round(7 * min(1.0, shots / top))


def _with_label(e: EdgePlan) -> EdgePlan:
    return EdgePlan(e.a, e.b, e.shots, e.frames, e.width, e.colour, f"{e.shots} sh / {e.frames} kf")


def _text_size(lines: Sequence[str], font: tuple[float, int]) -> tuple[int, int, int, int]:
    """Width and height of a text box for ``lines`` (3 px side padding, as the original labels), the
    line pitch and the cap height."""
    sizes = [cv2.getTextSize(line, _FONT, font[0], font[1])[0] for line in lines]
    th = max(s[1] for s in sizes)
    pitch = th + 8
    return max(s[0] for s in sizes) + 6, th + 9 + (len(lines) - 1) * pitch, pitch, th


def _title_box(title: str) -> Box:
    (tw, th), _ = cv2.getTextSize(title, _FONT, *_TITLE_FONT)
    return (16, 30 - th - 2, 16 + tw, 30 + 6)


def _overlap(a: Box, b: Box) -> int:
    """Overlapping area of two boxes (0 when apart)."""
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _hits_circle(box: Box, centre: tuple[float, float], r: float, pad: float = 2.0) -> bool:
    nx_ = min(max(centre[0], box[0]), box[2])
    ny_ = min(max(centre[1], box[1]), box[3])
    return (nx_ - centre[0]) ** 2 + (ny_ - centre[1]) ** 2 < (r + pad) ** 2


def _clash(
    box: Box, circles: Sequence[tuple[tuple[int, int], float]], taken: Sequence[Box], size: tuple[int, int]
) -> float:
    """How badly ``box`` collides: 0 when it is on the canvas, clear of every circle and taken box."""
    w, h = size
    cost = 0.0
    if box[0] < 2 or box[1] < 2 or box[2] > w - 2 or box[3] > h - 2:
        cost += 1e6
    for c, r in circles:
        if _hits_circle(box, c, r):
            cost += _overlap(box, (int(c[0] - r), int(c[1] - r), int(c[0] + r), int(c[1] + r))) + 1
    for b in taken:
        cost += _overlap(box, b) * 2
    return cost


def _place_label(
    lines: Sequence[str],
    font: tuple[float, int],
    centre: tuple[int, int],
    r: float,
    outward: tuple[float, float],
    circles: Sequence[tuple[tuple[int, int], float]],
    taken: Sequence[Box],
    size: tuple[int, int],
) -> tuple[Box, float]:
    """A label box beside its circle: below by default, else the side facing away from the middle
    (``outward``), then the others, then two rows further out; the first spot clear of faces, earlier
    labels and the canvas edge wins, else the least colliding one (returned with its ``_clash`` cost)."""
    bw, bh, _, _ = _text_size(lines, font)
    gap, diag = 2, 0.72 * r
    cands = [
        (0.0, r + gap + bh / 2),
        (0.0, -(r + gap + bh / 2)),
        (r + gap + bw / 2, 0.0),
        (-(r + gap + bw / 2), 0.0),
        (diag + gap + bw / 2, diag + gap + bh / 2),
        (-(diag + gap + bw / 2), diag + gap + bh / 2),
        (diag + gap + bw / 2, -(diag + gap + bh / 2)),
        (-(diag + gap + bw / 2), -(diag + gap + bh / 2)),
    ]
    norm = math.hypot(*outward) or 1.0
    ox, oy = outward[0] / norm, outward[1] / norm

    def preference(off: tuple[float, float]) -> float:
        length = math.hypot(*off) or 1.0
        return (off[0] * ox + off[1] * oy) / length + (0.3 if off[1] > 0 and off[0] == 0 else 0.0)

    cands.sort(key=preference, reverse=True)
    cands += [(0.0, r + 2 * gap + 1.5 * bh + 4), (0.0, -(r + 2 * gap + 1.5 * bh + 4))]
    w, h = size
    best, best_cost = None, math.inf
    for dx, dy in cands:
        x0, y0 = round(centre[0] + dx - bw / 2), round(centre[1] + dy - bh / 2)
        # The spot itself, then the same spot pushed back onto the canvas (a face near the edge).
        x1, y1 = min(max(x0, 2), w - 2 - bw), min(max(y0, 2), h - 2 - bh)
        for box in ((x0, y0, x0 + bw, y0 + bh), (x1, y1, x1 + bw, y1 + bh)):
            cost = _clash(box, circles, taken, size)
            if cost == 0:
                return box, 0.0
            if cost < best_cost:
                best, best_cost = box, cost
    assert best is not None
    return best, best_cost


def _place_group(
    label: Sequence[str],
    d: int,
    circles: Sequence[tuple[tuple[int, int], float]],
    taken: Sequence[Box],
    size: tuple[int, int],
    top_y: int,
    bottom_y: int,
) -> tuple[tuple[int, int], Box]:
    """Centre and label box of the minor-characters node: the first canvas corner (bottom right, top
    right, bottom left, top left: what an elliptical layout leaves free) where the node and its label
    clear every face and text placed so far, else the least crowded corner."""
    w, _ = size
    r = d // 2
    corners = [
        (w - 20 - r, bottom_y - 6 - r),
        (w - 20 - r, top_y + 6 + r),
        (20 + r, bottom_y - 6 - r),
        (20 + r, top_y + 6 + r),
    ]
    best, best_cost = None, math.inf
    for cx, cy in corners:
        own = (cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2)
        cost = _clash(own, circles, taken, size) if cy - r >= top_y and cy + r <= bottom_y else 1e6
        box, label_cost = _place_label(
            label, _NODE_FONT, (cx, cy), r, (w / 2 - cx, 0.0), circles, taken, size
        )
        if cost + label_cost == 0:
            return (cx, cy), box
        if cost + label_cost < best_cost:
            best, best_cost = ((cx, cy), box), cost + label_cost
    assert best is not None
    return best


def _place_edge_label(
    label: str,
    lo: tuple[int, int],
    hi: tuple[int, int],
    circles: Sequence[tuple[tuple[int, int], float]],
    taken: Sequence[Box],
    size: tuple[int, int],
) -> Box:
    """An edge's count label on the edge, a third of the way from its lower id (so crossing edges
    keep theirs apart), slid along the edge when that spot is taken."""
    bw, bh, _, _ = _text_size([label], _EDGE_FONT)
    best, best_cost = None, math.inf
    for t in (0.36, 0.5, 0.26, 0.62, 0.18, 0.72, 0.3, 0.44, 0.56, 0.8):
        mx, my = lo[0] + t * (hi[0] - lo[0]), lo[1] + t * (hi[1] - lo[1])
        x0, y0 = round(mx - bw / 2), round(my - bh / 2)
        box = (x0, y0, x0 + bw, y0 + bh)
        cost = _clash(box, circles, taken, size)
        if cost == 0:
            return box
        if cost < best_cost:
            best, best_cost = box, cost
    assert best is not None
    return best


def _circle_face(face: np.ndarray | None, d: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``d`` x ``d`` BGR tile of the face and its circular mask."""
    tile = np.full((d, d, 3), 90, np.uint8)
    if face is not None and face.size:
        tile = cv2.resize(
            cv2.cvtColor(np.ascontiguousarray(face), cv2.COLOR_RGB2BGR), (d, d), interpolation=cv2.INTER_AREA
        )
    mask = np.zeros((d, d), np.uint8)
    cv2.circle(mask, (d // 2, d // 2), d // 2 - 1, 255, -1, cv2.LINE_AA)
    return tile, mask


def _text(
    canvas: np.ndarray,
    box: Box,
    lines: Sequence[str],
    font: tuple[float, int],
    colour: BGR,
    *,
    left: bool = False,
) -> None:
    """``lines`` in ``box`` (centred, or ``left``-aligned) over a background-coloured patch, so the
    edges running beneath a label do not cross its letters."""
    _, _, pitch, th = _text_size(lines, font)
    cv2.rectangle(canvas, (box[0], box[1]), (box[2] - 1, box[3] - 1), _BACKGROUND, -1)
    for i, line in enumerate(lines):
        (tw, _), _ = cv2.getTextSize(line, _FONT, *font)
        x = box[0] + 3 if left else (box[0] + box[2]) // 2 - tw // 2
        y = box[1] + 4 + th + i * pitch
        cv2.putText(canvas, line, (x, y), _FONT, font[0], colour, font[1], cv2.LINE_AA)


def draw_graph_png(
    g: nx.Graph,
    face_images: Mapping[int, np.ndarray],
    *,
    size: tuple[int, int] = (960, 720),
    title: str | None = None,
    max_leads: int = MAX_LEADS,
) -> bytes:
    """PNG bytes of the character graph (``plan_graph`` says what goes where): each lead as its face
    in a circle (diameter by screen-time share) with ``#id  12.3 s`` beside it, edges by shared shots,
    and, for a big cast, the minor characters as one grey node."""
    return render_graph_png(plan_graph(g, size=size, title=title, max_leads=max_leads), face_images)


def render_graph_png(plan: GraphPlan, face_images: Mapping[int, np.ndarray]) -> bytes:
    """PNG bytes of a ``GraphPlan``; ``face_images`` are RGB crops by character id (grey when missing)."""
    w, h = plan.size
    canvas = np.full((h, w, 3), _BACKGROUND, np.uint8)
    if plan.title and plan.title_box:
        cv2.putText(canvas, plan.title, (16, 30), _FONT, _TITLE_FONT[0], (40, 40, 40), 2, cv2.LINE_AA)
    if not plan.nodes:
        cv2.putText(canvas, "no characters", (w // 2 - 90, h // 2), _FONT, 0.8, (80, 80, 80), 2)
        return _png(canvas)
    at = {n.key: n.centre for n in plan.nodes}
    for e in plan.edges:
        cv2.line(canvas, at[e.a], at[e.b], e.colour, e.width, cv2.LINE_AA)
    for e in plan.edges:
        if e.label and e.label_box:
            _text(canvas, e.label_box, [e.label], _EDGE_FONT, (90, 60, 30))
    for n in plan.nodes:
        cx, cy = n.centre
        d = n.diameter
        if n.is_group:
            cv2.circle(canvas, (cx, cy), d // 2, (226, 226, 226), -1, cv2.LINE_AA)
            cv2.circle(canvas, (cx, cy), d // 2, (130, 130, 130), 2, cv2.LINE_AA)
            text = f"+{len(n.members)}"
            (tw, th), _ = cv2.getTextSize(text, _FONT, 0.75, 2)
            cv2.putText(canvas, text, (cx - tw // 2, cy + th // 2), _FONT, 0.75, (70, 70, 70), 2, cv2.LINE_AA)
            continue
        tile, mask = _circle_face(face_images.get(n.key), d)
        x0, y0 = cx - d // 2, cy - d // 2
        xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + d), min(h, y0 + d)
        if xb > xa and yb > ya:
            region = canvas[ya:yb, xa:xb]
            t = tile[ya - y0 : yb - y0, xa - x0 : xb - x0]
            m = mask[ya - y0 : yb - y0, xa - x0 : xb - x0, None].astype(np.float32) / 255
            region[:] = (t * m + region * (1 - m)).astype(np.uint8)
        cv2.circle(canvas, (cx, cy), d // 2, (60, 60, 60), 2, cv2.LINE_AA)
    for n in plan.nodes:
        _text(canvas, n.label_box, n.label, _NODE_FONT, (80, 80, 80) if n.is_group else (20, 20, 20))
    if plan.legend and plan.legend_box:
        _text(canvas, plan.legend_box, plan.legend, _LEGEND_FONT, (110, 110, 110), left=True)
    return _png(canvas)


def _png(bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:  # pragma: no cover - OpenCV always encodes PNG
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
