"""Characters of a title from its keyframes: detect, track, embed a few faces per track, cluster, graph.

Framework-free and bounded in memory: keyframes arrive in time order in batches, faces are detected per
batch and tracked at once, and only one small record per face stays; then the best few faces of each
track are embedded from the keyframes read again (one picture in memory at a time), and the tracks are
clustered. What stays for the whole title is one record per face and one descriptor per embedded face.

The stages (``detect_and_track``, ``embed_tracks``, ``cluster_characters``) are what the Dagster
assets call, storing each stage's table between them; ``characters_from_images`` (``marquee
characters``, benchmarks) composes the same functions in the same order, so both find the same
characters.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from marquee.ops.faces.cluster import (
    BackgroundRule,
    Character,
    cannot_links,
    cluster_tracks,
    keyframe_spans,
    summarise_clusters,
    track_embeddings,
)
from marquee.ops.faces.detect import FaceDetector, detector_identity
from marquee.ops.faces.embed import (
    EMBED_CHOSEN,
    EMBED_NOT_CHOSEN,
    EMBED_TOO_SMALL,
    FaceEmbedder,
    embedder_identity,
    select_faces_to_embed,
)
from marquee.ops.faces.graph import character_graph, draw_graph_png, graph_edges
from marquee.ops.faces.quality import (
    MIN_EMBED_SIZE,
    FaceCrop,
    FaceQuality,
    face_quality,
    face_thumbnail,
)
from marquee.ops.faces.track import FaceTracker, TrackerParams, appearance_feature
from marquee.ops.faces.types import FaceRecord
from marquee.ops.prefetch import prefetched
from marquee.ops.progress import ProgressFactory, ProgressFn, no_progress


@dataclass(frozen=True)
class KeyframeImage:
    """One keyframe: its frame index, time, shot and the RGB picture (as stored, already upright)."""

    frame: int
    time_s: float
    shot_id: int
    image: np.ndarray


@dataclass(frozen=True)
class CharacterParams:
    """Everything that changes the characters found (part of the stage's version)."""

    batch_size: int = 8  # keyframes per detector call
    # Faces embedded per track (the best by quality). Embedding is ~80% of the stage's time; on the
    # benchmark k=2 scores as k=3 (k=1 loses on the real clip) at 1.35x the speed.
    faces_per_track: int = 2
    min_embed_size: float = MIN_EMBED_SIZE  # smaller faces are never embedded
    threshold: float | None = None  # track clustering distance; None: the embedder's ``track_threshold``
    method: str = "average"  # linkage: average | complete
    use_appearance: bool = True  # colour-histogram veto in tracking
    tracker: TrackerParams = field(default_factory=TrackerParams)
    background: BackgroundRule = field(default_factory=BackgroundRule)
    default_interval_s: float = 1.0  # span of a keyframe at a shot end when shot bounds are unknown

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["tracker"] = dict(self.tracker.__dict__)
        d["background"] = dict(self.background.__dict__)
        return d


@dataclass
class CharactersResult:
    """Faces (with track and character ids), characters, the graph, and how long each stage took."""

    faces: list[FaceRecord]
    embeddings: dict[int, np.ndarray]  # face_id -> descriptor, for the embedded faces
    characters: list[Character]
    graph: nx.Graph
    thumbnails: dict[int, np.ndarray]  # character_id -> RGB face thumbnail (representative face)
    n_keyframes: int
    timings: dict[str, float]
    detector: str = ""
    embedder: str = ""

    @property
    def edges(self) -> list[dict[str, int]]:
        return graph_edges(self.graph)

    @property
    def n_embedded(self) -> int:
        return sum(f.embedded for f in self.faces)

    def graph_png(self, title: str | None = None) -> bytes:
        return draw_graph_png(self.graph, self.thumbnails, title=title)

    def to_dict(self, box_scale: float = 1.0) -> dict[str, Any]:
        """The JSON shape of ``marquee characters``; ``box_scale`` maps keyframe pixels to source pixels."""
        nodes = self.graph.nodes
        characters = []
        for c in self.characters:
            row = c.as_dict()
            if c.character_id in nodes:
                row["degree"] = nodes[c.character_id]["degree"]
                row["eigenvector"] = nodes[c.character_id]["eigenvector"]
            characters.append(row)
        faces = [
            {
                "face_id": f.face_id,
                "frame": f.frame,
                "time_s": round(f.time_s, 3),
                "shot_id": f.shot_id,
                "box": [round(float(v) * box_scale, 1) for v in f.box],
                "score": round(f.score, 4),
                "quality": round(f.quality, 4),
                "track_id": f.track_id,
                "character_id": f.character_id,
                "embedded": f.embedded,
                "embed_reason": f.embed_reason,
            }
            for f in self.faces
        ]
        return {
            "detector": self.detector,
            "embedder": self.embedder,
            "n_keyframes": self.n_keyframes,
            "n_faces": len(self.faces),
            "n_embedded": self.n_embedded,
            "n_tracks": len({f.track_id for f in self.faces}),
            "n_characters": sum(not c.background for c in self.characters),
            "characters": characters,
            "faces": faces,
            "edges": self.edges,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def _batched(frames: Iterable[KeyframeImage | tuple], size: int) -> Iterator[list[KeyframeImage]]:
    batch: list[KeyframeImage] = []
    last = None
    for item in frames:
        kf = item if isinstance(item, KeyframeImage) else KeyframeImage(*item)
        if last is not None and kf.frame <= last:
            raise ValueError(f"keyframes must come in increasing frame order: {kf.frame} after {last}")
        last = kf.frame
        batch.append(kf)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Builder:
    """The streaming loop of ``detect_and_track``: detect per batch, measure, track at once."""

    def __init__(
        self,
        detector: FaceDetector,
        params: CharacterParams,
        on_faces: Callable[[KeyframeImage, list[FaceRecord]], None] | None = None,
        progress: ProgressFn | None = None,
        total: int = 0,
    ) -> None:
        self.detector, self.params = detector, params
        self.on_faces = on_faces
        self.progress, self.total = progress, total
        self.tracker = FaceTracker(params.tracker)
        self.faces: list[FaceRecord] = []
        self.keyframes: list[tuple[int, float, int]] = []
        self.timings = {"detect_s": 0.0, "track_s": 0.0}

    def add(self, batch: list[KeyframeImage]) -> None:
        t0 = time.perf_counter()
        found = self.detector.detect_batch([kf.image for kf in batch])
        self.timings["detect_s"] += time.perf_counter() - t0
        for kf, dets in zip(batch, found, strict=True):
            t0 = time.perf_counter()
            self.keyframes.append((kf.frame, float(kf.time_s), kf.shot_id))
            feats = None
            if self.params.use_appearance and len(dets):
                feats = np.stack([appearance_feature(kf.image, b) for b in dets.boxes])
            ids = self.tracker.update(kf.shot_id, dets.boxes, feats)
            first = len(self.faces)
            for (box, score, marks), tid in zip(dets, ids, strict=True):
                q = face_quality(kf.image, box, marks, score)
                self.faces.append(
                    FaceRecord(
                        face_id=len(self.faces),
                        frame=kf.frame,
                        time_s=float(kf.time_s),
                        shot_id=kf.shot_id,
                        box=box.copy(),
                        score=score,
                        landmarks=marks.copy(),
                        quality=q.score,
                        sharpness=q.sharpness,
                        frontality=q.frontality,
                        size=q.size,
                        track_id=int(tid),
                        embed_reason=EMBED_TOO_SMALL
                        if q.size < self.params.min_embed_size
                        else EMBED_NOT_CHOSEN,
                    )
                )
            self.timings["track_s"] += time.perf_counter() - t0
            if self.on_faces is not None:
                self.on_faces(kf, self.faces[first:])
            self.tracker.pop_finished()
            if self.progress is not None:
                self.progress(len(self.keyframes), self.total)


def detect_and_track(
    frames: Iterable[KeyframeImage | tuple[int, float, int, np.ndarray]],
    detector: FaceDetector,
    *,
    params: CharacterParams | None = None,
    on_faces: Callable[[KeyframeImage, list[FaceRecord]], None] | None = None,
    progress: ProgressFn | None = None,
    total: int = 0,
) -> tuple[list[FaceRecord], list[tuple[int, float, int]]]:
    """Faces of every keyframe with quality and track ids (no embeddings): the ``faces`` stage.

    Returns the faces and the ``(frame, time_s, shot_id)`` of every keyframe seen (screen time needs
    the keyframes without faces too). ``on_faces(keyframe, faces)`` is called once per keyframe while
    its picture is still in memory (the asset stores face crops from it). ``progress(done, total)``
    is told each keyframe done (``total``: how many will come, 0 if unknown).
    """
    return _detect(frames, detector, params or CharacterParams(), on_faces, progress, total)[:2]


def _detect(
    frames: Iterable[KeyframeImage | tuple[int, float, int, np.ndarray]],
    detector: FaceDetector,
    params: CharacterParams,
    on_faces: Callable[[KeyframeImage, list[FaceRecord]], None] | None = None,
    progress: ProgressFn | None = None,
    total: int = 0,
) -> tuple[list[FaceRecord], list[tuple[int, float, int]], dict[str, float]]:
    b = _Builder(detector, params, on_faces, progress, total)
    if progress is not None:
        progress(0, total)
    for batch in _batched(frames, params.batch_size):
        b.add(batch)
    b.tracker.close()
    return b.faces, b.keyframes, b.timings


def embed_tracks(
    faces: Sequence[FaceRecord],
    load_image: Callable[[int], np.ndarray],
    embedder: FaceEmbedder,
    *,
    k: int = 2,
    min_size: float = MIN_EMBED_SIZE,
    progress: ProgressFn | None = None,
) -> dict[int, np.ndarray]:
    """Descriptors of the ``k`` best faces of every track: the ``face_embeddings`` stage.

    ``load_image(frame)`` returns a keyframe's RGB picture; each needed keyframe is loaded once, a few
    ahead on worker threads (JPEG decoding releases the GIL). Sets
    ``embedded`` and ``embed_reason`` on every face. Uses the stored quality scores.
    ``progress(done, total)`` counts the keyframes loaded.
    """
    by_track: dict[int, list[FaceRecord]] = defaultdict(list)
    for f in faces:
        by_track[f.track_id].append(f)
    chosen: list[FaceRecord] = []
    for fs in by_track.values():
        qs = [FaceQuality(f.sharpness, f.frontality, f.size, f.quality) for f in fs]
        choice = select_faces_to_embed(qs, k, min_size=min_size)
        for f, reason in zip(fs, choice.reasons, strict=True):
            f.embedded, f.embed_reason = False, reason
        chosen.extend(fs[i] for i in choice.chosen)
    out: dict[int, np.ndarray] = {}
    by_frame: dict[int, list[FaceRecord]] = defaultdict(list)
    for f in chosen:
        by_frame[f.frame].append(f)
    if progress is not None:
        progress(0, len(by_frame))
    # Faces are aligned as each keyframe loads (then the keyframe is dropped) and described in batches
    # across keyframes: most keyframes hold one or two faces, too few to keep the model busy.
    pending: list[tuple[FaceRecord, np.ndarray]] = []

    def describe_pending() -> None:
        vectors = embedder.describe([chip for _, chip in pending])
        for (f, _), v in zip(pending, vectors, strict=True):
            f.embedded, f.embed_reason = True, EMBED_CHOSEN
            out[f.face_id] = v
        pending.clear()

    frames = sorted(by_frame)
    images = prefetched(frames, load_image, depth=4)
    for done, (frame, image) in enumerate(zip(frames, images, strict=True), 1):
        fs = by_frame[frame]
        chips = embedder.prepare([FaceCrop(image, f.box, f.landmarks) for f in fs])
        pending.extend(zip(fs, chips, strict=True))
        if len(pending) >= embedder.batch_size:
            describe_pending()
        if progress is not None:
            progress(done, len(by_frame))
    if pending:
        describe_pending()
    return out


def cluster_characters(
    faces: Sequence[FaceRecord],
    embeddings: Mapping[int, np.ndarray],
    keyframes: Iterable[tuple[int, float, int]],
    *,
    threshold: float,
    normalised: bool = False,
    shots: Mapping[int, tuple[float, float]] | None = None,
    params: CharacterParams | None = None,
) -> tuple[list[Character], nx.Graph]:
    """Characters and their graph from faces with track ids and face descriptors: the
    ``face_clusters`` and ``character_graph`` stages. Sets ``character_id`` on the faces."""
    params = params or CharacterParams()
    vectors = track_embeddings(faces, embeddings, normalise=normalised)
    labels = cluster_tracks(vectors, cannot_links(faces), threshold=threshold, method=params.method)
    spans = keyframe_spans(keyframes, shots, default_interval_s=params.default_interval_s)
    characters = summarise_clusters(faces, labels, spans, params.background)
    return characters, character_graph(faces, characters)


def characters_from_images(
    frames: Iterable[KeyframeImage | tuple[int, float, int, np.ndarray]],
    detector: FaceDetector,
    embedder: FaceEmbedder,
    *,
    load_image: Callable[[int], np.ndarray] | None = None,
    shots: Mapping[int, tuple[float, float]] | None = None,
    params: CharacterParams | None = None,
    progress: ProgressFactory = no_progress,
    n_keyframes: int = 0,
) -> CharactersResult:
    """All the characters stages, composed exactly as the assets compose them: ``detect_and_track``
    (``faces``), ``embed_tracks`` (``face_embeddings``), ``cluster_characters`` (``face_clusters``,
    ``character_graph``). Keyframes ``(frame, time_s, shot_id, RGB image)`` come in increasing frame
    order; ``load_image(frame)`` gives a keyframe's picture again for the embedder (without it the
    pictures of ``frames``, then a sequence already in memory, are looked up). ``shots`` (shot id ->
    (start_s, end_s)) makes screen time exact at shot ends. ``progress`` makes a callback per stage
    (``n_keyframes``: how many keyframes will come, for its total)."""
    params = params or CharacterParams()
    started = time.perf_counter()
    if load_image is None:
        frames = [f if isinstance(f, KeyframeImage) else KeyframeImage(*f) for f in frames]
        pictures = {f.frame: f.image for f in frames}
        load_image = pictures.__getitem__
    faces, keyframes, timings = _detect(
        frames, detector, params, progress=progress("faces", "keyframes"), total=n_keyframes
    )
    t0 = time.perf_counter()
    embeddings = embed_tracks(
        faces,
        load_image,
        embedder,
        k=params.faces_per_track,
        min_size=params.min_embed_size,
        progress=progress("embeddings", "keyframes"),
    )
    timings["embed_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    threshold = params.threshold if params.threshold is not None else float(embedder.track_threshold)
    characters, graph = cluster_characters(
        faces,
        embeddings,
        keyframes,
        threshold=threshold,
        normalised=bool(getattr(embedder, "normalised", False)),
        shots=shots,
        params=params,
    )
    timings["cluster_s"] = time.perf_counter() - t0
    by_face = {f.face_id: f for f in faces}
    thumbs = {}
    for c in characters:
        rep = by_face[c.representative_face_id]
        thumbs[c.character_id] = face_thumbnail(load_image(rep.frame), rep.box)
    timings["total_s"] = time.perf_counter() - started
    return CharactersResult(
        faces=faces,
        embeddings=embeddings,
        characters=characters,
        graph=graph,
        thumbnails=thumbs,
        n_keyframes=len(keyframes),
        timings=timings,
        detector=detector_identity(detector),
        embedder=embedder_identity(embedder),
    )


@dataclass
class VideoKeyframes:
    """Keyframes of a plain video file (spooled JPEGs on local disk) with its shots; from
    ``video_keyframes``. ``scale`` maps keyframe pixels to source-video pixels."""

    path: str
    width: int
    height: int
    duration_s: float
    keyframes: list[Any]  # marquee.ops.keyframes.Keyframe
    shots: dict[int, tuple[float, float]]
    scale: float
    decode_s: float

    def load(self, index: int) -> np.ndarray:
        """RGB picture of keyframe ``index`` (position in ``keyframes``)."""
        import cv2

        path = self.keyframes[index].candidate.path
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"cannot read keyframe {path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    @cached_property
    def _index_of_frame(self) -> dict[int, int]:
        return {k.candidate.frame: i for i, k in enumerate(self.keyframes)}

    def load_frame(self, frame: int) -> np.ndarray:
        """RGB picture of the keyframe at video frame ``frame``."""
        return self.load(self._index_of_frame[frame])

    def images(self) -> Iterator[KeyframeImage]:
        """Keyframes in frame order, one picture in memory at a time."""
        for i, k in enumerate(self.keyframes):
            yield KeyframeImage(k.candidate.frame, k.candidate.time_s, k.shot_id, self.load(i))


@contextmanager
def video_keyframes(
    path: str | Path,
    *,
    sample_every_s: float | None = None,
    shot_detector: str | None = None,
    progress: ProgressFn | None = None,
) -> Iterator[VideoKeyframes]:
    """One decode pass over ``path`` (shots + keyframe candidates), then the keyframe choice: a few
    sharp frames per shot plus one per ``sample_every_s`` inside long shots. The spooled JPEGs are
    removed when the context exits."""
    from marquee.ops.keyframes import KeyframePolicy, KeyframeSpool, select_keyframes
    from marquee.ops.shots.registry import DEFAULT_DETECTOR, make_detector
    from marquee.ops.shots.scan import scan_video
    from marquee.ops.video import probe_video

    info = probe_video(path)
    # The defaults are the Dagster assets' (keyframes policy, shot detector), so that the plain-file
    # CLI and the assets find the same characters.
    policy = KeyframePolicy() if sample_every_s is None else KeyframePolicy(sample_every_s=sample_every_s)
    shot_detector = shot_detector or DEFAULT_DETECTOR
    spool = KeyframeSpool(policy)
    try:
        scan = scan_video(
            path,
            detector=make_detector(shot_detector),
            spool=spool,
            expected_frames=info.frame_count,
            progress=progress,
        )
        chosen = select_keyframes(scan.candidates, scan.shots, scan.transitions, info.fps, policy)
        yield VideoKeyframes(
            path=str(path),
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            keyframes=chosen,
            shots={s.shot_id: scan.timeline.shot_span_s(s) for s in scan.shots},
            scale=info.width / chosen[0].candidate.width if chosen else 1.0,
            decode_s=scan.seconds,
        )
    finally:
        spool.cleanup()


def characters_for_video(
    path: str | Path,
    *,
    detector: FaceDetector | None = None,
    embedder: FaceEmbedder | None = None,
    params: CharacterParams | None = None,
    sample_every_s: float | None = None,
    shot_detector: str | None = None,
    progress: ProgressFactory = no_progress,
) -> dict[str, Any]:
    """``marquee characters VIDEO --format json``: one decode pass (shots + keyframe candidates), then
    the characters from the keyframes. Boxes are in source-video pixels.

    JSON: ``{"video", "width", "height", "duration_s", "n_shots", "detector", "embedder", "n_keyframes",
    "n_faces", "n_embedded", "n_tracks", "n_characters", "characters": [{"character_id",
    "screen_time_s", "screen_time_share", "n_faces", "n_tracks", "first_appearance_s",
    "representative_face_id", "background", "degree", "eigenvector"}], "faces": [{"face_id", "frame",
    "time_s", "shot_id", "box", "score", "quality", "track_id", "character_id", "embedded", "embed_reason"}],
    "edges": [{"a", "b", "frames", "shots"}], "timings": {...}}``.
    """
    from marquee.ops.faces.detect import make_face_detector
    from marquee.ops.faces.embed import make_face_embedder

    detector = detector or make_face_detector()
    embedder = embedder or make_face_embedder()
    decoding = progress("shots and keyframes", "frames")
    with video_keyframes(
        path, sample_every_s=sample_every_s, shot_detector=shot_detector, progress=decoding
    ) as video:
        result = characters_from_images(
            video.images(),
            detector,
            embedder,
            load_image=video.load_frame,
            shots=video.shots,
            params=params,
            progress=progress,
            n_keyframes=len(video.keyframes),
        )
    result.timings["decode_pass_s"] = video.decode_s
    head = {
        "video": str(path),
        "width": video.width,
        "height": video.height,
        "duration_s": video.duration_s,
        "n_shots": len(video.shots),
    }
    return {**head, **result.to_dict(box_scale=video.scale)}
