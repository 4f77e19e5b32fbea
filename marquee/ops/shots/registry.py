"""Shot detectors by name, as chosen by ``MARQUEE_SHOT_DETECTOR`` or ``marquee shots --detector``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marquee.ops.errors import UnknownChoiceError
from marquee.ops.shots.base import ShotDetector

DEFAULT_DETECTOR = "hybrid"


def _fast(**kw: Any) -> ShotDetector:
    from marquee.ops.shots.fast import FastDetector

    return FastDetector(**kw)


def _hybrid(**kw: Any) -> ShotDetector:
    from marquee.ops.shots.hybrid import HybridDetector

    return HybridDetector(**kw)


def _transnetv2(**kw: Any) -> ShotDetector:
    from marquee.ops.shots.transnet import TransNetV2Detector

    return TransNetV2Detector(**kw)


DETECTORS: dict[str, Callable[..., ShotDetector]] = {
    "hybrid": _hybrid,
    "fast": _fast,
    "transnetv2": _transnetv2,
}


def make_detector(name: str = DEFAULT_DETECTOR, **params: Any) -> ShotDetector:
    """A new detector instance; raises ValueError naming the choices for an unknown name."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise UnknownChoiceError(
            f"unknown shot detector {name!r}; choose one of {', '.join(DETECTORS)}"
        ) from None
    return factory(**params)
