"""Which torch device the models run on: ``MARQUEE_DEVICE`` = ``auto`` (default), ``cpu``, ``cuda``
or ``cuda:N``.

Every model (TransNetV2 in the shot detectors, MTCNN, the dlib face-descriptor network, the
MobileNetV2 and 3D ResNet encoders, the expression CNN) asks ``resolve_device`` when it is built
without an explicit device, so one setting
moves the whole pipeline to a GPU, and a CPU-only machine runs the same code. The device is not part
of any model's identity: the same weights give the same results (to float rounding) on either, so
moving to a GPU does not make stored results stale. Batch sizes grow on a GPU (``batch_size_for``),
where bigger batches keep it busy; on a CPU, small batches stay in cache.
"""

from __future__ import annotations

import os

from marquee.ops.errors import ModelUnavailableError, UnknownChoiceError

DEVICE_ENV = "MARQUEE_DEVICE"


def resolve_device(requested: str | None = None) -> str:
    """The torch device to use: ``requested``, else ``$MARQUEE_DEVICE``, else ``auto`` (the first
    CUDA GPU when torch sees one, else the CPU). Asking for CUDA where torch has none fails here,
    once, saying so, rather than deep inside the first model call."""
    choice = (requested or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if choice == "cpu":
        return "cpu"
    if choice not in ("auto", "cuda") and not (choice.startswith("cuda:") and choice[5:].isdigit()):
        raise UnknownChoiceError(f"{DEVICE_ENV}={choice!r}: choose auto, cpu, cuda or cuda:N")
    import torch

    available = torch.cuda.is_available()
    if choice == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ModelUnavailableError(
            f"{DEVICE_ENV}={choice!r} but torch sees no CUDA GPU here (torch {torch.__version__}); "
            f"set {DEVICE_ENV}=cpu or auto"
        )
    index = int(choice[5:]) if ":" in choice else 0
    if index >= torch.cuda.device_count():
        raise ModelUnavailableError(
            f"{DEVICE_ENV}={choice!r} but torch sees {torch.cuda.device_count()} CUDA GPU(s) here"
        )
    return choice


def batch_size_for(device: str, cpu: int, gpu: int) -> int:
    """A model's batch size on ``device``: ``gpu`` on a CUDA device, ``cpu`` otherwise."""
    return gpu if device.startswith("cuda") else cpu
