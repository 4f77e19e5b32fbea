"""Shared bits of the thin asset layer: retry policy, table metadata and data versions."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
from marquee.resources.leases import TitleLease, live_owners
from marquee.resources.media import MediaVersion, collect_garbage, start_media_version
from marquee.resources.storage import ObjectStore, StorageError

#: Transient failures (object storage hiccups) are retried; bad input fails at once
#: (``bad_input_fails_fast``, and any MarqueeError but a StorageError in a ``@title_step``).
#: The concurrency pool of the steps that run big models (TransNetV2, MTCNN, the face embedder,
#: MobileNetV2). A deployment limits it to its number of GPUs (``marquee.orchestration.instance``), so
#: a worker with one GPU never runs two model steps at once; the local instance leaves it unlimited.
MODEL_POOL = "marquee_models"

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


def content_version(sha256: str) -> str:
    """The part of a file's sha256 that data versions carry: the `title` asset's whole data version
    (same bytes, same version: re-ingesting an identical file makes nothing stale), the trailer's
    first part. ``marquee titles`` compares it with a manifest's hashes to see replaced files."""
    return sha256[:24]


#: The data version part standing for "this title has no trailer".
NO_TRAILER = "no-trailer"


def trailer_data_version(sha256: str | None, identity: str) -> str:
    """The `trailer` asset's data version: the trailer's content (``NO_TRAILER`` without one) and the
    shot detector's identity, so a new trailer makes the matches stale and the film's stages not."""
    return f"{content_version(sha256) if sha256 else NO_TRAILER}|{identity}"


def trailer_content_version(data_version: str) -> str | None:
    """The trailer content part of a `trailer` data version; None for a title without a trailer."""
    first = data_version.partition("|")[0]
    return None if first == NO_TRAILER else first


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


#: Run tag naming the owner of a title's lease. ``marquee run`` sets it to the owner of the lease it
#: holds for the whole run, so its steps join that lease; other runs' steps use their run id.
LEASE_OWNER_TAG = "marquee/lease_owner"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class TitleStep:
    """A per-title step holding the title's lease, and the media versions it started."""

    store: ObjectStore
    title_id: str
    owner: str
    lease: TitleLease
    versions: list[MediaVersion] = field(default_factory=list)


#: Steps in progress in this process, by the id of their Dagster context.
_ACTIVE: dict[int, TitleStep] = {}


def lease_owner(context: Any) -> str:
    return context.run.tags.get(LEASE_OWNER_TAG) or context.run.run_id


@contextmanager
def _title_step(context: Any, lake: Any) -> Iterator[TitleStep]:
    title_id = context.partition_key
    store = lake.store()
    lease = TitleLease(
        store,
        title_id,
        owner=lease_owner(context),
        step=context.op_def.name,
        on_wait=lambda h: context.log.warning(f"{title_id}: waiting for {h.describe()}"),
    )
    with bad_input_fails_fast():  # waiting longer will not help: say who holds the title, once
        lease.acquire()
    step = TitleStep(store, title_id, lease.owner, lease)
    _ACTIVE[id(context)] = step
    try:
        try:
            yield step
        except StorageError:
            raise  # may be transient (a dropped connection): the retry policy decides
        except MarqueeError as exc:  # bad input, a missing model or table: the same next time
            raise Failure(description=str(exc), allow_retries=False) from exc
        with bad_input_fails_fast():
            lease.check()
        for version in step.versions:
            version.settle()
        if step.versions:
            # Only a step that wrote media can have replaced what a table points at. Steps that wrote
            # none skip the collection (a listing per media kind and a read of every table's key
            # columns: about a second per step on S3); the title's next media step collects for them.
            collect_garbage(lake.warehouse(), title_id, live_owners(store, title_id), log=context.log.info)
    finally:
        _ACTIVE.pop(id(context), None)
        lease.release()


def title_step(fn: F) -> F:
    """Run a per-title asset's compute function as one *title step*.

    The step holds the title's lease (``marquee.resources.leases``) while it runs, so two runs of
    one title never interleave their writes, on one machine or many; and once it has written its
    tables it deletes the title's media versions that no stored table points at any more
    (``marquee.resources.media``). Put it under ``@asset``/``@multi_asset``; the function must take
    ``context`` and ``lake``. Media it writes go under ``media_version(context, kind)``.
    """
    signature = inspect.signature(fn)

    def parts(args: tuple, kwargs: dict) -> tuple[Any, Any]:
        bound = signature.bind_partial(*args, **kwargs).arguments
        return bound["context"], bound["lake"]

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with _title_step(*parts(args, kwargs)):
                yield from fn(*args, **kwargs)

        return steps  # type: ignore[return-value]

    @functools.wraps(fn)
    def step(*args: Any, **kwargs: Any) -> Any:
        with _title_step(*parts(args, kwargs)):
            return fn(*args, **kwargs)

    return step  # type: ignore[return-value]


def media_version(context: Any, kind: str) -> MediaVersion:
    """A new version of this step's ``kind`` of media (``media/<kind>/<title>/<version>/``), kept
    while the step runs and, once its tables are written, for as long as any table points into it."""
    step = _ACTIVE.get(id(context))
    if step is None:
        raise RuntimeError("media_version() needs a compute function decorated with @title_step")
    step.lease.check()
    version = start_media_version(step.store, kind, step.title_id, step.owner)
    step.versions.append(version)
    return version
