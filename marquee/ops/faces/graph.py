"""The character interaction graph: who appears with whom, and how central each character is.

Nodes are characters (background clusters are left out); an edge counts the keyframes in which two
characters are both visible (``frames``) and the shots in which both appear (``shots``). Shot
co-occurrence is the better interaction signal (shot/reverse-shot dialogue rarely puts both faces in
one frame), so centrality is computed on it. The picture is drawn with OpenCV (matplotlib is not a
dependency): face crops as nodes, edge width by shot count, screen time under each face.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations

import cv2
import networkx as nx
import numpy as np

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


def draw_graph_png(
    g: nx.Graph,
    face_images: Mapping[int, np.ndarray],
    *,
    size: tuple[int, int] = (960, 720),
    title: str | None = None,
    seed: int = 0,
) -> bytes:
    """PNG bytes: each character as its face in a circle (diameter by screen-time share), edges by
    shared shots (width) with the count written on them, ``#id  12.3 s`` under each face."""
    w, h = size
    canvas = np.full((h, w, 3), 250, np.uint8)
    if title:
        cv2.putText(canvas, title, (16, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (40, 40, 40), 2, cv2.LINE_AA)
    nodes = sorted(g.nodes)
    if not nodes:
        cv2.putText(
            canvas, "no characters", (w // 2 - 90, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (80, 80, 80), 2
        )
        return _png(canvas)
    pos = _layout(g, nodes, seed)
    # One scale for both axes (a circle stays round), the drawing centred below the title.
    xy = np.array([pos[v] for v in nodes], np.float64)
    centre = (xy.min(0) + xy.max(0)) / 2
    half = float(np.max(xy.max(0) - xy.min(0))) / 2 or 1.0
    margin = 110
    scale = min(w - 2 * margin, h - 2 * margin - 20) / 2 / half
    px = {
        v: (int(w / 2 + (pos[v][0] - centre[0]) * scale), int(h / 2 + 10 + (pos[v][1] - centre[1]) * scale))
        for v in nodes
    }
    top_shots = max((d["shots"] for _, _, d in g.edges(data=True)), default=1) or 1
    for a, b, d in g.edges(data=True):
        thick = 1 + round(9 * d["shots"] / top_shots)
        cv2.line(canvas, px[a], px[b], (150, 120, 90), thick, cv2.LINE_AA)
        # Labels sit a third of the way from the lower id, so crossing edges keep theirs apart.
        lo_v, hi_v = (a, b) if a < b else (b, a)
        mx = int(px[lo_v][0] + 0.36 * (px[hi_v][0] - px[lo_v][0]))
        my = int(px[lo_v][1] + 0.36 * (px[hi_v][1] - px[lo_v][1]))
        label = f"{d['shots']} sh / {d['frames']} kf"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        cv2.rectangle(
            canvas, (mx - tw // 2 - 3, my - th - 4), (mx + tw // 2 + 3, my + 4), (250, 250, 250), -1
        )
        cv2.putText(
            canvas, label, (mx - tw // 2, my), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 60, 30), 1, cv2.LINE_AA
        )
    shares = {v: float(g.nodes[v].get("screen_time_share", 0.0)) for v in nodes}
    top_share = max(shares.values()) or 1.0
    for v in nodes:
        d = int(56 + 64 * math.sqrt(shares[v] / top_share))
        d -= d % 2
        tile, mask = _circle_face(face_images.get(v), d)
        cx, cy = px[v]
        x0, y0 = cx - d // 2, cy - d // 2
        xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + d), min(h, y0 + d)
        if xb > xa and yb > ya:
            region = canvas[ya:yb, xa:xb]
            t = tile[ya - y0 : yb - y0, xa - x0 : xb - x0]
            m = mask[ya - y0 : yb - y0, xa - x0 : xb - x0, None].astype(np.float32) / 255
            region[:] = (t * m + region * (1 - m)).astype(np.uint8)
        cv2.circle(canvas, (cx, cy), d // 2, (60, 60, 60), 2, cv2.LINE_AA)
        label = f"#{v}  {g.nodes[v].get('screen_time_s', 0):.1f} s"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 2)
        ty = cy + d // 2 + 20
        cv2.rectangle(
            canvas, (cx - tw // 2 - 3, ty - th - 4), (cx + tw // 2 + 3, ty + 5), (250, 250, 250), -1
        )
        cv2.putText(
            canvas,
            label,
            (cx - tw // 2, ty),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.55,
            (20, 20, 20),
            2,
            cv2.LINE_AA,
        )
    return _png(canvas)


def _layout(g: nx.Graph, nodes: list[int], seed: int) -> dict[int, np.ndarray]:
    """Node positions: a circle for a cast of up to 12 (most prominent at the top, then clockwise by
    screen time), which never piles nodes up or throws an isolated one into a corner; a spring layout
    for bigger graphs."""
    if len(nodes) == 1:
        return {nodes[0]: np.zeros(2)}
    if len(nodes) <= 12:
        order = sorted(nodes, key=lambda v: (-float(g.nodes[v].get("screen_time_s", 0.0)), v))
        step = 2 * math.pi / len(order)
        return {v: np.array([math.sin(i * step), -math.cos(i * step)]) for i, v in enumerate(order)}
    weighted = nx.Graph()
    weighted.add_nodes_from(nodes)
    weighted.add_edges_from(
        (a, b, {"weight": 1.0 + math.log1p(d["shots"])}) for a, b, d in g.edges(data=True)
    )
    return nx.spring_layout(weighted, seed=seed, weight="weight", k=1.6 / math.sqrt(len(nodes)))


def _png(bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:  # pragma: no cover - OpenCV always encodes PNG
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
