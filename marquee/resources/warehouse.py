"""Tables as Parquet partitions in object storage, with a DuckDB catalog of views over them.

Each table asset writes one file per title, ``tables/<table>/title_id=<id>/part-0.parquet``,
atomically through the object store. Writers never open the DuckDB catalog, so runs of different
titles (in different processes or on different machines) never contend for DuckDB's single-writer
lock; the catalog only holds *views* with globs over the partitions, so a new title shows up in every
query without anyone re-registering it.

Every stored row carries ``title_id`` (the file column, not only the folder name), so a partition
copied anywhere still says what it belongs to, and titles that look like numbers stay strings.
"""

from __future__ import annotations

import errno
import re
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from marquee.ops.errors import MarqueeError
from marquee.ops.titles import validate_title_id
from marquee.resources.leases import check_not_lost
from marquee.resources.storage import ObjectStore, StorageError

TABLES = "tables"
PART = "part-0.parquet"
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class TableNotFoundError(MarqueeError):
    """A table partition that should exist does not (its upstream asset was not materialised)."""


class SqlError(MarqueeError):
    """A query cannot run: a syntax error, an unknown table or column, a failed read (one line)."""


class SqlRefusedError(SqlError):
    """A statement the read-only ``Warehouse.sql`` does not run, or a file outside the lake's tables."""


#: Statement kinds that only read. DuckDB parses DESCRIBE, SHOW, SUMMARIZE, VALUES and FROM-first
#: queries as SELECT; an EXPLAIN is checked for the statement it explains (EXPLAIN ANALYZE runs it).
_READ_KINDS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
#: The path in DuckDB's refusal, ``Permission Error: Cannot access file "/etc/passwd" - ...``.
_DENIED = re.compile(r'Cannot access (?:file|directory) "([^"]*)"')


class Warehouse:
    """Read and write per-title table partitions; query all of them with DuckDB SQL."""

    def __init__(self, store: ObjectStore, catalog_path: Path | None = None) -> None:
        self.store = store
        self.catalog_path = Path(catalog_path) if catalog_path else None

    # -- partitions -------------------------------------------------------------------------------

    @staticmethod
    def partition_key(table: str, title_id: str) -> str:
        if not _TABLE_NAME.match(table):
            raise ValueError(f"invalid table name {table!r}")
        validate_title_id(title_id)
        return f"{TABLES}/{table}/title_id={title_id}/{PART}"

    def write_table(self, table: str, title_id: str, data: pa.Table) -> str:
        """Atomically replace ``title_id``'s partition of ``table``; returns the object URL.

        A ``title_id`` column is added in front (or checked, when the table already has one).
        """
        return self.write_tables(title_id, {table: data})[table]

    def write_tables(self, title_id: str, tables: dict[str, pa.Table]) -> dict[str, str]:
        """Replace ``title_id``'s partitions of several tables that belong together (e.g. clusters
        and characters); returns each table's object URL.

        Every table is validated and serialised before any is replaced, so a failure there (a bad
        row, a full disk) leaves all of them at their last good version; the replacement itself is
        one atomic move or upload per table, in quick succession.
        """
        keys = {name: self.partition_key(name, title_id) for name in tables}
        with ExitStack() as stack:
            name, tmp = next(iter(tables), ""), ""
            try:
                tmp = stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="marquee-table-", ignore_cleanup_errors=True)
                )
                staged = {}
                for name, data in tables.items():
                    local = Path(tmp) / f"{name}.parquet"
                    pq.write_table(_with_title_id(name, title_id, data), local, compression="zstd")
                    staged[name] = local
            except OSError as exc:  # the local temporary folder, not the store: say which, and TMPDIR
                url = self.store.url(keys[name] if name else TABLES)
                raise _cannot_stage(url, tmp, exc) from exc
            check_not_lost(self.store, title_id)  # a run that lost the title writes nothing more
            for name, local in staged.items():
                self.store.put_file(local, keys[name])
        if self.store.is_local:
            # On one machine the catalog file is what other DuckDB clients open: keep it current.
            # Writers on shared (S3) storage never touch DuckDB: its views glob every partition, and
            # refreshing them costs a listing of every title's tables on every write (seconds per
            # step at a thousand titles); queries build their views when they run.
            self.refresh_catalog(only_if_free=True)
        return {name: self.store.url(key) for name, key in keys.items()}

    def read_table(self, table: str, title_id: str) -> pa.Table:
        key = self.partition_key(table, title_id)
        if not self.store.exists(key):
            raise TableNotFoundError(
                f"no {table!r} table for title {title_id!r} at {self.store.url(key)}; "
                f"materialise the `{table}` asset for this title first"
            )
        # One partition is small: read its bytes and parse them on this thread. pyarrow's dataset
        # reader (behind pq.read_table) leaves read-ahead tasks on its thread pool holding Python
        # buffers; when they are released during interpreter shutdown the process aborts.
        return pq.ParquetFile(pa.BufferReader(self.store.read_bytes(key))).read(use_threads=False)

    def has_table(self, table: str, title_id: str) -> bool:
        return self.store.exists(self.partition_key(table, title_id))

    def delete_partition(self, table: str, title_id: str) -> None:
        self.store.delete_prefix(f"{TABLES}/{table}/title_id={validate_title_id(title_id)}")

    def tables(self) -> list[str]:
        """Tables with at least one partition: two short listings per table, never one of every
        partition (a catalogue holds thousands of titles)."""
        names = [n for n in self.store.children(TABLES) if _TABLE_NAME.match(n)]
        return sorted(
            n for n in names if any(c.startswith("title_id=") for c in self.store.children(f"{TABLES}/{n}"))
        )

    def titles(self, table: str) -> list[str]:
        keys = self.store.list(f"{TABLES}/{table}")
        return sorted(k.split("/")[2].removeprefix("title_id=") for k in keys if k.endswith(f"/{PART}"))

    # -- DuckDB -----------------------------------------------------------------------------------

    def _glob(self, table: str) -> str:
        return self.store.url(f"{TABLES}/{table}/title_id=*/*.parquet")

    def _create_views(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.store.is_local:
            con.register_filesystem(self.store.fs)
        wanted = set(self.tables())
        existing = {
            r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        for stale in existing - wanted:
            con.execute(f'DROP VIEW IF EXISTS "{stale}"')
        for name in sorted(wanted):
            glob = self._glob(name).replace("'", "''")
            source = f"read_parquet('{glob}', union_by_name=true)"
            con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM {source}')

    def refresh_catalog(self, *, only_if_free: bool = False, attempts: int = 20) -> bool:
        """(Re)create the catalog file's views; returns False if another process held the lock, or
        the catalog's folder cannot be created (a read-only home must not stop queries).

        With ``only_if_free`` a busy catalog is skipped at once: the views glob over partitions, so
        a new partition is visible through them anyway; only a brand-new table needs a refresh, and
        the next write or query does it.
        """
        if self.catalog_path is None:
            return False
        try:
            self.catalog_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        for attempt in range(1 if only_if_free else attempts):
            try:
                con = duckdb.connect(str(self.catalog_path))
            except (duckdb.IOException, duckdb.ConnectionException):  # held by another client
                if not only_if_free:
                    time.sleep(min(0.05 * 2**attempt, 1.0))
                continue
            try:
                self._create_views(con)
                return True
            finally:
                con.close()
        return False

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A connection with one view per table, ready for SQL across all titles.

        The views are built in memory from the object store (cheap: only a listing), so a query
        never waits on the catalog file's lock; the catalog file is refreshed too, for people who
        open it with other DuckDB clients.
        """
        self.refresh_catalog(only_if_free=True)
        con = duckdb.connect()
        self._create_views(con)
        return con

    def sql(self, query: str, *, unsafe: bool = False) -> pa.Table:
        """Run ``query`` over the views of every table; returns the (last) statement's result.

        Read-only unless ``unsafe``: every statement must be a read (SELECT, WITH, VALUES, EXPLAIN,
        DESCRIBE, SHOW, SUMMARIZE), as DuckDB's own parser sees it, and it runs on a connection that
        can open nothing but the lake's tables, with the configuration locked. Without that, one
        ``COPY shots TO '<a partition>'`` overwrites a title's data, and ``read_text('/etc/passwd')``
        or ``ATTACH`` reach anything the user can. ``unsafe`` runs the query as given, with the
        user's full file access. Errors are ``SqlError``s of one line, never DuckDB's tracebacks.
        """
        with ExitStack() as stack:
            spill_dir = "" if unsafe else _private_temp_dir(stack)
            con = self.connect()
            stack.callback(con.close)  # closed before its spill folder is removed
            try:
                if not unsafe:
                    _check_read_only(con, query)
                    self._lock_down(con, spill_dir)
                relation = con.sql(query)
                if relation is None:  # only possible with unsafe: the last statement returns no rows
                    return pa.table({})
                return relation.to_arrow_table()
            except duckdb.PermissionException as exc:
                if unsafe:
                    raise SqlError(_first_line(exc)) from exc
                denied = _DENIED.search(str(exc))
                what = f', not "{denied.group(1)}"' if denied else f" ({_first_line(exc)})"
                raise SqlRefusedError(
                    f"queries can open only the lake's tables under {self._tables_dir()}{what} "
                    "(use --unsafe to allow other files)"
                ) from exc
            except (duckdb.CatalogException, duckdb.BinderException) as exc:
                raise SqlError(
                    f"{_first_line(exc)} (tables with data: {', '.join(self.tables()) or 'none yet'})"
                ) from exc
            except duckdb.Error as exc:
                raise SqlError(_first_line(exc)) from exc

    def _tables_dir(self) -> str:
        """The folder (or S3 prefix) every view reads from, with a trailing ``/`` so that a sibling
        such as ``tables-old/`` does not match it as a prefix."""
        return self.store.url(TABLES).rstrip("/") + "/"

    def _lock_down(self, con: duckdb.DuckDBPyConnection, spill_dir: str) -> None:
        """Let ``con`` open only the lake's tables (and ``spill_dir``, private, for big queries; none
        when empty), then lock its configuration so that no statement can undo it.

        DuckDB would otherwise allow its default spill folder, ``.tmp`` in the working directory.
        """
        settings = {row[0] for row in con.execute("SELECT name FROM duckdb_settings()").fetchall()}
        if "allowed_directories" not in settings:
            raise SqlError(
                f"read-only queries need duckdb>=1.2 (found {duckdb.__version__}); "
                "upgrade duckdb, or use --unsafe"
            )
        con.execute(f"SET temp_directory = {_literal(spill_dir)}")
        con.execute(f"SET allowed_directories = [{_literal(self._tables_dir())}]")
        con.execute("SET allowed_paths = []")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")


def _check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Raise ``SqlRefusedError`` unless every statement of ``query`` only reads, as DuckDB parses it."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise SqlError(_first_line(exc)) from exc
    if not statements:
        raise SqlError("the query has no SQL statement in it")
    for statement in statements:
        if statement.type not in _READ_KINDS:
            raise SqlRefusedError(
                f"queries are read-only: {_kind(statement)} statements are refused "
                "(use --unsafe to allow them)"
            )
        if statement.type == duckdb.StatementType.EXPLAIN:
            _check_read_only(con, _explained(statement.query))


def _tokens(text: str) -> list[tuple[int, str, duckdb.token_type]]:
    """``text``'s SQL tokens as (byte offset, text, kind), comments dropped, as DuckDB splits them."""
    raw = text.encode()  # the tokenizer's positions are byte offsets
    found = duckdb.tokenize(text)
    ends = [pos for pos, _ in found[1:]] + [len(raw)]
    return [
        (pos, raw[pos:end].decode().strip(), kind)
        for (pos, kind), end in zip(found, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]


def _kind(statement: duckdb.Statement) -> str:
    """What a user calls the statement: its first keyword (COPY, INSTALL, ATTACH, SET, PRAGMA, ...),
    or DuckDB's kind when that keyword is only a prefix (``WITH ... INSERT`` is an INSERT)."""
    tokens = _tokens(statement.query)
    first = tokens[0][1].upper() if tokens else ""
    if not first.isalpha() or first in ("WITH", "FROM", "SELECT", "VALUES", "EXPLAIN"):
        return statement.type.name
    return first


def _explained(text: str) -> str:
    """The statement an ``EXPLAIN [ANALYZE]`` or ``EXPLAIN (options)`` statement wraps."""
    depth = 0
    for pos, word, kind in _tokens(text)[1:]:  # after EXPLAIN
        if kind == duckdb.token_type.operator and (depth or word.startswith("(")):
            depth += word.count("(") - word.count(")")
        elif not depth and word.upper() not in ("ANALYZE", "ANALYSE"):
            return text.encode()[pos:].decode()
    return ""


def _private_temp_dir(stack: ExitStack) -> str:
    """A fresh temporary folder removed when ``stack`` closes; "" (no spilling) if none can be made."""
    try:
        return stack.enter_context(
            tempfile.TemporaryDirectory(prefix="marquee-sql-", ignore_cleanup_errors=True)
        )
    except OSError:
        return ""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _cannot_stage(url: str, folder: str, exc: OSError) -> StorageError:
    """One sentence for a failure to write a table's Parquet file to the local temporary ``folder``
    (or to make that folder, when it is "")."""
    folder = folder or (str(Path(exc.filename).parent) if exc.filename else "")
    where = f" in {folder}" if folder else ""
    why = {
        errno.ENOSPC: "no space left on the device (free space there or set TMPDIR to a folder with room)",
        errno.EDQUOT: "the disk quota is used up (free space there or set TMPDIR to a folder with room)",
        errno.EROFS: "the folder is read-only (set TMPDIR to a writable folder)",
        errno.EACCES: "permission denied (set TMPDIR to a folder this user can write)",
        errno.EPERM: "permission denied (set TMPDIR to a folder this user can write)",
    }.get(exc.errno or 0) or f"{exc.strerror or exc} (set TMPDIR to a writable folder with room)"
    return StorageError(f"{url}: cannot stage the new partition{where}: {why}")


def _with_title_id(table: str, title_id: str, data: pa.Table) -> pa.Table:
    """``data`` with a leading ``title_id`` column (checked when ``data`` already has one)."""
    if "title_id" in data.column_names:
        values = set(data.column("title_id").to_pylist())
        if values - {title_id}:
            raise ValueError(f"{table}: rows for other titles {sorted(values - {title_id})} in {title_id}")
        data = data.drop_columns(["title_id"])
    return data.add_column(0, "title_id", pa.array([title_id] * data.num_rows, pa.string()))
