"""Shared bits of the thin asset layer: the title step (lease, declared table reads and writes, media
versions), retry policy, table metadata and data versions."""

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
    AssetsDefinition,
    Backoff,
    DataVersion,
    Failure,
    MetadataValue,
    RetryPolicy,
    asset,
)

from marquee.assets.partitions import titles_partitions
from marquee.ops.errors import MarqueeError
from marquee.ops.faces.pipeline import KeyframeImage
from marquee.ops.images import decode_rgb
from marquee.ops.memory import release_memory
from marquee.ops.progress import ProgressFactory, ProgressFn, progress_message, throttled
from marquee.resources.leases import TitleLease, live_owners
from marquee.resources.media import MediaVersion, collect_garbage, start_media_version
from marquee.resources.storage import ObjectStore, StorageError
from marquee.resources.tables import spec, tables_of, upstream
from marquee.resources.warehouse import Warehouse

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


def load_keyframe(store: ObjectStore, row: dict[str, Any]) -> KeyframeImage:
    """A ``keyframes`` row with its picture read from object storage."""
    image = decode_rgb(store.read_bytes(row["image_key"]), store.url(row["image_key"]))
    return KeyframeImage(int(row["frame"]), float(row["time_s"]), int(row["shot_id"]), image)


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


class UndeclaredTableError(RuntimeError):
    """An asset read or wrote a table it did not declare: its Dagster deps would be wrong."""


#: (op name, table) of every declared read performed in this process; the test of the asset graph
#: compares it with the declarations after running the whole graph.
READS_SEEN: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Reads:
    """What one asset reads: the declaration its Dagster deps are derived from.

    ``tables`` are the tables its compute function reads (``TitleStep.read`` refuses any other),
    ``models`` the stored models it loads, and ``after`` the assets it must follow for a reason no
    table expresses (say why beside it). ``deps`` are the assets that write those tables and models,
    plus ``after``: the lineage the UI shows is the graph of reads and writes.
    """

    asset: str
    tables: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        upstream(self.tables, self.models)  # unknown names fail when the code location loads
        if DECLARED.setdefault(self.asset, self) != self:
            raise ValueError(f"asset {self.asset!r} declares two different reads")

    @property
    def deps(self) -> list[AssetKey]:
        return [AssetKey(a) for a in sorted(set(upstream(self.tables, self.models)) | set(self.after))]


@dataclass(frozen=True)
class TableReader:
    """Declared reads across titles, for the assets that are not partitioned (the models)."""

    reads: Reads
    warehouse: Warehouse

    def titles(self, table: str) -> list[str]:
        self._check(table)
        return self.warehouse.titles(table)

    def has(self, table: str, title_id: str) -> bool:
        self._check(table)
        return self.warehouse.has_table(table, title_id)

    def read(self, table: str, title_id: str) -> pa.Table:
        self._check(table)
        READS_SEEN.add((self.reads.asset, table))
        return self.warehouse.read_table(table, title_id)

    def _check(self, table: str) -> None:
        if table not in self.reads.tables:
            raise UndeclaredTableError(f"{self.reads.asset} reads {table!r} without declaring it")


#: Every asset's declared reads, by asset name (the test of the asset graph walks them).
DECLARED: dict[str, Reads] = {}


@dataclass
class TitleStep:
    """A per-title step holding the title's lease: the tables it may read (declared) and write (its
    assets' tables in ``marquee.resources.tables``), and the media versions it started."""

    store: ObjectStore
    warehouse: Warehouse
    title_id: str
    owner: str
    lease: TitleLease
    op: str
    reads: frozenset[str]
    writes: frozenset[str]
    versions: list[MediaVersion] = field(default_factory=list)

    def read(self, table: str) -> pa.Table:
        """This title's partition of ``table``, which the asset must have declared as read."""
        self._check_read(table)
        READS_SEEN.add((self.op, table))
        return self.warehouse.read_table(table, self.title_id)

    def has(self, table: str) -> bool:
        """Whether this title has ``table`` (a declared read that may legitimately be absent)."""
        self._check_read(table)
        return self.warehouse.has_table(table, self.title_id)

    def write(self, tables: dict[str, pa.Table | list[dict[str, Any]]]) -> dict[str, str]:
        """Write tables of this step's assets together (``Warehouse.write_tables``), each in its
        declared schema (rows are made into one; a table is checked and cast)."""
        undeclared = sorted(set(tables) - self.writes)
        if undeclared:
            raise UndeclaredTableError(
                f"{self.op} writes {undeclared}, which marquee/resources/tables.py gives to other assets "
                f"(it may write {sorted(self.writes)})"
            )
        built = {
            n: spec(n).conform(t) if isinstance(t, pa.Table) else spec(n).table(t) for n, t in tables.items()
        }
        return self.warehouse.write_tables(self.title_id, built)

    def _check_read(self, table: str) -> None:
        if table not in self.reads:
            raise UndeclaredTableError(
                f"{self.op} reads {table!r} without declaring it: add it to the asset's reads, so the "
                "asset depends on the asset that writes it"
            )


#: Steps in progress in this process, by the id of their Dagster context.
_ACTIVE: dict[int, TitleStep] = {}


def lease_owner(context: Any) -> str:
    return context.run.tags.get(LEASE_OWNER_TAG) or context.run.run_id


def _step_assets(context: Any) -> list[str]:
    """The asset names this step materialises (a multi-asset's selected subset)."""
    try:
        keys = context.selected_asset_keys
    except Exception:  # an op outside an asset graph
        return []
    return [k.to_user_string() for k in keys]


@contextmanager
def _title_step(context: Any, lake: Any, reads: frozenset[str]) -> Iterator[TitleStep]:
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
    writes = frozenset(t for a in _step_assets(context) for t in tables_of(a))
    step = TitleStep(
        store, lake.warehouse(), title_id, lease.owner, lease, context.op_def.name, reads, writes
    )
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
            collect_garbage(step.warehouse, title_id, live_owners(store, title_id), log=context.log.info)
    finally:
        _ACTIVE.pop(id(context), None)
        lease.release()
        release_memory()  # the next step (of this title or another) starts from what is really in use


def title_step(*reads: Reads) -> Callable[[F], F]:
    """Run a per-title asset's compute function as one *title step*.

    The step holds the title's lease (``marquee.resources.leases``) while it runs, so two runs of
    one title never interleave their writes, on one machine or many; and once it has written its
    tables it deletes the title's media versions that no stored table points at any more
    (``marquee.resources.media``). Put it under ``@asset``/``@multi_asset`` with
    ``deps=reads.deps``, passing the same ``Reads`` (one per asset of a multi-asset); the function must
    take ``context`` and ``lake``, reads and writes tables through ``current_step(context)`` (only the
    tables it declared; only its own assets' tables), and writes media under
    ``media_version(context, kind)``.
    """
    declared = frozenset(t for r in reads for t in r.tables)

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        def parts(args: tuple, kwargs: dict) -> tuple[Any, Any]:
            bound = signature.bind_partial(*args, **kwargs).arguments
            return bound["context"], bound["lake"]

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def steps(*args: Any, **kwargs: Any) -> Iterator[Any]:
                with _title_step(*parts(args, kwargs), declared):
                    yield from fn(*args, **kwargs)

            return steps  # type: ignore[return-value]

        @functools.wraps(fn)
        def step(*args: Any, **kwargs: Any) -> Any:
            with _title_step(*parts(args, kwargs), declared):
                return fn(*args, **kwargs)

        return step  # type: ignore[return-value]

    return decorate


def title_asset(reads: Reads, **asset_kwargs: Any) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """A per-title asset: Dagster's ``@asset`` named ``reads.asset``, partitioned by title, depending
    on the writers of what it reads (``reads.deps``), retried on transient errors (``HEAVY_RETRY``
    unless ``retry_policy`` is given), its compute function run as a ``title_step``. Every other
    keyword goes to ``@asset`` as it is."""

    def decorate(fn: Callable[..., Any]) -> AssetsDefinition:
        kwargs = {"retry_policy": HEAVY_RETRY} | asset_kwargs
        return asset(name=reads.asset, deps=reads.deps, partitions_def=titles_partitions, **kwargs)(
            title_step(reads)(fn)
        )

    return decorate


def current_step(context: Any) -> TitleStep:
    """The title step running ``context``'s compute function (see ``title_step``)."""
    step = _ACTIVE.get(id(context))
    if step is None:
        raise RuntimeError("current_step() needs a compute function decorated with @title_step(...)")
    return step


def step_progress(context: Any, every_s: float = 2.0) -> ProgressFactory:
    """Progress of a step's stages as log lines (``progress_message``): the UI shows them, and the
    ``marquee run`` console draws them as bars. At most one line per ``every_s`` per stage."""

    def factory(label: str, unit: str) -> ProgressFn:
        return throttled(
            lambda done, total: context.log.info(progress_message(label, done, total, unit)), every_s
        )

    return factory


def media_version(context: Any, kind: str) -> MediaVersion:
    """A new version of this step's ``kind`` of media (``media/<kind>/<title>/<version>/``), kept
    while the step runs and, once its tables are written, for as long as any table points into it."""
    step = current_step(context)
    if not any(kind in spec(t).media for t in step.writes):
        raise UndeclaredTableError(
            f"{step.op} writes {kind!r} media, which none of its tables declares "
            "(marquee/resources/tables.py)"
        )
    step.lease.check()
    version = start_media_version(step.store, kind, step.title_id, step.owner)
    step.versions.append(version)
    return version
