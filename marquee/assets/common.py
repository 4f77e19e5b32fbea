"""Shared bits of the thin asset layer: retry policy, table metadata and data versions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from dagster import Backoff, DataVersion, Failure, MetadataValue, RetryPolicy

from marquee.ops.errors import MarqueeError

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
