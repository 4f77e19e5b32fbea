"""Where each title stands, read from the Dagster instance (``marquee titles``).

A title is one partition of the ``titles`` dynamic partitions. Its status is one of

- ``waiting``: a group in ``incoming/`` that no run has taken yet, or a title with no run yet;
- ``queued``: its latest run is ``QUEUED``, ``NOT_STARTED`` or ``STARTING``;
- ``running``: its latest run is ``STARTED`` (or ``CANCELING``);
- ``failed``: its latest run ended ``FAILURE`` or ``CANCELED``; ``failed_step`` and ``message`` say
  which step failed and why (the step's own sentence, as ``marquee run`` prints it), else why the
  run failed (a lost worker, a cancel);
- ``done``: its latest run succeeded and every per-title asset is materialised and fresh;
- ``stale``: its latest run succeeded, but something changed since; ``message`` says what.

Everything comes from the instance through the ``DagsterInstance`` API, so the same code answers on
the project-local SQLite instance and on the Postgres one of ``marquee cluster``, and the number of
queries does not grow with the number of titles (1,000 titles is a normal catalogue):

- Latest runs: ``get_run_partition_data`` is one query over the runs table's indexed columns (run id,
  status, partition, end time), newest first, with no run bodies to deserialise. Asking per title
  (``get_runs(filters=RunsFilter(tags={"dagster/partition": ...}))``) would be 1,000 queries.
- Failures: the run failure events since the earliest failed run ended, a page of 1,000 per query
  (Dagster indexes them across runs; each carries its run's first step failure).
- Staleness is Dagster's (``CachingStaleStatusResolver``), evaluated in bulk. That resolver asks the
  event log a few questions per asset *partition*: ~0.5 s per title here, ten minutes for 1,000. A
  title is stale when, for one of its per-title assets:

  * the code version differs from the asset's current one (``lineage.py`` folds upstream code
    versions into each asset's, so a model update shows on everything downstream of it at once; the
    message names the assets whose own code changed);
  * an input's data version differs from the one it was materialised from (Dagster records
    ``sha256(data version)`` for a partitioned input and the data version of an unpartitioned one,
    such as ``expression_model``; a model never trained, recorded as ``INITIAL``, is no change);
  * an input is new or gone (the graph changed);
  * it was never materialised for the title (a subset run, or an asset added since): Dagster calls
    that ``MISSING`` rather than ``STALE``, but either way the title is not done;
  * the title's files changed after it was materialised, which Dagster cannot see (the files are not
    an observable asset): a ``replaced`` or ``trailer-added`` ingest (``Ingested.stale``) writes a
    manifest whose hashes differ from the data versions the ``title`` and ``trailer`` assets
    recorded (the source's and the trailer's sha256).

  The code version and inputs an asset ran with are in the tags of its materialisation, which
  Dagster deserialises whole (~0.3 ms each: 15 assets x 1,000 titles would be 5 s). Two cheap
  queries per asset cover all titles (each partition's latest materialisation: its storage id, its
  data version as an indexed tag), and of the materialisations themselves only one per title is read
  in the usual case: its *sink*'s (``report``, which every other per-title asset feeds; in general,
  each materialised asset that none of the title's other materialised assets reads). Its folded
  code version, when current, vouches for every ancestor its run materialised: those in the run's
  plan whose latest materialisation precedes the sink's (runs of one title do not overlap: queued
  runs are limited to one per title, and ``marquee run`` holds the title's lease throughout). The
  rest is read one by one: assets outside that run (a refresh job leaves ``title`` alone), assets
  whose input was materialised after them, and assets whose run started before their model's latest
  training. After a deploy, the titles whose sink ran one old code version ran the same code for
  every ancestor: one of their runs names what changed. ``stale_reasons`` has the details; the tests
  check the answers against Dagster's resolver.

  Measured on 1,000 titles (876 succeeded, 15 assets each, two runs of history for half of them;
  two busy CPUs): ``read_statuses`` takes ~1 s on the SQLite instance and ~1.5 s on Postgres
  (Dagster's Postgres storage opens a connection per query), with the current code as after a
  detector change that makes all 876 stale; reading every latest materialisation instead took ~10 s
  on Postgres. ``marquee titles`` takes 4-5 s in all, most of it imports and opening the instance.

The current code versions are those of the definitions the caller passes: ``marquee titles`` builds
them in its own environment, so settings that change code versions (``MARQUEE_SHOT_DETECTOR``...)
must be the deployment's (``marquee cluster env`` prints them).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    RunStatusChangeRecordsFilter,
)
from dagster._core.definitions.data_version import (
    DATA_VERSION_TAG,
    DEFAULT_DATA_VERSION,
    NULL_DATA_VERSION,
    DataProvenance,
    DataVersion,
    extract_data_version_from_entry,
)
from dagster._core.events import JobFailureData

from marquee.assets.common import content_version, trailer_content_version
from marquee.assets.title import INCOMING_SIGNATURE_TAG
from marquee.orchestration.lineage import folds_upstream, own_code_version
from marquee.orchestration.logs import failure_reason

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
    from dagster._core.events.log import EventLogEntry
    from dagster._core.storage.dagster_run import DagsterRun, RunRecord

    from marquee.resources.titles import IncomingTitle, TitleManifest

__all__ = [
    "RUN_STATES",
    "STATUS_COLUMNS",
    "Statuses",
    "TitleState",
    "TitleStatus",
    "latest_runs",
    "read_statuses",
]

TitleState = Literal["waiting", "queued", "running", "done", "failed", "stale"]

#: What the latest run's status says about its title (``done`` still has to pass the staleness check).
RUN_STATES: Mapping[DagsterRunStatus, TitleState] = {
    DagsterRunStatus.QUEUED: "queued",
    DagsterRunStatus.NOT_STARTED: "queued",
    DagsterRunStatus.STARTING: "queued",
    DagsterRunStatus.STARTED: "running",
    DagsterRunStatus.CANCELING: "running",
    DagsterRunStatus.MANAGED: "running",
    DagsterRunStatus.SUCCESS: "done",
    DagsterRunStatus.FAILURE: "failed",
    DagsterRunStatus.CANCELED: "failed",
}

#: Run statuses that have an end time.
FINISHED = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})

TITLE, TRAILER = AssetKey("title"), AssetKey("trailer")
#: Storage ids per ``fetch_materializations`` call (under SQLite's and Postgres' parameter limits).
CHUNK = 500
#: Run failure events per page, and how many pages to read before reading failed runs one by one.
PAGE, PAGES = 1000, 5
#: The longest ``message``; the whole story is in the run's event log (``marquee ui``).
MESSAGE_CHARS = 400

_FAILURE_EVENTS = {DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED}


@dataclass(frozen=True)
class TitleStatus:
    """One title's standing. ``message`` is one line: why it failed, or what makes it stale."""

    title_id: str
    status: TitleState
    last_run_id: str | None = None
    last_run_end: str | None = None  # ISO 8601 in UTC; None until the run has ended
    failed_step: str | None = None
    message: str | None = None

    def columns(self) -> dict[str, str | None]:
        """The fields ``marquee titles`` adds to each of its rows."""
        row = asdict(self)
        del row["title_id"]
        return row


#: The columns ``TitleStatus.columns`` gives, in order.
STATUS_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TitleStatus) if f.name != "title_id")


@dataclass(frozen=True)
class LatestRun:
    run_id: str
    status: DagsterRunStatus
    end_time: float | None


@dataclass
class Statuses:
    """Statuses of titles (by id) and of the groups waiting in ``incoming/`` (in the order given)."""

    titles: dict[str, TitleStatus] = field(default_factory=dict)
    incoming: list[TitleStatus] = field(default_factory=list)


def read_statuses(
    instance: DagsterInstance,
    asset_graph: BaseAssetGraph | Callable[[], BaseAssetGraph],
    titles: Mapping[str, TitleManifest | None],
    incoming: Sequence[IncomingTitle] = (),
    *,
    asset_keys: Collection[AssetKey] | None = None,
) -> Statuses:
    """The status of every title in ``titles`` (id -> its manifest, None if it has none) and of every
    group waiting in ``incoming/``.

    ``asset_graph`` gives the current code versions and dependencies (or a function that builds it,
    called only when a title's latest run succeeded: loading Marquee's definitions imports its models'
    libraries, seconds); ``asset_keys`` are the per-title assets a title needs to be ``done``
    (default: every partitioned asset of the graph, which is what ``marquee_title_job`` materialises).
    """
    latest = latest_runs(instance)
    out = Statuses(
        titles={tid: _from_run(tid, latest.get(tid)) for tid in titles},
        incoming=_incoming(instance, latest, incoming),
    )
    ended = {r.run_id: r.end_time for r in latest.values()}
    failed = {s.last_run_id for s in [*out.titles.values(), *out.incoming] if s.status == "failed"}
    reasons = _failures(instance, {run_id: ended.get(run_id) for run_id in failed if run_id})

    def explained(s: TitleStatus) -> TitleStatus:
        if s.status != "failed" or s.last_run_id not in reasons:
            return s
        step, message = reasons[s.last_run_id]
        return replace(s, failed_step=step, message=message)

    out.titles = {tid: explained(s) for tid, s in out.titles.items()}
    out.incoming = [explained(s) for s in out.incoming]
    done = {tid: titles[tid] for tid, s in out.titles.items() if s.status == "done"}
    if not done:
        return out
    graph = asset_graph() if callable(asset_graph) else asset_graph
    keys = set(asset_keys) if asset_keys is not None else _title_assets(graph)
    for tid, why in stale_reasons(instance, graph, done, keys).items():
        out.titles[tid] = replace(out.titles[tid], status="stale", message=_one_line("; ".join(why)))
    return out


def latest_runs(instance: DagsterInstance) -> dict[str, LatestRun]:
    """The newest run of every partition: one query over the runs table's indexed columns.

    Storage without the run-partition index (an in-memory instance, one never migrated) answers
    without times; the finished runs' end times then come from their run records, in a few queries.
    """
    latest = {
        d.partition: LatestRun(d.run_id, d.status, d.end_time)
        for d in instance.get_run_partition_data(RunsFilter())
    }
    untimed = [r.run_id for r in latest.values() if r.end_time is None and r.status in FINISHED]
    ends = {r.dagster_run.run_id: r.end_time for r in _run_records(instance, untimed)}
    return {
        p: replace(r, end_time=ends[r.run_id]) if ends.get(r.run_id) is not None else r
        for p, r in latest.items()
    }


def _from_run(tid: str, run: LatestRun | None) -> TitleStatus:
    if run is None:
        return TitleStatus(tid, "waiting")
    return TitleStatus(tid, RUN_STATES.get(run.status, "running"), run.run_id, _iso(run.end_time))


def _incoming(
    instance: DagsterInstance, latest: Mapping[str, LatestRun], groups: Sequence[IncomingTitle]
) -> list[TitleStatus]:
    """A group in ``incoming/`` is as far as the run the sensor requested for exactly these files (the
    run's signature tag); it waits while there is none, or after one that succeeded (the run took the
    files, so these are a new drop)."""
    run_ids = [latest[g.title_id].run_id for g in groups if g.title_id in latest]
    tags = {r.dagster_run.run_id: r.dagster_run.tags for r in _run_records(instance, run_ids)}
    out: list[TitleStatus] = []
    for group in groups:
        run = latest.get(group.title_id)
        if run is not None and tags.get(run.run_id, {}).get(INCOMING_SIGNATURE_TAG) == group.signature:
            status = _from_run(group.title_id, run)
            if status.status != "done":
                out.append(status)
                continue
        out.append(TitleStatus(group.title_id, "waiting"))
    return out


# ---- failures ----------------------------------------------------------------------------------
def _failures(
    instance: DagsterInstance, runs: Mapping[str, float | None]
) -> dict[str, tuple[str | None, str]]:
    """run id (-> its end time) -> (failed step or None, one-line reason).

    A run's ``RUN_FAILURE`` event carries its first step failure, and the event log indexes these
    events across runs: the failures since the earliest of these runs ended come in pages of
    ``PAGE``, however many runs failed. (One query per run would open one SQLite file per run.) A
    run not found that way (no end time, or further back than ``PAGES`` pages) has its own log read.
    """
    out: dict[str, tuple[str | None, str]] = {}
    ends = [end for end in runs.values() if end is not None]
    since = min(ends) - 60 if ends and len(ends) == len(runs) else None
    for kind in (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED):
        cursor: str | None = None
        for _ in range(PAGES):
            if out.keys() >= runs.keys():
                break
            page = instance.fetch_run_status_changes(
                RunStatusChangeRecordsFilter(kind, after_timestamp=since), limit=PAGE, cursor=cursor
            )
            for record in page.records:
                if record.run_id in runs and record.run_id not in out:
                    out[record.run_id] = _failure([record.event_log_entry])
            if not page.has_more:
                break
            cursor = page.cursor
    for run_id in sorted(runs.keys() - out.keys()):
        records = instance.get_records_for_run(run_id, of_type=_FAILURE_EVENTS).records
        out[run_id] = _failure(r.event_log_entry for r in records)
    return out


def _failure(entries: Iterable[EventLogEntry]) -> tuple[str | None, str]:
    """The first step failure (its step and sentence), else the run's failure or cancel message."""
    run_level: str | None = None
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.RUN_FAILURE:
            data = event.event_specific_data
            step = data.first_step_failure_event if isinstance(data, JobFailureData) else None
            if step is not None:
                event = step
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_failure_data is not None:
            return event.step_key, _one_line(failure_reason(event.step_failure_data))
        if run_level is None:
            run_level = event.message or entry.user_message
    return None, _one_line(run_level or "the run failed without a failure event")


# ---- staleness ---------------------------------------------------------------------------------
def _title_assets(asset_graph: BaseAssetGraph) -> set[AssetKey]:
    return {k for k in asset_graph.materializable_asset_keys if asset_graph.get(k).is_partitioned}


@dataclass(frozen=True)
class _Used:
    """What one materialisation ran with: its run and Dagster's provenance (None if unrecorded)."""

    run_id: str
    provenance: DataProvenance | None


@dataclass(frozen=True)
class _Run:
    start_time: float | None
    assets: frozenset[AssetKey] | None  # what the run materialises; None if unknown


class _EventLog:
    """Batched reads of the materialisations and runs ``stale_reasons`` needs, each read once."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.used: dict[tuple[AssetKey, int], _Used] = {}
        self.runs: dict[str, _Run] = {}
        self._plans: dict[str, frozenset[AssetKey] | None] = {}

    def load(self, wanted: Mapping[AssetKey, Collection[int]]) -> None:
        """Read these materialisations (asset -> storage ids), a few queries per asset."""
        for key, storage_ids in wanted.items():
            todo = sorted({i for i in storage_ids if (key, i) not in self.used})
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start : start + CHUNK]
                page = self.instance.fetch_materializations(
                    AssetRecordsFilter(key, storage_ids=chunk), limit=len(chunk)
                )
                for record in page.records:
                    mat = record.asset_materialization
                    tags = mat.tags if mat is not None and mat.tags else {}
                    self.used[key, record.storage_id] = _Used(record.run_id, DataProvenance.from_tags(tags))

    def load_runs(self, run_ids: Iterable[str]) -> None:
        """Read these runs: when they started and which assets they materialise (their plan)."""
        for record in _run_records(self.instance, [r for r in run_ids if r and r not in self.runs]):
            run = record.dagster_run
            self.runs[run.run_id] = _Run(record.start_time, self._planned(run))

    def _planned(self, run: DagsterRun) -> frozenset[AssetKey] | None:
        snapshot_id = run.execution_plan_snapshot_id
        if snapshot_id is None:
            return None
        if snapshot_id not in self._plans:
            plan = self.instance.get_execution_plan_snapshot(snapshot_id)  # None if it is gone
            steps = set(plan.step_keys_to_execute or [s.key for s in plan.steps]) if plan else set()
            self._plans[snapshot_id] = (
                frozenset(
                    out.properties.asset_key
                    for step in plan.steps
                    if step.key in steps
                    for out in step.outputs
                    if out.properties is not None and out.properties.is_asset and out.properties.asset_key
                )
                if plan is not None
                else None
            )
        planned = self._plans[snapshot_id]
        if planned is None:
            return None
        # A subset run names its assets; a whole-job run has none (or an empty set) and runs its plan.
        return planned & run.asset_selection if run.asset_selection else planned


def stale_reasons(
    instance: DagsterInstance,
    asset_graph: BaseAssetGraph,
    titles: Mapping[str, TitleManifest | None],
    asset_keys: Collection[AssetKey],
) -> dict[str, list[str]]:
    """title id -> what makes it stale, for the titles that are (see the module docstring).

    Which materialisations are read, and why that is enough:

    1. each title's latest materialisation of each of its *sinks* (the assets it has materialised
       that none of its other materialised assets reads: ``report`` once a title is complete) and
       the run that made it, with that run's plan (which assets it materialises);
    2. the code version of a sink folds in those of all its ancestors (``lineage.py``), so when it
       equals the current one, every ancestor the same run materialised ran current code too. Those
       are the ancestors in the run's plan whose latest materialisation precedes the sink's (runs of
       one title do not overlap, so nothing else materialised them in between);
    3. read individually: every other asset's latest materialisation (outside that run), one whose
       partitioned input was materialised after it (did its data version change?), and one whose
       run started before its unpartitioned input's latest materialisation (a retrained model);
    4. when a sink's code version is *not* current, the titles sharing that old code version (a
       deploy) ran the same code for every ancestor: one of them is read to name what changed.
    """
    if not titles:
        return {}
    order = [k for k in asset_graph.toposorted_asset_keys if k in asset_keys]
    ids: dict[AssetKey, Mapping[str, int]] = {}
    models: dict[AssetKey, tuple[DataVersion, float | None]] = {}
    for key in order:
        ids[key] = _latest_ids(instance, key, titles)
    for key in order:
        for dep in asset_graph.get(key).parent_keys:
            if dep in ids or dep in models:
                continue
            if asset_graph.has(dep) and asset_graph.get(dep).is_partitioned:  # outside ``asset_keys``
                ids[dep] = _latest_ids(instance, dep, titles)
            else:
                models[dep] = _current_version(instance, asset_graph, dep)
    parents = {k: set(asset_graph.get(k).parent_keys) for k in order}
    covers = {k: _ancestors(asset_graph, k) & set(order) for k in order}
    sinks: dict[str, list[AssetKey]] = {}  # per title: its materialised assets none of the others reads
    for t in titles:
        present = [a for a in order if t in ids[a]]
        sinks[t] = [a for a in present if not any(a in parents[c] for c in present)]
    log = _EventLog(instance)

    # 1-2. The sinks, their runs, and the ancestors each run certifies.
    heads: dict[AssetKey, set[int]] = defaultdict(set)
    for t, mine in sinks.items():
        for s in mine:
            heads[s].add(ids[s][t])
    log.load(heads)
    log.load_runs(log.used[s, ids[s][t]].run_id for t, mine in sinks.items() for s in mine)
    certified: dict[str, dict[AssetKey, AssetKey]] = {t: {} for t in titles}  # title -> asset -> sink
    for t, mine in sinks.items():
        for s in mine:
            run = log.runs.get(log.used[s, ids[s][t]].run_id)
            if run is None or run.assets is None or not folds_upstream(asset_graph.get(s).code_version):
                continue
            for a in covers[s]:
                if a in run.assets and ids[a].get(t, ids[s][t]) < ids[s][t]:
                    certified[t].setdefault(a, s)

    # 3. What must be read one by one.
    wanted: dict[AssetKey, set[int]] = defaultdict(set)
    for t in titles:
        for a in order:
            if t not in ids[a]:
                continue
            mine = ids[a][t]
            sink = certified[t].get(a)
            if sink is None:
                wanted[a].add(mine)
                continue
            started = log.runs[log.used[sink, ids[sink][t]].run_id].start_time
            for dep in parents[a]:
                if dep in models:
                    when = models[dep][1]
                    if when is not None and (started is None or when >= started):
                        wanted[a].add(mine)
                elif ids[dep].get(t, mine + 1) > mine:  # re-materialised (or wiped) since
                    wanted[a].add(mine)
    log.load(wanted)

    # 4. Old sink code versions: one title per version tells the code every ancestor ran.
    old: dict[tuple[AssetKey, str], list[str]] = defaultdict(list)
    for t, mine in sinks.items():
        for s in mine:
            used = log.used.get((s, ids[s][t]))
            now = asset_graph.get(s).code_version
            if used is not None and used.provenance is not None and used.provenance.code_version != now:
                old[s, used.provenance.code_version].append(t)
    representative: dict[tuple[AssetKey, str], dict[AssetKey, str]] = {}
    for (s, version), group in old.items():  # one query per old version: the first title's run
        first = group[0]
        records = instance.get_records_for_run(
            log.used[s, ids[s][first]].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
        ).records
        ran = (r.asset_materialization for r in records)
        representative[s, version] = {
            m.asset_key: p.code_version
            for m in ran
            if m is not None and m.partition == first and (p := DataProvenance.from_tags(m.tags or {}))
        }
    unknown: dict[AssetKey, set[int]] = defaultdict(set)  # ran with that code, yet not in that run
    for (s, version), group in old.items():
        for t in group:
            for a, by in certified[t].items():
                if by == s and a not in representative[s, version]:
                    unknown[a].add(ids[a][t])
    log.load(unknown)

    # Current data versions (an indexed tag) of the files' assets and of the inputs of what was read.
    read = {a for a, _ in log.used}
    needed = {TITLE, TRAILER} | {d for a in read if a in parents for d in parents[a] if d in ids}
    versions = {a: _latest_versions(instance, a, titles) for a in sorted(needed) if a in ids}

    out: dict[str, list[str]] = {}
    for t, manifest in titles.items():
        why = list(_changed_files(t, manifest, versions.get(TITLE), versions.get(TRAILER)))
        why += _asset_causes(t, asset_graph, order, ids, versions, models, log, certified[t], representative)
        if why:
            out[t] = why
    return out


def _latest_ids(instance: DagsterInstance, key: AssetKey, partitions: Collection[str]) -> dict[str, int]:
    """The storage id of each partition's latest materialisation (one query)."""
    ids = instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
    return {p: i for p, i in ids.items() if p in partitions}


def _latest_versions(instance: DagsterInstance, key: AssetKey, partitions: Collection[str]) -> dict[str, str]:
    """The data version of each partition's latest materialisation (one query: an indexed tag)."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        key, DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG]
    )
    return {p: v[DATA_VERSION_TAG] for p, v in tags.items() if p in partitions and DATA_VERSION_TAG in v}


def _current_version(
    instance: DagsterInstance, asset_graph: BaseAssetGraph, key: AssetKey
) -> tuple[DataVersion, float | None]:
    """Dagster's current data version of an unpartitioned input (NULL when never materialised), and
    when it was materialised."""
    external = asset_graph.has(key) and asset_graph.get(key).is_external
    record = instance.get_latest_data_version_record(key, external)
    if record is None:
        return (DEFAULT_DATA_VERSION if external else NULL_DATA_VERSION), None
    version = extract_data_version_from_entry(record.event_log_entry) or DEFAULT_DATA_VERSION
    return version, record.timestamp


def _ancestors(asset_graph: BaseAssetGraph, key: AssetKey) -> set[AssetKey]:
    found: set[AssetKey] = set()
    todo = [key]
    while todo:
        for parent in asset_graph.get(todo.pop()).parent_keys:
            if parent not in found and asset_graph.has(parent):
                found.add(parent)
                todo.append(parent)
    return found


def _asset_causes(
    tid: str,
    asset_graph: BaseAssetGraph,
    order: Sequence[AssetKey],
    ids: Mapping[AssetKey, Mapping[str, int]],
    versions: Mapping[AssetKey, Mapping[str, str]],
    models: Mapping[AssetKey, tuple[DataVersion, float | None]],
    log: _EventLog,
    certified: Mapping[AssetKey, AssetKey],
    representative: Mapping[tuple[AssetKey, str], Mapping[AssetKey, str]],
) -> list[str]:
    """Dagster's stale (and missing) causes of one title's assets, as sentences, upstream first."""
    missing: list[str] = []
    new_code: list[str] = []
    downstream_of_new_code: list[str] = []
    new_inputs: list[str] = []
    graph_changes: list[str] = []
    for key in order:
        name = key.to_user_string()
        if tid not in ids[key]:
            missing.append(name)
            continue
        node = asset_graph.get(key)
        used = log.used.get((key, ids[key][tid]))
        ran: str | None = None  # the code version it ran with
        if used is not None:
            if used.provenance is None:  # reported from outside a run: nothing to compare with
                continue
            ran = used.provenance.code_version
            inputs = used.provenance.input_data_versions
            for gone in sorted(set(inputs) - set(node.parent_keys)):
                graph_changes.append(f"{name} no longer reads {gone.to_user_string()}")
            for dep in sorted(node.parent_keys):
                if dep not in inputs:
                    graph_changes.append(f"{name} now reads {dep.to_user_string()}")
                elif _input_changed(inputs[dep], dep, tid, versions, models):
                    new_inputs.append(f"{name} (from {dep.to_user_string()})")
        else:  # certified by a sink of the same run (read above, with its run)
            sink = certified[key]
            sink_ran = log.used[sink, ids[sink][tid]]
            assert sink_ran.provenance is not None
            sink_version = sink_ran.provenance.code_version
            if sink_version == asset_graph.get(sink).code_version:
                ran = node.code_version
            else:
                ran = representative.get((sink, sink_version), {}).get(key)
        if node.code_version and ran != node.code_version:
            if own_code_version(ran) != own_code_version(node.code_version):
                new_code.append(name)
            else:
                downstream_of_new_code.append(name)
    why: list[str] = []
    if new_code:
        more = len(downstream_of_new_code)
        why.append(
            f"new code version: {_names(new_code)}" + (f" and {more} asset(s) downstream" if more else "")
        )
    elif downstream_of_new_code:
        why.append(f"new code version upstream of: {_names(downstream_of_new_code)}")
    if new_inputs:
        why.append(f"inputs changed since materialised: {_names(new_inputs)}")
    if graph_changes:
        why.append(f"dependencies changed: {_names(graph_changes)}")
    if missing:
        why.append(f"never materialised: {_names(missing)}")
    return why


def _input_changed(
    used: DataVersion,
    dep: AssetKey,
    tid: str,
    versions: Mapping[AssetKey, Mapping[str, str]],
    models: Mapping[AssetKey, tuple[DataVersion, float | None]],
) -> bool:
    if dep in models:
        now = models[dep][0]
        # Dagster's own exception: INITIAL recorded, never materialised now, is the same "no value".
        return used != now and not (used == DEFAULT_DATA_VERSION and now == NULL_DATA_VERSION)
    # A partitioned input (the same title): Dagster records sha256 of the partitions' data versions.
    now = versions.get(dep, {}).get(tid, "")
    return used.value != hashlib.sha256(now.encode()).hexdigest()


def _changed_files(
    tid: str,
    manifest: TitleManifest | None,
    title: Mapping[str, str] | None,
    trailer: Mapping[str, str] | None,
) -> Iterator[str]:
    """The title's files changed after ``title``/``trailer`` were materialised: their data versions
    carry the source's and the trailer's content versions (``assets/title.py``, ``assets/trailer.py``)."""
    if manifest is None:
        return
    source = title.get(tid) if title is not None else None
    if source is not None and manifest.content_sha256 and source != content_version(manifest.content_sha256):
        what = f"{manifest.source_name}, {manifest.ingested_at}"
        yield f"the source was replaced after it was processed ({what})"
    took = trailer.get(tid) if trailer is not None else None
    if took is None:
        return
    took_content = trailer_content_version(took)
    had_none = took_content is None
    if manifest.trailer_key is None:
        if not had_none:
            yield "the trailer was removed after the title was processed"
    elif manifest.trailer_sha256 and took_content != content_version(manifest.trailer_sha256):
        change = "added" if had_none else "replaced"
        yield f"a trailer was {change} after the title was processed ({manifest.trailer_name})"


# ---- small helpers -----------------------------------------------------------------------------
def _run_records(instance: DagsterInstance, run_ids: Iterable[str]) -> Iterator[RunRecord]:
    """The records of these runs, a few queries for any number."""
    todo = sorted(set(run_ids))
    for start in range(0, len(todo), CHUNK):
        yield from instance.get_run_records(RunsFilter(run_ids=todo[start : start + CHUNK]))


def _names(items: Sequence[str], show: int = 5) -> str:
    head = ", ".join(items[:show])
    return head + (f" (+{len(items) - show} more)" if len(items) > show else "")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
