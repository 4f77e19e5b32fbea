"""The characters stages' table rows, to and from the in-memory records (the schemas are declared in
``marquee.resources.tables``).

Each stage stores a table per title, and the next stage rebuilds what it needs from it, so a stage can
be re-run alone (after a model update) without re-running the ones before. Boxes and landmarks are
stored in source-video pixels (display orientation), as ``marquee characters`` prints them;
``keyframe_scale`` (source pixels per keyframe pixel) maps them back onto the stored keyframe images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pyarrow as pa

from marquee.ops.faces.cluster import Character
from marquee.ops.faces.types import FaceRecord


def faces_rows(
    faces: Sequence[FaceRecord], scale: float, detector: str, crop_keys: Mapping[int, str]
) -> list[dict[str, Any]]:
    """The ``faces`` rows from records in keyframe pixels; ``scale`` maps them to source pixels."""
    rows = []
    for f in faces:
        box = np.asarray(f.box, np.float64) * scale
        marks = np.asarray(f.landmarks, np.float64).reshape(10) * scale
        rows.append(
            {
                "face_id": f.face_id,
                "frame": f.frame,
                "time_s": round(float(f.time_s), 6),
                "shot_id": f.shot_id,
                "x1": round(float(box[0]), 2),
                "y1": round(float(box[1]), 2),
                "x2": round(float(box[2]), 2),
                "y2": round(float(box[3]), 2),
                "landmarks": [round(float(v), 2) for v in marks],
                "score": float(f.score),
                "quality": float(f.quality),
                "sharpness": float(f.sharpness),
                "frontality": float(f.frontality),
                "size": float(f.size),
                "keyframe_scale": float(scale),
                "track_id": f.track_id,
                "detector": detector,
                "crop_key": crop_keys.get(f.face_id),
            }
        )
    return rows


def faces_from_table(table: pa.Table) -> list[FaceRecord]:
    """Face records in keyframe pixels (for cropping and embedding the stored keyframe images)."""
    out = []
    for r in table.sort_by("face_id").to_pylist():
        s = float(r["keyframe_scale"]) or 1.0
        out.append(
            FaceRecord(
                face_id=int(r["face_id"]),
                frame=int(r["frame"]),
                time_s=float(r["time_s"]),
                shot_id=int(r["shot_id"]),
                box=np.asarray([r["x1"], r["y1"], r["x2"], r["y2"]], np.float32) / s,
                score=float(r["score"]),
                landmarks=np.asarray(r["landmarks"], np.float32).reshape(5, 2) / s,
                quality=float(r["quality"]),
                sharpness=float(r["sharpness"]),
                frontality=float(r["frontality"]),
                size=float(r["size"]),
                track_id=int(r["track_id"]),
            )
        )
    return out


def embeddings_rows(
    faces: Sequence[FaceRecord], vectors: Mapping[int, np.ndarray], embedder: str
) -> list[dict[str, Any]]:
    """One row per face: its descriptor when embedded, else the reason it was not."""
    return [
        {
            "face_id": f.face_id,
            "track_id": f.track_id,
            "embedded": f.face_id in vectors,
            "reason": f.embed_reason,
            "embedder": embedder,
            "embedding": _as_list(vectors.get(f.face_id)),
        }
        for f in faces
    ]


def embeddings_from_table(table: pa.Table, faces: Sequence[FaceRecord] = ()) -> dict[int, np.ndarray]:
    """face_id -> descriptor; also sets ``embedded``/``embed_reason`` on the given ``faces``."""
    vectors: dict[int, np.ndarray] = {}
    reasons: dict[int, tuple[bool, str]] = {}
    for r in table.to_pylist():
        reasons[int(r["face_id"])] = (bool(r["embedded"]), r["reason"] or "")
        if r["embedded"] and r["embedding"] is not None:
            vectors[int(r["face_id"])] = np.asarray(r["embedding"], np.float32)
    for f in faces:
        f.embedded, f.embed_reason = reasons.get(f.face_id, (False, ""))
    return vectors


def _as_list(vector: np.ndarray | None) -> list[float] | None:
    return None if vector is None else np.asarray(vector, np.float32).tolist()


def clusters_rows(faces: Sequence[FaceRecord], characters: Sequence[Character]) -> list[dict[str, Any]]:
    background = {c.character_id for c in characters if c.background}
    return [
        {
            "face_id": f.face_id,
            "track_id": f.track_id,
            "character_id": f.character_id,
            "background": f.character_id in background,
        }
        for f in faces
    ]


def characters_rows(
    characters: Sequence[Character], face_keys: Mapping[int, str | None], embedder: str
) -> list[dict[str, Any]]:
    return [
        c.as_dict()
        | {"track_ids": list(c.track_ids), "face_key": face_keys.get(c.character_id), "embedder": embedder}
        for c in characters
    ]


def characters_from_table(table: pa.Table) -> list[Character]:
    return [
        Character(
            character_id=int(r["character_id"]),
            screen_time_s=float(r["screen_time_s"]),
            screen_time_share=float(r["screen_time_share"]),
            n_faces=int(r["n_faces"]),
            n_tracks=int(r["n_tracks"]),
            first_appearance_s=float(r["first_appearance_s"]),
            representative_face_id=int(r["representative_face_id"]),
            background=bool(r["background"]),
            track_ids=[int(t) for t in r["track_ids"] or []],
        )
        for r in table.sort_by("character_id").to_pylist()
    ]


def assign_characters(faces: Sequence[FaceRecord], clusters: pa.Table) -> None:
    """Set ``character_id`` on ``faces`` from a ``face_clusters`` table."""
    ids = dict(
        zip(clusters.column("face_id").to_pylist(), clusters.column("character_id").to_pylist(), strict=True)
    )
    for f in faces:
        f.character_id = int(ids.get(f.face_id, -1))


def graph_rows(g: nx.Graph) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Node and edge rows of a character graph; nodes ranked by screen time, then centrality."""
    nodes: list[dict[str, Any]] = [{"character_id": int(v), **d} for v, d in g.nodes(data=True)]
    nodes.sort(key=lambda n: (-n["screen_time_s"], -n.get("eigenvector", 0.0), n["character_id"]))
    for rank, n in enumerate(nodes, 1):
        n["prominence_rank"] = rank
    edges = [
        {"a": min(a, b), "b": max(a, b), "frames": int(d["frames"]), "shots": int(d["shots"])}
        for a, b, d in g.edges(data=True)
    ]
    edges.sort(key=lambda e: (e["a"], e["b"]))
    return nodes, edges
