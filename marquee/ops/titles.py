"""Title ids: the partition key of every asset and a path segment in object storage.

A title id is never a path: lowercase ``[a-z0-9][a-z0-9._-]{0,127}``, with no ``..`` so that it
cannot escape its folder whatever storage backend joins it.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from marquee.ops.errors import InvalidTitleIdError

TITLE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def validate_title_id(title_id: str) -> str:
    """Return ``title_id`` unchanged if it is a safe partition key, else raise InvalidTitleIdError."""
    if not isinstance(title_id, str) or not TITLE_ID_PATTERN.fullmatch(title_id) or ".." in title_id:
        raise InvalidTitleIdError(
            f"invalid title id {title_id!r}: use 1-128 characters of lowercase a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit, and no '..'"
        )
    return title_id


def title_id_from_filename(name: str) -> str:
    """Derive a valid title id from a file name: ``My Film (2019).MP4`` -> ``my-film-2019``.

    Accented letters keep their base letter (``Été`` -> ``ete``) rather than vanishing.
    """
    stem = PurePosixPath(name.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_stem.lower())
    slug = re.sub(r"\.{2,}", ".", slug).strip("-._")[:128].strip("-._")
    if not slug:
        raise InvalidTitleIdError(f"cannot derive a title id from file name {name!r}; pass --title")
    return validate_title_id(slug)
