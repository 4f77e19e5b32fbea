"""From tracks to characters: constrained clustering, screen time, prominence order, background.

We cluster tracks, not faces. A track's descriptor is the mean of its few embedded faces (averaging
cancels pose and blur noise that makes single-face clustering chain different people together). Two
tracks seen in the same keyframe are different people: that cannot-link is given to average-linkage
agglomerative clustering as a prohibitive distance, which in average (or complete) linkage makes any
merge containing such a pair prohibitive too, so scipy's fast linkage honours it exactly.

Screen time is estimated from keyframes only: each keyframe stands for the part of its shot closer to
it than to the shot's other keyframes; a track covers the span from its first to its last keyframe's
part; a character's screen time is the union of its tracks' spans.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from marquee.ops.faces.types import FaceRecord

#: Distance given to cannot-link pairs. Any finite distance above the threshold times the largest
#: product of cluster sizes keeps every merge containing such a pair above the threshold.
_CANNOT = 1e9

#: Clustering threshold (euclidean, average linkage over the mean dlib descriptor of each track). On
#: generated videos (bench/characters.py, tuning seeds 10-15) every value in 0.54-0.65 gives the same,
#: best result; 0.6 is the middle of that plateau and dlib's own same-person rule. Track means of one
#: person sit at 0.1-0.5 (up to 0.62 for a defocused appearance), of different people at >= 0.57.
DLIB_TRACK_THRESHOLD = 0.6


@dataclass(frozen=True)
class BackgroundRule:
    """A cluster is background (an extra, a passer-by, a false detection) unless it is seen enough.

    Background when its screen time is below ``min_screen_time_s``, or its share of all identified
    screen time is below ``min_share``, or it has fewer than ``min_tracks`` tracks (off by default).
    A track count is deliberately not enough to be a character: two extras seen for a second each can
    land in one cluster (similar faces, both fleeting), which then has two tracks but is still an extra.
    """

    min_screen_time_s: float = 2.0
    min_share: float = 0.005
    min_tracks: int = 0

    def is_background(self, n_tracks: int, screen_time_s: float, share: float) -> bool:
        return screen_time_s < self.min_screen_time_s or share < self.min_share or n_tracks < self.min_tracks


@dataclass
class Character:
    """A cluster of tracks: one person (or background, when ``background``)."""

    character_id: int  # 0 = most screen time; background clusters come after all characters
    screen_time_s: float
    screen_time_share: float
    n_faces: int
    n_tracks: int
    first_appearance_s: float
    representative_face_id: int
    background: bool
    track_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "character_id": self.character_id,
            "screen_time_s": round(self.screen_time_s, 3),
            "screen_time_share": round(self.screen_time_share, 4),
            "n_faces": self.n_faces,
            "n_tracks": self.n_tracks,
            "first_appearance_s": round(self.first_appearance_s, 3),
            "representative_face_id": self.representative_face_id,
            "background": self.background,
        }


def cannot_links(faces: Iterable[FaceRecord]) -> set[tuple[int, int]]:
    """Pairs of track ids (a < b) seen together in one keyframe: never the same person."""
    by_frame: dict[int, set[int]] = defaultdict(set)
    for f in faces:
        if f.track_id >= 0:
            by_frame[f.frame].add(f.track_id)
    pairs: set[tuple[int, int]] = set()
    for tracks in by_frame.values():
        ordered = sorted(tracks)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                pairs.add((a, b))
    return pairs


def track_embeddings(
    faces: Iterable[FaceRecord], face_embeddings: Mapping[int, np.ndarray], *, normalise: bool = False
) -> dict[int, np.ndarray]:
    """Mean descriptor of each track's embedded faces (L2-normalised when ``normalise``)."""
    groups: dict[int, list[np.ndarray]] = defaultdict(list)
    for f in faces:
        v = face_embeddings.get(f.face_id)
        if v is not None and f.track_id >= 0:
            groups[f.track_id].append(np.asarray(v, np.float64))
    out = {}
    for tid, vs in groups.items():
        m = np.mean(vs, axis=0)
        if normalise:
            m = m / max(float(np.linalg.norm(m)), 1e-12)
        out[tid] = m
    return out


def cluster_tracks(
    vectors: Mapping[int, np.ndarray],
    cannot_link: Iterable[tuple[int, int]] = (),
    *,
    threshold: float = DLIB_TRACK_THRESHOLD,
    method: str = "average",
) -> dict[int, int]:
    """Cluster label (0..K-1, arbitrary order) per track id; tracks in a cannot-link pair never share one.

    ``method`` is ``average`` (default: robust to one odd track) or ``complete`` (stricter); both keep
    cannot-links exactly (see the module notes). Distances are euclidean.
    """
    if method not in ("average", "complete"):
        raise ValueError(f"cluster method must be 'average' or 'complete', not {method!r}")
    ids = sorted(vectors)
    if not ids:
        return {}
    if len(ids) == 1:
        return {ids[0]: 0}
    x = np.stack([np.asarray(vectors[t], np.float64) for t in ids])
    dist = pdist(x, "euclidean")
    n = len(ids)
    pos = {t: i for i, t in enumerate(ids)}
    for a, b in cannot_link:
        i, j = pos.get(a), pos.get(b)
        if i is None or j is None or i == j:
            continue
        i, j = min(i, j), max(i, j)
        dist[n * i - i * (i + 1) // 2 + (j - i - 1)] = _CANNOT
    z = linkage(dist, method=method)
    labels = fcluster(z, t=threshold, criterion="distance") - 1
    return {t: int(labels[pos[t]]) for t in ids}


def keyframe_spans(
    keyframes: Iterable[tuple[int, float, int]],
    shots: Mapping[int, tuple[float, float]] | None = None,
    *,
    default_interval_s: float = 1.0,
) -> dict[int, tuple[float, float]]:
    """The time span each keyframe stands for: its share of its shot, split half-way to the shot's
    neighbouring keyframes and reaching the shot's bounds at either end.

    ``keyframes`` are ``(frame, time_s, shot_id)``; ``shots`` maps shot id to ``(start_s, end_s)``.
    Without shot bounds, the first and last keyframe of a shot reach ``default_interval_s / 2`` out.
    """
    by_shot: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for frame, time_s, shot_id in keyframes:
        by_shot[shot_id].append((float(time_s), int(frame)))
    half = default_interval_s / 2
    spans: dict[int, tuple[float, float]] = {}
    for shot_id, items in by_shot.items():
        items.sort()
        bounds = shots.get(shot_id) if shots else None
        for i, (t, frame) in enumerate(items):
            start = (items[i - 1][0] + t) / 2 if i > 0 else (bounds[0] if bounds else t - half)
            end = (t + items[i + 1][0]) / 2 if i + 1 < len(items) else (bounds[1] if bounds else t + half)
            if bounds:
                start, end = max(start, bounds[0]), min(end, bounds[1])
            spans[frame] = (max(0.0, min(start, t)), max(end, t))
    return spans


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return float(total)


def track_spans(
    faces: Iterable[FaceRecord], spans: Mapping[int, tuple[float, float]]
) -> dict[int, tuple[float, float]]:
    """Per track: from the start of its first keyframe's span to the end of its last one's."""
    out: dict[int, tuple[float, float]] = {}
    for f in faces:
        if f.track_id < 0:
            continue
        s, e = spans.get(f.frame, (f.time_s, f.time_s))
        cur = out.get(f.track_id)
        out[f.track_id] = (s, e) if cur is None else (min(cur[0], s), max(cur[1], e))
    return out


def summarise_clusters(
    faces: Sequence[FaceRecord],
    labels: Mapping[int, int],
    spans: Mapping[int, tuple[float, float]],
    rule: BackgroundRule | None = None,
) -> list[Character]:
    """Characters from track cluster labels, ordered by screen time (ties: earlier first).

    Sets ``character_id`` on every face of a clustered track (-1 for faces of unclustered tracks).
    Characters are numbered first (0 = most prominent), background clusters after them.
    """
    rule = rule or BackgroundRule()
    tspans = track_spans(faces, spans)
    members: dict[int, list[FaceRecord]] = defaultdict(list)
    for f in faces:
        if f.track_id in labels:
            members[labels[f.track_id]].append(f)
    stats = []
    for label, fs in members.items():
        tracks = sorted({f.track_id for f in fs})
        screen = union_length(tspans[t] for t in tracks)
        first = min(tspans[t][0] for t in tracks)
        best = max(fs, key=lambda f: (f.quality, -f.face_id))
        stats.append((label, tracks, fs, screen, first, best))
    total = sum(s[3] for s in stats) or 1.0
    drafts = []
    for label, tracks, fs, screen, first, best in stats:
        share = screen / total
        bg = rule.is_background(len(tracks), screen, share)
        drafts.append((bg, -screen, first, label, tracks, fs, screen, share, best))
    drafts.sort(key=lambda d: d[:4])
    characters = []
    new_id = {}
    for cid, (bg, _, first, label, tracks, fs, screen, share, best) in enumerate(drafts):
        new_id[label] = cid
        characters.append(
            Character(
                character_id=cid,
                screen_time_s=float(screen),
                screen_time_share=float(share),
                n_faces=len(fs),
                n_tracks=len(tracks),
                first_appearance_s=float(first),
                representative_face_id=best.face_id,
                background=bg,
                track_ids=tracks,
            )
        )
    for f in faces:
        f.character_id = new_id[labels[f.track_id]] if f.track_id in labels else -1
    return characters
