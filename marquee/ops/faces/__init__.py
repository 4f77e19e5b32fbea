"""Characters: faces on keyframes, tracks within shots, identity descriptors, clusters, and the
character interaction graph. Framework-free (numpy, torch, dlib, scipy, networkx, OpenCV).

Entry points: ``characters_from_images`` (all stages, streaming), the stages one by one
(``detect_and_track``, ``embed_tracks``, ``cluster_characters``) and ``characters_for_video`` (a plain
video file, for the CLI). Model classes load lazily (torch and dlib are imported on construction).
"""

from marquee.ops.faces.cluster import BackgroundRule, Character
from marquee.ops.faces.detect import FaceDetector, make_face_detector
from marquee.ops.faces.embed import FaceEmbedder, make_face_embedder, select_faces_to_embed
from marquee.ops.faces.pipeline import (
    CharacterParams,
    CharactersResult,
    KeyframeImage,
    characters_for_video,
    characters_from_images,
    cluster_characters,
    detect_and_track,
    embed_tracks,
)
from marquee.ops.faces.types import FaceDetections, FaceRecord

__all__ = [
    "BackgroundRule",
    "Character",
    "CharacterParams",
    "CharactersResult",
    "FaceDetections",
    "FaceDetector",
    "FaceEmbedder",
    "FaceRecord",
    "KeyframeImage",
    "characters_for_video",
    "characters_from_images",
    "cluster_characters",
    "detect_and_track",
    "embed_tracks",
    "make_face_detector",
    "make_face_embedder",
    "select_faces_to_embed",
]
