"""Consistency checks on the characters tables (pure functions; the assets report them as checks).

Each returns a list of human-readable problems, empty when the tables agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Row = Mapping[str, Any]


def face_crop_problems(faces: Sequence[Row], exists: Callable[[str], bool]) -> list[str]:
    """Faces whose stored thumbnail is missing."""
    return [
        f"face {f['face_id']}: crop {f['crop_key']} missing"
        for f in faces
        if not f["crop_key"] or not exists(f["crop_key"])
    ]


def embedding_problems(faces: Sequence[Row], embeddings: Sequence[Row]) -> list[str]:
    """Every face has an embedding or the reason it has none; descriptors share one size."""
    problems: list[str] = []
    by_face = {e["face_id"]: e for e in embeddings}
    for f in faces:
        e = by_face.get(f["face_id"])
        if e is None:
            problems.append(f"face {f['face_id']}: no embeddings row")
        elif e["embedded"] and not e["embedding"]:
            problems.append(f"face {f['face_id']}: marked embedded but has no descriptor")
        elif not e["embedded"] and not e["reason"]:
            problems.append(f"face {f['face_id']}: not embedded and no reason given")
    extra = set(by_face) - {f["face_id"] for f in faces}
    problems += [f"embeddings row for unknown face {i}" for i in sorted(extra)[:10]]
    dims = {len(e["embedding"]) for e in embeddings if e["embedding"]}
    if len(dims) > 1:
        problems.append(f"descriptors of different sizes: {sorted(dims)}")
    return problems


def cluster_problems(faces: Sequence[Row], clusters: Sequence[Row], characters: Sequence[Row]) -> list[str]:
    """Cluster ids agree: one character per track, known ids, counts that add up, no character
    twice in one frame, ids numbered 0..K-1 with background after the characters."""
    problems: list[str] = []
    frame_of = {f["face_id"]: f["frame"] for f in faces}
    known = {c["character_id"]: c for c in characters}
    ids = sorted(known)
    if ids != list(range(len(ids))):
        problems.append(f"character ids are not 0..{len(ids) - 1}: {ids[:10]}")
    flags = [known[i]["background"] for i in ids]
    if flags != sorted(flags):
        problems.append("a background cluster is numbered before a character")
    per_track: dict[int, set[int]] = defaultdict(set)
    faces_of: dict[int, int] = defaultdict(int)
    tracks_of: dict[int, set[int]] = defaultdict(set)
    seen: dict[tuple[int, int], int] = {}
    for r in clusters:
        cid, tid = r["character_id"], r["track_id"]
        per_track[tid].add(cid)
        if r["face_id"] not in frame_of:
            problems.append(f"face_clusters row for unknown face {r['face_id']}")
            continue
        if cid < 0:
            continue
        if cid not in known:
            problems.append(f"face {r['face_id']}: unknown character {cid}")
            continue
        if bool(r["background"]) != bool(known[cid]["background"]):
            problems.append(f"face {r['face_id']}: background flag differs from character {cid}")
        faces_of[cid] += 1
        tracks_of[cid].add(tid)
        key = (frame_of[r["face_id"]], cid)
        if key in seen:
            problems.append(f"frame {key[0]}: character {cid} twice (faces {seen[key]} and {r['face_id']})")
        seen[key] = r["face_id"]
    missing = set(frame_of) - {r["face_id"] for r in clusters}
    problems += [f"face {i}: no face_clusters row" for i in sorted(missing)[:10]]
    problems += [f"track {t}: split over characters {sorted(c)}" for t, c in per_track.items() if len(c) > 1]
    for cid, c in known.items():
        if c["n_faces"] != faces_of[cid] or c["n_tracks"] != len(tracks_of[cid]):
            problems.append(
                f"character {cid}: table says {c['n_faces']} faces / {c['n_tracks']} tracks, "
                f"face_clusters has {faces_of[cid]} / {len(tracks_of[cid])}"
            )
    return problems


def graph_problems(characters: Sequence[Row], nodes: Sequence[Row], edges: Sequence[Row]) -> list[str]:
    """Graph nodes are exactly the non-background characters; edges join known nodes, once each."""
    problems: list[str] = []
    want = {c["character_id"] for c in characters if not c["background"]}
    have = {n["character_id"] for n in nodes}
    if want - have:
        problems.append(f"characters missing from the graph: {sorted(want - have)}")
    if have - want:
        problems.append(f"graph nodes that are not characters: {sorted(have - want)}")
    pairs = set()
    for e in edges:
        a, b = e["a"], e["b"]
        if a not in have or b not in have:
            problems.append(f"edge {a}-{b}: joins an unknown node")
        if a >= b:
            problems.append(f"edge {a}-{b}: not ordered a < b (a self-loop or duplicate)")
        if (a, b) in pairs:
            problems.append(f"edge {a}-{b}: listed twice")
        pairs.add((a, b))
        if e["shots"] < 1 or e["frames"] < 0:
            problems.append(f"edge {a}-{b}: counts {e['frames']} frames / {e['shots']} shots")
    return problems
