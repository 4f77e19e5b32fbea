"""One feature row per film shot, the input of the trailerness model.

Default CPU configuration (what the ``trailerness`` asset computes, no second decode of the film):

- **shape**: shot length in seconds, its log, and the shot's relative position in the title (0-1);
- **motion**: the ``motion`` float the shots pass stores per shot (passed in as an array);
- **audio** (``audio.py``): energy-mean and max loudness in dBFS over 50 ms windows, mean onset strength
  and onsets per second, ``has_audio`` (one streaming decode of the audio track, mono 16 kHz);
- **faces** (from the characters stages): most faces on one keyframe of the shot, the largest face's
  share of the frame area, whether one of the two most prominent characters appears, and the summed
  screen-time share of the characters that appear (``face_features`` builds these from table rows);
- **visual**: the mean of the shot's keyframe embeddings from the ImageNet MobileNetV2 frame encoder
  (``visual.FrameEncoder``, 1280-d, re-normalised), on the keyframes already stored by the pipeline.

Features stay raw here (dB, seconds, counts); the model standardises them within each title, and may
reduce the embedding with PCA. The paper's 3D-CNN clip embeddings (``visual.ClipEncoder``) replace
the keyframe embedding only in ``features_for_file`` with a user-supplied encoder and weights.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pyarrow as pa

from marquee.ops.trailers.audio import AUDIO_FEATURES, AudioTrack, analyze_audio
from marquee.ops.trailers.visual import ClipEncoder, FrameEncoder

SHAPE_FEATURES = ("length_s", "log_length", "position")
FACE_FEATURES = ("faces", "largest_face_share", "top2_character", "character_prominence")
#: The scalar columns of a feature matrix, in order; the embedding (``emb_0000``...) follows them.
SCALAR_FEATURES = (*SHAPE_FEATURES, "motion", *AUDIO_FEATURES, *FACE_FEATURES)


@dataclass
class ShotFeatures:
    """Rows = shots (in shot order). ``matrix`` = scalars followed by the embedding columns."""

    shot_ids: np.ndarray
    scalars: np.ndarray  # (n, len(SCALAR_FEATURES)) float64, NaN where unknown
    embedding: np.ndarray  # (n, d) float32, d = 0 without a visual encoder
    encoder: str = ""  # visual encoder version ("" when none)

    @property
    def names(self) -> list[str]:
        return [*SCALAR_FEATURES, *(f"emb_{i:04d}" for i in range(self.embedding.shape[1]))]

    @property
    def matrix(self) -> np.ndarray:
        return np.hstack([self.scalars, self.embedding.astype(np.float64)])

    def column(self, name: str) -> np.ndarray:
        return self.scalars[:, SCALAR_FEATURES.index(name)]


def face_features(
    shot_ids: Sequence[int],
    faces: Sequence[Mapping[str, Any]],
    *,
    frame_area: float,
    characters: Mapping[int, Mapping[str, Any]] | None = None,
) -> np.ndarray:
    """(n_shots, 4) per-shot face features from face rows.

    ``faces``: one mapping per detected face with ``shot_id``, ``frame`` and the box ``x1, y1, x2, y2``
    in source pixels (the ``faces`` table), plus ``character_id`` (from ``face_clusters``; -1 or
    missing when unknown, background clusters excluded by the caller or via ``characters``).
    ``frame_area``: width x height of the source video. ``characters``: ``character_id`` ->
    ``{"prominence_rank": int (1 = lead), "screen_time_share": float}`` from ``character_nodes``;
    a character absent from it counts as background.
    Columns: FACE_FEATURES (most faces on one keyframe, largest face area share, top-2 character
    present, summed screen-time share of the characters present).
    """
    index = {int(s): i for i, s in enumerate(shot_ids)}
    out = np.zeros((len(index), len(FACE_FEATURES)), np.float64)
    per_frame: dict[tuple[int, int], int] = {}
    seen: dict[int, set[int]] = {}
    chars = characters or {}
    for f in faces:
        i = index.get(int(f["shot_id"]))
        if i is None:
            continue
        key = (i, int(f["frame"]))
        per_frame[key] = per_frame.get(key, 0) + 1
        area = max(0.0, float(f["x2"]) - float(f["x1"])) * max(0.0, float(f["y2"]) - float(f["y1"]))
        out[i, 1] = max(out[i, 1], min(1.0, area / max(frame_area, 1.0)))
        cid = f.get("character_id")
        if cid is not None and int(cid) in chars:
            seen.setdefault(i, set()).add(int(cid))
    for (i, _), n in per_frame.items():
        out[i, 0] = max(out[i, 0], n)
    for i, cids in seen.items():
        out[i, 2] = float(any(int(chars[c].get("prominence_rank", 99)) <= 2 for c in cids))
        out[i, 3] = float(sum(float(chars[c].get("screen_time_share", 0.0)) for c in cids))
    return out


class ShotEmbedder:
    """Running per-shot mean embeddings: ``add(shot_index, picture)`` as pictures arrive, ``finish()``.

    Pictures go through the encoder one batch at a time and only their sums per shot are kept, so memory
    does not grow with the number of shots (a two-hour film has thousands, three pictures each).
    ``seconds`` is the time spent in the encoder.
    """

    def __init__(self, encoder: FrameEncoder, n_shots: int) -> None:
        self.encoder = encoder
        self.sums = np.zeros((n_shots, encoder.dim), np.float64)
        self.count = 0
        self.seconds = 0.0
        self._batch: list[np.ndarray] = []
        self._owners: list[int] = []

    def add(self, shot_index: int, image: np.ndarray) -> None:
        self._batch.append(image)
        self._owners.append(int(shot_index))
        if len(self._batch) >= self.encoder.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            t = time.perf_counter()
            np.add.at(self.sums, np.asarray(self._owners), self.encoder.encode(self._batch))
            self.seconds += time.perf_counter() - t
            self.count += len(self._batch)
            self._batch.clear()
            self._owners.clear()

    def finish(self) -> np.ndarray:
        """(n_shots, dim) float32: each shot's re-normalised mean; a shot without pictures gets a zero row
        (the model sees it as 'average' after within-title centring)."""
        self._flush()
        norms = np.linalg.norm(self.sums, axis=1, keepdims=True)
        return np.where(norms > 0, self.sums / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


class _ClipStream:
    """3D-CNN clips cut from the decode as it passes: a shot's clip is encoded (in batches) as soon as
    its last frame has been seen, so only the clips of a batch are ever held."""

    def __init__(self, encoder: ClipEncoder, n_shots: int, wanted: Mapping[int, int], batch: int = 4) -> None:
        self.encoder, self.batch = encoder, batch
        self.out = np.zeros((n_shots, encoder.dim), np.float32)
        self.last: dict[int, int] = {}  # shot -> last wanted frame
        for f, i in wanted.items():
            self.last[i] = max(self.last.get(i, f), f)
        self.wanted = wanted
        self.open: dict[int, list[np.ndarray]] = {}
        self.ready: list[tuple[int, list[np.ndarray]]] = []
        self.count, self.seconds = 0, 0.0

    def add(self, index: int, frame: Any) -> None:
        i = self.wanted.get(index)
        if i is None:
            return
        self.open.setdefault(i, []).append(frame.rgb(self.encoder.size, self.encoder.size))
        if index == self.last[i]:
            self.ready.append((i, self.open.pop(i)))
            if len(self.ready) >= self.batch:
                self._flush()

    def _flush(self) -> None:
        if self.ready:
            t = time.perf_counter()
            self.out[[i for i, _ in self.ready]] = self.encoder.encode([c for _, c in self.ready])
            self.seconds += time.perf_counter() - t
            self.count += sum(len(c) for _, c in self.ready)
            self.ready.clear()

    def finish(self) -> np.ndarray:
        """(n_shots, dim): shots whose clip the file cut short get what they have; shots with no frame
        at all get the encoding of a black clip, as before."""
        self.ready.extend(self.open.items())
        self.open.clear()
        self._flush()
        missing = [i for i in range(len(self.out)) if i not in self.last or not self.out[i].any()]
        if missing:
            self.out[missing] = self.encoder.encode([[np.zeros((8, 8, 3), np.uint8)]])[0]
        return self.out


def shot_embeddings(
    encoder: FrameEncoder, n_shots: int, images: Iterable[tuple[int, np.ndarray]]
) -> np.ndarray:
    """(n_shots, dim): the mean embedding of each shot's pictures, ``images`` yielding
    ``(shot_index, RGB uint8 picture)`` (streamed through ``ShotEmbedder``)."""
    acc = ShotEmbedder(encoder, n_shots)
    for i, image in images:
        acc.add(i, image)
    return acc.finish()


def shot_features(
    shot_ids: Sequence[int],
    starts_s: Sequence[float],
    ends_s: Sequence[float],
    duration_s: float,
    *,
    motion: Sequence[float] | None = None,
    audio: AudioTrack | np.ndarray | None = None,
    faces: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    encoder: str = "",
) -> ShotFeatures:
    """Assemble the rows. ``audio`` is an ``AudioTrack`` (features read per shot) or an already
    computed (n, 5) array; ``faces`` an (n, 4) array from ``face_features``; missing parts are NaN
    (audio, motion) or 0 (faces: no faces seen), and the embedding is then empty.
    """
    starts = np.asarray(starts_s, np.float64)
    ends = np.asarray(ends_s, np.float64)
    n = len(starts)
    length = np.maximum(ends - starts, 0.0)
    mid = (starts + ends) / 2
    shape = np.column_stack([length, np.log(np.maximum(length, 0.04)), mid / max(duration_s, 1e-6)])
    mot = np.full((n, 1), np.nan) if motion is None else np.asarray(motion, np.float64).reshape(n, 1)
    if audio is None:
        aud = np.full((n, len(AUDIO_FEATURES)), np.nan)
        aud[:, -2:] = 0.0  # no onsets counted, has_audio = 0
    elif isinstance(audio, AudioTrack):
        aud = audio.shot_features(starts, ends)
    else:
        aud = np.asarray(audio, np.float64).reshape(n, len(AUDIO_FEATURES))
    fac = np.zeros((n, len(FACE_FEATURES))) if faces is None else np.asarray(faces, np.float64).reshape(n, -1)
    emb = (
        np.zeros((n, 0), np.float32)
        if embeddings is None
        else np.asarray(embeddings, np.float32).reshape(n, -1)
    )
    return ShotFeatures(
        shot_ids=np.asarray(shot_ids, np.int64),
        scalars=np.hstack([shape, mot, aud, fac]),
        embedding=emb,
        encoder=encoder,
    )


@dataclass
class FileFeatureTiming:
    """Where the time of ``features_for_file`` went (seconds)."""

    decode_s: float = 0.0
    encode_s: float = 0.0
    audio_s: float = 0.0
    frames_encoded: int = 0


def features_for_file(
    video: str | os.PathLike[str],
    shots: Sequence[tuple[int, int]],
    motion: Sequence[float] | None = None,
    *,
    encoder: FrameEncoder | None = None,
    clip_encoder: ClipEncoder | None = None,
    frames_per_shot: int = 3,
    faces: np.ndarray | None = None,
    with_audio: bool = True,
    timing: FileFeatureTiming | None = None,
) -> ShotFeatures:
    """Features of a plain file (benchmarks, no state): ``shots`` are (start_frame, end_frame)
    inclusive, in order, tiling the film. One video decode samples ``frames_per_shot`` frames per shot
    (evenly inside it) for the encoder and, when ``motion`` is None, measures motion as the shots pass
    does (``scan.MotionMeter`` and ``scan.shot_motion``): per frame the mean absolute difference of
    consecutive 48x27 grey thumbnails in [0, 1], per shot the median over its frames but the first
    (without the pass's exclusion of dissolve and fade frames: plain shot tuples carry no transitions). With
    ``clip_encoder`` the embedding is instead a clip of ``clip_encoder.frames`` consecutive frames
    around each shot's middle. The audio track is decoded separately (``analyze_audio``).
    """
    from marquee.ops.video import decode_frames

    timing = timing if timing is not None else FileFeatureTiming()
    n = len(shots)
    shot_of = np.zeros(shots[-1][1] + 1, np.int64) - 1
    for i, (a, b) in enumerate(shots):
        shot_of[a : b + 1] = i
    wanted: dict[int, int] = {}  # frame -> shot, for the frame encoder
    clip_wanted: dict[int, int] = {}
    for i, (a, b) in enumerate(shots):
        if encoder is not None:
            k = max(1, min(frames_per_shot, b - a + 1))
            for f in np.linspace(a, b, k + 2)[1:-1].round().astype(int).tolist():
                wanted[f] = i
        if clip_encoder is not None:
            mid, half = (a + b) // 2, clip_encoder.frames // 2
            for f in range(max(a, mid - half), min(b, mid - half + clip_encoder.frames - 1) + 1):
                clip_wanted[f] = i
    pictures = ShotEmbedder(encoder, n) if encoder is not None else None
    clips = _ClipStream(clip_encoder, n, clip_wanted) if clip_encoder is not None else None
    times = np.zeros(len(shot_of) + 1)
    frame_motion = np.zeros(len(shot_of), np.float32)
    prev: np.ndarray | None = None
    t0 = time.perf_counter()
    count = 0
    for d in decode_frames(video):
        if d.index >= len(shot_of):
            break
        times[d.index] = d.time_s
        count = d.index + 1
        i = int(shot_of[d.index])
        if motion is None:
            grey = cv2.cvtColor(d.small_rgb(48, 27), cv2.COLOR_RGB2GRAY)
            if prev is not None:
                frame_motion[d.index] = cv2.norm(grey, prev, cv2.NORM_L1) / (grey.size * 255.0)
            prev = grey
        if d.index in wanted:
            pictures.add(i, d.rgb(224, 224))  # type: ignore[union-attr]
        if clips is not None:
            clips.add(d.index, d)
    step = float(np.median(np.diff(times[:count]))) if count > 1 else 0.04
    times[count] = times[count - 1] + step
    emb, version = None, ""
    if clips is not None:
        emb, version = clips.finish(), clip_encoder.version  # type: ignore[union-attr]
        timing.frames_encoded += clips.count
    elif pictures is not None:
        emb, version = pictures.finish(), pictures.encoder.version
        timing.frames_encoded += pictures.count
    encode_s = pictures.seconds if pictures is not None else clips.seconds if clips is not None else 0.0
    timing.encode_s += encode_s
    timing.decode_s += time.perf_counter() - t0 - encode_s
    starts = np.array([times[min(a, count - 1)] for a, _ in shots])
    ends = np.array([times[min(b + 1, count)] for _, b in shots])
    t2 = time.perf_counter()
    audio = analyze_audio(video) if with_audio else None
    timing.audio_s += time.perf_counter() - t2
    if motion is not None:
        mot = motion
    else:
        mot = [float(np.median(frame_motion[a + 1 : b + 1])) if b > a else 0.0 for a, b in shots]
    duration = float(times[count])
    if math.isnan(duration) or duration <= 0:
        duration = float(ends[-1])
    return shot_features(
        np.arange(n),
        starts,
        ends,
        duration,
        motion=mot,
        audio=audio,
        faces=faces,
        embeddings=emb,
        encoder=version,
    )


#: Scalar columns compared within a title (a loud shot is loud for its film; a quiet drama and an
#: action film mix at different levels): z-scored per title. The others keep their absolute meaning.
RELATIVE_FEATURES = (
    "log_length",
    "motion",
    "loudness_mean_db",
    "loudness_max_db",
    "onset_strength",
    "onset_rate",
    "faces",
    "largest_face_share",
    "character_prominence",
)
#: Scalar columns kept as they are: position (0-1), flags, and raw length (seconds carry meaning).
ABSOLUTE_FEATURES = ("length_s", "position", "has_audio", "top2_character")


def standardise_within_title(x: np.ndarray) -> np.ndarray:
    """One title's feature matrix made comparable across titles.

    Relative scalar columns are z-scored within the title (NaN -> 0, the title's mean; a constant column
    -> 0); absolute columns pass through (NaN -> 0); embedding columns are centred on the title's mean
    shot (what sets a shot apart from the rest of its film, not the film's overall look).
    """
    x = np.asarray(x, np.float64)
    out = np.array(x, copy=True)
    k = len(SCALAR_FEATURES)
    for j, name in enumerate(SCALAR_FEATURES):
        col = x[:, j]
        ok = np.isfinite(col)
        if name in RELATIVE_FEATURES:
            if ok.sum() >= 2:
                mu, sd = float(col[ok].mean()), float(col[ok].std())
                out[:, j] = np.where(ok, (col - mu) / sd if sd > 1e-9 else 0.0, 0.0)
            else:
                out[:, j] = 0.0
        else:
            out[:, j] = np.where(ok, col, 0.0)
    if x.shape[1] > k and len(x):
        emb = np.nan_to_num(x[:, k:])
        out[:, k:] = emb - emb.mean(axis=0, keepdims=True)
    return out


def features_rows(
    shot_ids: list[int], matrix: np.ndarray, embedding: np.ndarray, encoder: str
) -> list[dict[str, Any]]:
    """The ``shot_features`` rows: the scalar features by name (NaN stored as null) and the embedding."""
    rows = []
    for i, sid in enumerate(shot_ids):
        row = {"shot_id": sid, "embedding": embedding[i].tolist(), "encoder": encoder}
        for j, name in enumerate(SCALAR_FEATURES):
            v = float(matrix[i, j])
            row[name] = None if np.isnan(v) else round(v, 6)
        rows.append(row)
    return rows


def features_from_table(table: pa.Table) -> tuple[list[int], np.ndarray, str]:
    """(shot ids, model input rows = scalars then embedding, encoder) from a ``shot_features`` table."""
    rows = table.sort_by("shot_id").to_pylist()
    if not rows:
        return [], np.zeros((0, len(SCALAR_FEATURES))), ""
    scalars = np.array(
        [[np.nan if r[n] is None else r[n] for n in SCALAR_FEATURES] for r in rows], np.float64
    )
    width = len(rows[0]["embedding"] or [])
    emb = np.array([r["embedding"] or [0.0] * width for r in rows], np.float64).reshape(len(rows), width)
    encoders = {r["encoder"] for r in rows}
    return [r["shot_id"] for r in rows], np.hstack([scalars, emb]), encoders.pop()
