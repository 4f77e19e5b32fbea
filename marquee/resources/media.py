"""Media versions (keyframes, face crops, clips, ...) and their lifetime: kept while a table points at them.

An asset writes its pictures under a fresh version, ``media/<kind>/<title>/<version>/...``, then the
table whose ``*_key`` columns point at them. A version must outlive every stored table that points
into it, not only the table of the asset that wrote it: ``trailer_moments.poster_key`` points at
keyframes, so re-running ``keyframes`` alone must not delete the pictures the kept moments still
show. So nothing deletes "the other versions" of its own kind any more; instead, after a step has
replaced its tables, ``collect_garbage`` deletes each version that

- no ``*_key`` column of any table partition of the title points into, and
- is not being written right now: a version in progress carries a ``_pending.json`` marker naming
  its run owner, and is kept while that owner holds a live claim on the title
  (``marquee.resources.leases``). A run that crashed leaves its marker behind, its claim expires,
  and the next step of any run collects that half-written version.

``dangling_keys`` is the proof the other way round: every ``*_key`` of every table resolves.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from marquee.ops.titles import validate_title_id
from marquee.resources.storage import ObjectStore, StorageError
from marquee.resources.warehouse import TABLES, Warehouse

MEDIA = "media"
PENDING = "_pending.json"
_VERSION = re.compile(r"^v\d{8}T\d{6}-[0-9a-f]{6}$")


def new_media_version() -> str:
    """A fresh, sortable name for a version of an asset's media (``v<UTC time>-<random>``)."""
    return f"v{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class MediaVersion:
    """One version of one kind of media of one title, being written by ``owner``."""

    store: ObjectStore
    kind: str
    title_id: str
    version: str
    owner: str

    @property
    def prefix(self) -> str:
        return f"{MEDIA}/{self.kind}/{self.title_id}/{self.version}"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def settle(self) -> None:
        """The tables that point here are written: the version now lives by reference alone."""
        self.store.delete(self.key(PENDING))


def start_media_version(store: ObjectStore, kind: str, title_id: str, owner: str) -> MediaVersion:
    """A new version, marked as in progress for ``owner`` before anything is written into it."""
    mv = MediaVersion(store, kind, validate_title_id(title_id), new_media_version(), owner)
    marker = {"owner": owner, "created_at": time.time()}
    store.write_bytes(mv.key(PENDING), json.dumps(marker).encode())
    return mv


def key_columns(schema: pa.Schema) -> list[str]:
    """Columns that hold object-storage keys (by the project's naming rule: ``*_key``, strings)."""
    return [f.name for f in schema if f.name.endswith("_key") and pa.types.is_string(f.type)]


def stored_keys(wh: Warehouse, title_id: str) -> dict[tuple[str, str], list[str]]:
    """Every non-null ``*_key`` value of every table partition of the title, by (table, column).

    Only the key columns are read (Parquet is columnar), so a film's wide embedding tables cost a
    footer and a few small columns, not their descriptors.
    """
    store = wh.store
    found: dict[tuple[str, str], list[str]] = {}
    for table in store.children(TABLES):
        if not wh.has_table(table, title_id):
            continue
        with store.open(wh.partition_key(table, title_id)) as f:
            pf = pq.ParquetFile(f)
            columns = key_columns(pf.schema_arrow)
            if not columns:
                continue
            data = pf.read(columns=columns, use_threads=False)
        for c in columns:
            found[(table, c)] = [v for v in data.column(c).to_pylist() if v]
    return found


def media_versions(store: ObjectStore, title_id: str) -> list[str]:
    """Prefixes of every stored media version of the title (``media/<kind>/<id>/<version>``)."""
    out = []
    for kind in store.children(MEDIA):
        base = f"{MEDIA}/{kind}/{title_id}"
        out += [f"{base}/{v}" for v in store.children(base) if _VERSION.match(v)]
    return out


def _version_of(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) >= 5 and parts[0] == MEDIA and _VERSION.match(parts[3]):
        return "/".join(parts[:4])
    return None


def referenced_versions(keys: dict[tuple[str, str], list[str]]) -> set[str]:
    """Prefixes of the media versions that some of ``keys`` (``stored_keys``) point into."""
    return {v for column in keys.values() for k in column if (v := _version_of(k))}


def _pending_owner(store: ObjectStore, prefix: str) -> str | None:
    try:
        return str(json.loads(store.read_bytes(f"{prefix}/{PENDING}")).get("owner"))
    except StorageError:
        return None
    except ValueError:  # an unreadable marker protects nothing
        return ""


def collect_garbage(
    wh: Warehouse, title_id: str, live_owners: Iterable[str], *, log: Callable[[str], None] | None = None
) -> list[str]:
    """Delete the title's media versions that no table points at and no live run is writing.

    Returns the deleted prefixes. Call it only after the step's tables are written.
    """
    store = wh.store
    referenced = referenced_versions(stored_keys(wh, title_id))
    live = set(live_owners)
    deleted = []
    for prefix in media_versions(store, title_id):
        owner = _pending_owner(store, prefix)
        if prefix in referenced:
            if owner is not None and owner not in live:  # a crash after the table was written
                store.delete(f"{prefix}/{PENDING}")
            continue
        if owner is not None and owner in live:
            continue
        store.delete_prefix(prefix)
        deleted.append(prefix)
        if log is not None:
            log(f"deleted {store.url(prefix)}: no table points at it")
    return deleted


def dangling_keys(
    wh: Warehouse, title_id: str, keys: dict[tuple[str, str], list[str]] | None = None
) -> list[str]:
    """``table.column = key`` for every stored key of the title that does not resolve."""
    store = wh.store
    listed: dict[str, set[str]] = {}  # one listing per media version instead of one look-up per key

    def resolves(key: str) -> bool:
        prefix = _version_of(key)
        if prefix is None:
            return store.exists(key)
        if prefix not in listed:
            listed[prefix] = set(store.list(prefix))
        return key in listed[prefix]

    problems = []
    for (table, column), values in (stored_keys(wh, title_id) if keys is None else keys).items():
        problems += [f"{table}.{column} = {k}" for k in values if not resolves(k)]
    return problems
