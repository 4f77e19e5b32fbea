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

import re
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from marquee.ops.errors import MarqueeError
from marquee.ops.titles import validate_title_id
from marquee.resources.storage import ObjectStore

TABLES = "tables"
PART = "part-0.parquet"
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class TableNotFoundError(MarqueeError):
    """A table partition that should exist does not (its upstream asset was not materialised)."""


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
        with tempfile.TemporaryDirectory(prefix="marquee-table-") as tmp:
            staged = {}
            for name, data in tables.items():
                local = Path(tmp) / f"{name}.parquet"
                pq.write_table(_with_title_id(name, title_id, data), local, compression="zstd")
                staged[name] = local
            for name, local in staged.items():
                self.store.put_file(local, keys[name])
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
        """Tables with at least one partition."""
        names = {k.split("/")[1] for k in self.store.list(TABLES) if k.endswith(".parquet")}
        return sorted(n for n in names if _TABLE_NAME.match(n))

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
        """(Re)create the catalog file's views; returns False if another process held the lock.

        With ``only_if_free`` a busy catalog is skipped at once: the views glob over partitions, so
        a new partition is visible through them anyway; only a brand-new table needs a refresh, and
        the next write or query does it.
        """
        if self.catalog_path is None:
            return False
        self.catalog_path.parent.mkdir(parents=True, exist_ok=True)
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

    def sql(self, query: str) -> pa.Table:
        con = self.connect()
        try:
            return con.sql(query).to_arrow_table()
        except duckdb.CatalogException as exc:
            raise MarqueeError(
                f"{exc}\n(tables with data: {', '.join(self.tables()) or 'none yet'})"
            ) from exc
        finally:
            con.close()


def _with_title_id(table: str, title_id: str, data: pa.Table) -> pa.Table:
    """``data`` with a leading ``title_id`` column (checked when ``data`` already has one)."""
    if "title_id" in data.column_names:
        values = set(data.column("title_id").to_pylist())
        if values - {title_id}:
            raise ValueError(f"{table}: rows for other titles {sorted(values - {title_id})} in {title_id}")
        data = data.drop_columns(["title_id"])
    return data.add_column(0, "title_id", pa.array([title_id] * data.num_rows, pa.string()))
