"""Errors raised by framework-free code, each naming the offending input and the reason.

Dagster assets let these propagate: the run for that title fails with a message a user can act on,
and no partition is written (every write happens only after the computation succeeded).
"""

from __future__ import annotations


class MarqueeError(Exception):
    """Base class for errors a user can act on."""


class InvalidTitleIdError(MarqueeError, ValueError):
    """A title id is not of the allowed form (it is a partition key and a storage path segment)."""


class VideoError(MarqueeError):
    """A video file cannot be used: missing, empty, truncated, corrupt, or without a video stream."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelUnavailableError(MarqueeError):
    """A model's weights are not installed and not in the model store; says where to put them."""


class UnknownChoiceError(MarqueeError, ValueError):
    """A setting names a detector, embedder or encoder that does not exist; the message lists the choices."""
