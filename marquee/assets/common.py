"""Shared bits of the thin asset layer: retry policy, table metadata and data versions."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    Backoff,
    DataVersion,
    Failure,
    MetadataValue,
    RetryPolicy,
)

from marquee.ops.errors import MarqueeError
from marquee.resources.storage import ObjectStore

#: Transient failures (object storage hiccups) are retried; bad input fails at once
#: (``bad_input_fails_fast``).
HEAVY_RETRY = RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL)


@contextmanager
def bad_input_fails_fast() -> Iterator[None]:
    """Turn an error about the input (MarqueeError) into a step failure that is not retried.

    Retries are for transient trouble; a corrupt file or a missing object fails the same way every
    time, so the user gets the message (file and reason) at once instead of after the back-off.
    """
    try:
        yield
    except MarqueeError as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc


def short_hash(config: object) -> str:
    """Eight hex digits identifying a JSON-able configuration (for code versions)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]


def table_data_version(table: pa.Table, *extra: object) -> DataVersion:
    """A content hash of a table: downstream assets go stale only when the rows really change."""
    h = hashlib.sha256()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    h.update(sink.getvalue().to_pybytes())
    for e in extra:
        h.update(repr(e).encode())
    return DataVersion(h.hexdigest()[:24])


def preview(table: pa.Table, limit: int = 10) -> MetadataValue:
    """A Markdown preview of the first rows for the Dagster UI."""
    cols = table.column_names
    rows = table.slice(0, limit).to_pylist()
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    if table.num_rows > limit:
        lines.append(f"\n… {table.num_rows - limit} more rows")
    return MetadataValue.md("\n".join(lines))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v).replace("|", "\\|")


def new_media_version() -> str:
    """A fresh, sortable name for a version of an asset's media (``v<UTC time>-<random>``)."""
    return f"v{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def drop_other_media_versions(store: ObjectStore, base: str, keep: str) -> None:
    """Delete every version under ``base`` but ``keep``.

    Media go to a fresh versioned prefix, the table that points at them is written atomically, and
    only then are older versions removed: a crash at any point leaves a table whose media exist.
    """
    depth = base.count("/") + 1
    versions = {k.split("/")[depth] for k in store.list(base) if k.count("/") > depth}
    for old in versions - {keep}:
        store.delete_prefix(f"{base}/{old}")


def check_result(asset: str | AssetKey, check: str, problems: list[str]) -> AssetCheckResult:
    """An ERROR-severity check result that passes when ``problems`` is empty (first 20 listed)."""
    return AssetCheckResult(
        asset_key=asset,
        check_name=check,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={"problems": MetadataValue.json(problems[:20])},
    )


def store_model(store: ObjectStore, prefix: str, version: str, data: bytes) -> str:
    """Keep a model under ``<prefix>/<version>.bin`` and point ``<prefix>/current.json`` at it.

    Each write is atomic and the pointer is written last, so readers see the old model or the new
    one, never half of one.
    """
    key = f"{prefix}/{version}.bin"
    store.write_bytes(key, data)
    store.write_bytes(f"{prefix}/current.json", json.dumps({"key": key, "version": version}).encode())
    return key


def current_model_bytes(store: ObjectStore, prefix: str) -> bytes | None:
    """The bytes of the model ``<prefix>/current.json`` points at, or None when none was stored."""
    pointer = f"{prefix}/current.json"
    if not store.exists(pointer):
        return None
    return store.read_bytes(json.loads(store.read_bytes(pointer))["key"])
