"""Every table Marquee stores, declared once: name, schema, the asset that writes it, its media.

This registry is the single answer to "where does table X come from, and who reads it?":

- the warehouse refuses to write a table that is not declared here, or whose rows do not fit the
  declared schema (``TableSpec.conform``);
- an asset names the tables it *reads*, and its upstream Dagster dependencies are derived from them
  (``upstream``), so the lineage graph the UI shows is the graph of reads and writes;
  ``marquee.assets.common`` refuses, at run time, a read the asset did not declare;
- each asset may write only the tables declared with its name (``tables_of``).

Object keys that are not tables (media versions, the character graph's files, reports, models) are
laid out here too, so no module builds them with its own f-string.

Every table is partitioned per title: ``tables/<name>/title_id=<id>/part-0.parquet``
(``marquee.resources.warehouse``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from marquee.ops.thumbnails.crops import ASPECTS
from marquee.ops.trailers.features import SCALAR_FEATURES

#: Top-level prefix of media versions: ``media/<kind>/<title>/<version>/...``
#: (``marquee.resources.media``).
MEDIA = "media"


class UnknownTableError(KeyError):
    """A table name that is not declared in the registry (a typo, or a table nobody writes)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class TableSpec:
    """One stored table: one Parquet partition per title, written by exactly one asset."""

    name: str
    #: The Dagster asset (key) that writes it; several tables may share one asset (written together,
    #: ``Warehouse.write_tables``).
    asset: str
    description: str
    schema: pa.Schema
    #: Media kinds (``media/<kind>/...``) that its ``*_key`` columns point into.
    media: tuple[str, ...] = ()

    def table(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        """The Arrow table of ``rows`` (dicts by column name) in this table's schema."""
        return pa.Table.from_pylist(list(rows), schema=self.schema)

    def empty(self) -> pa.Table:
        return self.schema.empty_table()

    def conform(self, data: pa.Table) -> pa.Table:
        """``data`` in exactly the declared schema (columns in order, types cast), or a ValueError
        naming the table and the columns that are missing or extra."""
        have = [n for n in data.column_names if n != "title_id"]
        want = self.schema.names
        if set(have) != set(want):
            missing = sorted(set(want) - set(have))
            extra = sorted(set(have) - set(want))
            raise ValueError(
                f"table {self.name!r} does not match its declared schema (marquee/resources/tables.py): "
                f"missing columns {missing}, undeclared columns {extra}"
            )
        data = data.select(want)
        return data if data.schema.equals(self.schema) else data.cast(self.schema)


@dataclass(frozen=True)
class StoredModel:
    """A model kept in object storage (``<prefix>/<version>.bin`` + ``<prefix>/current.json``)."""

    name: str
    asset: str
    prefix: str


#: Where a row sits on the title's timeline: a keyframe (its frame, time and shot) ...
AT_FRAME = [("frame", pa.int64()), ("time_s", pa.float64()), ("shot_id", pa.int32())]
#: ... or a shot (inclusive frames; ``end_s`` is when the frame after it begins, ``marquee.ops.timeline``).
SHOT_SPAN = [
    ("shot_id", pa.int32()),
    ("start_frame", pa.int64()),
    ("end_frame", pa.int64()),
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
]

TITLES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),  # the stored source file's URL
        ("container", pa.string()),
        ("codec", pa.string()),
        ("width", pa.int64()),  # display size (after rotation)
        ("height", pa.int64()),
        ("coded_width", pa.int64()),
        ("coded_height", pa.int64()),
        ("rotation", pa.int64()),
        ("fps", pa.float64()),  # average frame rate (frames / duration)
        ("nominal_fps", pa.float64()),
        ("variable_frame_rate", pa.bool_()),
        ("frame_count", pa.int64()),
        ("duration_s", pa.float64()),
        ("has_audio", pa.bool_()),
        ("audio_codec", pa.string()),
        ("audio_channels", pa.int64()),
        ("audio_sample_rate", pa.int64()),
        ("size_bytes", pa.int64()),
        ("pix_fmt", pa.string()),
        ("source_name", pa.string()),
        ("trailer_key", pa.string()),
        ("content_sha256", pa.string()),
        ("manifest_version", pa.string()),
        ("ingested_at", pa.string()),
    ]
)


def _candidates_schema() -> pa.Schema:
    fields = [
        ("rank", pa.int32()),
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("shot_id", pa.int32()),
        ("primary_character", pa.int32()),
        ("character_ids", pa.list_(pa.int32())),
        ("primary_face_id", pa.int64()),
        ("prominence", pa.float32()),
        ("expression", pa.float32()),
        ("eyes_open", pa.float32()),
        ("quality", pa.float32()),
        ("score", pa.float32()),
        ("frame_key", pa.string()),
    ]
    for name in ASPECTS:
        fields += [
            (f"crop_{name}_key", pa.string()),
            (f"crop_{name}_box", pa.list_(pa.float32(), 4)),
            (f"logo_{name}_box", pa.list_(pa.float32(), 4)),  # null: every band touches a face
            (f"logo_{name}_detail", pa.float32()),
            (f"logo_{name}_key", pa.string()),  # the crop with the title logo, when the title has one
        ]
    return pa.schema(fields)


def _register(*specs: TableSpec) -> dict[str, TableSpec]:
    out: dict[str, TableSpec] = {}
    for s in specs:
        if s.name in out:
            raise ValueError(f"table {s.name!r} declared twice")
        out[s.name] = s
    return out


TABLES: dict[str, TableSpec] = _register(
    TableSpec(
        "titles",
        asset="title",
        description="One row per title: what the ingested video is (probe results, content hash, manifest).",
        media=(),
        schema=TITLES_SCHEMA,
    ),
    TableSpec(
        "shots",
        asset="shots",
        description="Shot boundaries over the whole title: frames, seconds, the transition that begins each "
        "shot, confidence, motion.",
        media=(),
        schema=pa.schema(
            [
                *SHOT_SPAN,
                ("duration_s", pa.float64()),
                ("n_frames", pa.int64()),
                ("transition", pa.string()),
                ("transition_start_frame", pa.int64()),
                ("transition_end_frame", pa.int64()),
                ("confidence", pa.float32()),
                # Median over the shot's own frames (not its first, none inside a transition) of the mean
                # absolute difference of consecutive 48x27 grey frames, in [0, 1]: ~0 for a still shot.
                ("motion", pa.float32()),
                ("detector", pa.string()),
            ]
        ),
    ),
    TableSpec(
        "film_fingerprints",
        asset="shots",
        description="Titles with a trailer: the film's per-frame trailer-matching fingerprints, made in the "
        "shots pass (so the film is decoded once) and stored as one .npz; none without a trailer.",
        media=("fingerprints",),
        schema=pa.schema(
            [
                ("frames", pa.int64()),
                ("fingerprinter", pa.string()),
                ("fingerprints_key", pa.string()),
            ]
        ),
    ),
    TableSpec(
        "keyframes",
        asset="keyframes",
        description="A few sharp representative frames per shot, as JPEG images in object storage.",
        media=("keyframes",),
        schema=pa.schema(
            [
                *AT_FRAME,
                ("kind", pa.string()),
                ("rank_in_shot", pa.int16()),
                ("sharpness", pa.float32()),
                ("brightness", pa.float32()),
                ("width", pa.int32()),
                ("height", pa.int32()),
                ("image_key", pa.string()),
            ]
        ),
    ),
    TableSpec(
        "trailers",
        asset="trailer",
        description="One row per title: its trailer (or has_trailer = false) and the trailer's shot count.",
        media=(),
        schema=pa.schema(
            [
                ("has_trailer", pa.bool_()),
                ("path", pa.string()),
                ("source_name", pa.string()),
                ("duration_s", pa.float64()),
                ("fps", pa.float64()),
                ("frame_count", pa.int64()),
                ("width", pa.int32()),
                ("height", pa.int32()),
                ("content_sha256", pa.string()),
                ("n_shots", pa.int32()),
                ("detector", pa.string()),
            ]
        ),
    ),
    TableSpec(
        "trailer_shots",
        asset="trailer",
        description="The trailer's shots, cut with the film's shot detector.",
        media=(),
        schema=pa.schema(
            [
                *SHOT_SPAN,
                ("transition", pa.string()),
                ("confidence", pa.float32()),
            ]
        ),
    ),
    TableSpec(
        "faces",
        asset="faces",
        description="Faces detected on keyframes, tracked within shots, with quality and a crop.",
        media=("faces",),
        schema=pa.schema(
            [
                ("face_id", pa.int64()),
                *AT_FRAME,
                ("x1", pa.float32()),  # source-video pixels
                ("y1", pa.float32()),
                ("x2", pa.float32()),
                ("y2", pa.float32()),
                ("landmarks", pa.list_(pa.float32(), 10)),  # 5 x (x, y), source pixels, LANDMARK_NAMES order
                ("score", pa.float32()),
                ("quality", pa.float32()),
                ("sharpness", pa.float32()),
                ("frontality", pa.float32()),
                ("size", pa.float32()),  # face size in keyframe pixels (what the embedding size limit uses)
                ("keyframe_scale", pa.float32()),
                ("track_id", pa.int64()),
                ("detector", pa.string()),
                ("crop_key", pa.string()),  # square face thumbnail in object storage
            ]
        ),
    ),
    TableSpec(
        "face_embeddings",
        asset="face_embeddings",
        description="A face descriptor for the best faces of each track.",
        media=(),
        schema=pa.schema(
            [
                ("face_id", pa.int64()),
                ("track_id", pa.int64()),
                ("embedded", pa.bool_()),
                ("reason", pa.string()),  # chosen | not_chosen | too_small
                ("embedder", pa.string()),
                ("embedding", pa.list_(pa.float32())),  # null unless embedded
            ]
        ),
    ),
    TableSpec(
        "face_clusters",
        asset="face_clusters",
        description="A character id per face.",
        media=(),
        schema=pa.schema(
            [
                ("face_id", pa.int64()),
                ("track_id", pa.int64()),
                ("character_id", pa.int32()),  # -1: not identified (no face of its track could be embedded)
                ("background", pa.bool_()),
            ]
        ),
    ),
    TableSpec(
        "characters",
        asset="face_clusters",
        description="One row per character (cluster): screen time, tracks, representative face.",
        media=("characters",),
        schema=pa.schema(
            [
                ("character_id", pa.int32()),  # 0 = most screen time; background clusters after characters
                ("screen_time_s", pa.float64()),
                ("screen_time_share", pa.float64()),
                ("n_faces", pa.int32()),
                ("n_tracks", pa.int32()),
                ("first_appearance_s", pa.float64()),
                ("representative_face_id", pa.int64()),
                ("background", pa.bool_()),
                ("track_ids", pa.list_(pa.int64())),
                ("face_key", pa.string()),  # the representative face's thumbnail in object storage
                ("embedder", pa.string()),
            ]
        ),
    ),
    TableSpec(
        "character_nodes",
        asset="character_graph",
        description="Graph nodes: characters with prominence rank and centralities.",
        media=(),
        schema=pa.schema(
            [
                ("character_id", pa.int32()),
                ("prominence_rank", pa.int32()),  # 1 = most prominent (screen time, then centrality)
                ("screen_time_s", pa.float64()),
                ("screen_time_share", pa.float64()),
                ("n_faces", pa.int32()),
                ("n_tracks", pa.int32()),
                ("first_appearance_s", pa.float64()),
                ("degree", pa.float64()),
                ("eigenvector", pa.float64()),
            ]
        ),
    ),
    TableSpec(
        "character_edges",
        asset="character_graph",
        description="Graph edges: keyframes and shots two characters share.",
        media=(),
        schema=pa.schema(
            [
                ("a", pa.int32()),
                ("b", pa.int32()),
                ("frames", pa.int32()),  # keyframes where both are visible
                ("shots", pa.int32()),  # shots where both appear
            ]
        ),
    ),
    TableSpec(
        "expression_scores",
        asset="expression_scores",
        description="Per face: eyes open, mouth, pose, sharpness, expression score.",
        media=(),
        schema=pa.schema(
            [
                ("face_id", pa.int64()),
                *AT_FRAME,
                ("landmarks_found", pa.bool_()),
                ("eye_open_left", pa.float32()),
                ("eye_open_right", pa.float32()),
                ("eye_open", pa.float32()),
                ("mouth_open", pa.float32()),
                ("yaw", pa.float32()),
                ("pitch", pa.float32()),
                ("roll", pa.float32()),
                ("sharpness", pa.float32()),
                ("size", pa.float32()),  # face box height, keyframe pixels
                ("brightness", pa.float32()),
                ("clipped", pa.float32()),
                ("smile", pa.float32()),  # expression CNN: P(happy); null without its weights
                ("negative", pa.float32()),  # P(angry + disgust + fear + sad)
                ("eyes_open", pa.float32()),  # rule factors in [0, 1]
                ("mouth_closed", pa.float32()),
                ("sharp", pa.float32()),
                ("frontal", pa.float32()),
                ("expression", pa.float32()),  # the model's score
                ("model", pa.string()),
            ]
        ),
    ),
    TableSpec(
        "frame_expressions",
        asset="expression_scores",
        description="Per keyframe: face count and best/mean expression.",
        media=(),
        schema=pa.schema(
            [
                *AT_FRAME,
                ("n_faces", pa.int32()),
                ("best_expression", pa.float32()),
                ("mean_expression", pa.float32()),
                ("sharpness", pa.float32()),
                ("brightness", pa.float32()),
            ]
        ),
    ),
    TableSpec(
        "shot_features",
        asset="shot_features",
        description="Per shot: scalar features and a visual embedding for the trailerness model.",
        media=(),
        schema=pa.schema(
            [("shot_id", pa.int32())]
            + [(name, pa.float64()) for name in SCALAR_FEATURES]
            + [("embedding", pa.list_(pa.float32())), ("encoder", pa.string())]
        ),
    ),
    TableSpec(
        "trailer_matches",
        asset="trailer_matches",
        description="Per trailer shot: the film shot it was cut from, or none.",
        media=(),
        schema=pa.schema(
            [
                ("trailer_shot_id", pa.int32()),
                ("trailer_start_s", pa.float64()),
                ("trailer_end_s", pa.float64()),
                ("trailer_start_frame", pa.int64()),
                ("trailer_end_frame", pa.int64()),
                ("film_shot_id", pa.int32()),  # null: unmatched (title card, shot not in the film)
                ("film_start_s", pa.float64()),
                ("film_end_s", pa.float64()),
                ("film_start_frame", pa.int64()),
                ("film_end_frame", pa.int64()),
                ("similarity", pa.float32()),
                ("speed", pa.float32()),  # film frames per trailer frame
                ("matched", pa.bool_()),
                # 1 for the second half of a detected trailer shot that really held two shots (a missed cut)
                ("part", pa.int8()),
                # why an unmatched shot is unmatched (no structure, nothing similar enough); "" if matched
                ("reason", pa.string()),
                ("textured", pa.float32()),  # share of its frames with enough structure to fingerprint
            ]
        ),
    ),
    TableSpec(
        "shot_labels",
        asset="trailer_matches",
        description="Per film shot: the soft trailer label the matches give it.",
        media=(),
        schema=pa.schema(
            [
                ("shot_id", pa.int32()),
                ("start_s", pa.float64()),
                ("end_s", pa.float64()),
                ("soft_label", pa.float32()),  # in [0, 1]: the largest share any trailer shot gives this shot
                ("in_trailer", pa.bool_()),  # some trailer shot's best match lies in it
            ]
        ),
    ),
    TableSpec(
        "trailerness",
        asset="trailerness",
        description="Per shot: trailer-worthiness score and rank.",
        media=(),
        schema=pa.schema(
            [
                ("shot_id", pa.int32()),
                ("start_s", pa.float64()),
                ("end_s", pa.float64()),
                ("score", pa.float32()),
                ("rank", pa.int32()),  # 1 = most trailer-worthy shot of the title
                ("model", pa.string()),
            ]
        ),
    ),
    TableSpec(
        "trailer_moments",
        asset="trailer_moments",
        description="Ranked trailer moments (runs of shots) with a preview clip and a poster.",
        media=("moments", "keyframes"),
        schema=pa.schema(
            [
                ("rank", pa.int32()),
                ("shot_ids", pa.list_(pa.int32())),
                ("start_frame", pa.int64()),
                ("end_frame", pa.int64()),
                ("start_s", pa.float64()),
                ("end_s", pa.float64()),
                ("score", pa.float32()),  # the best shot's trailerness
                ("mean_score", pa.float32()),
                ("in_trailer", pa.bool_()),  # null: the title has no trailer
                ("clip_key", pa.string()),  # preview clip (MP4) in object storage
                ("poster_key", pa.string()),  # a keyframe of the moment's best shot
                ("model", pa.string()),
            ]
        ),
    ),
    TableSpec(
        "thumbnail_candidates",
        asset="thumbnail_candidates",
        description="Ranked character-focused thumbnail candidates with artwork crops and logo-safe areas.",
        media=("thumbnails",),
        schema=_candidates_schema(),
    ),
)

MODELS: dict[str, StoredModel] = {
    m.name: m
    for m in (
        StoredModel("expression", asset="expression_model", prefix="models/expression"),
        StoredModel("trailerness", asset="trailerness_model", prefix="models/trailerness"),
    )
}


def spec(name: str) -> TableSpec:
    """The declaration of table ``name``; an UnknownTableError names the known tables otherwise."""
    try:
        return TABLES[name]
    except KeyError:
        raise UnknownTableError(
            f"unknown table {name!r}: declare it in marquee/resources/tables.py (known: {', '.join(TABLES)})"
        ) from None


def tables_of(asset: str) -> list[str]:
    """The tables ``asset`` writes."""
    return [t.name for t in TABLES.values() if t.asset == asset]


def upstream(reads: Iterable[str], models: Iterable[str] = ()) -> list[str]:
    """The assets that write the tables in ``reads`` and the stored ``models``: an asset's deps."""
    assets = {spec(t).asset for t in reads}
    for m in models:
        if m not in MODELS:
            raise KeyError(f"unknown stored model {m!r} (known: {', '.join(MODELS)})")
        assets.add(MODELS[m].asset)
    return sorted(assets)


def media_prefix(kind: str, title_id: str) -> str:
    """Where the versions of one kind of a title's media live: ``media/<kind>/<title>``."""
    return f"{MEDIA}/{kind}/{title_id}"


def graph_keys(title_id: str) -> tuple[str, str]:
    """The character graph's picture and GraphML file: fixed names, each replaced atomically."""
    base = media_prefix("graphs", title_id)
    return f"{base}/graph.png", f"{base}/graph.graphml"


def report_prefix(title_id: str) -> str:
    """The folder of a title's HTML report (``index.html`` and its pictures)."""
    return f"reports/{title_id}"


def report_key(title_id: str) -> str:
    return f"{report_prefix(title_id)}/index.html"
