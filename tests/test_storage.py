"""Object storage and the DuckDB warehouse, on a local folder and on a real S3 API server (moto)."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pyarrow as pa
import pytest

from marquee.ops.errors import MarqueeError
from marquee.resources.storage import ObjectStore, StorageError
from marquee.resources.warehouse import TableNotFoundError, Warehouse


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return ObjectStore(str(tmp_path / "lake"))
    endpoint = request.getfixturevalue("s3_server")
    bucket = f"lake-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    s = ObjectStore(f"s3://{bucket}/prefix", s3_endpoint_url=endpoint)
    s.fs.mkdir(bucket)
    return s


def test_bytes_files_listing_and_deletes(store: ObjectStore, tmp_path: Path):
    store.write_bytes("a/b/one.txt", b"1")
    store.write_bytes("a/two.txt", b"22")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    store.put_file(src, "media/big.bin")
    assert store.list("a") == ["a/b/one.txt", "a/two.txt"]
    assert store.list() == ["a/b/one.txt", "a/two.txt", "media/big.bin"]
    assert store.read_bytes("a/two.txt") == b"22" and store.size("media/big.bin") == src.stat().st_size
    back = store.get_file("media/big.bin", tmp_path / "back" / "big.bin")
    assert back.read_bytes() == src.read_bytes()
    with store.open("a/b/one.txt") as f:
        assert f.read() == b"1"
    store.write_bytes("a/two.txt", b"replaced")
    assert store.read_bytes("a/two.txt") == b"replaced"
    store.delete("a/two.txt")
    store.delete("a/two.txt")  # deleting twice is fine
    store.delete_prefix("a")
    assert store.list() == ["media/big.bin"]
    assert store.url("x/y").endswith("/x/y")
    with pytest.raises(StorageError, match="no such object"):
        store.read_bytes("missing/key")
    with pytest.raises(ValueError, match="unsafe"):
        store.path("../escape")


def test_a_failed_write_leaves_the_previous_version(store: ObjectStore):
    store.write_bytes("tables/t/part.bin", b"good")
    with pytest.raises(RuntimeError), store.writer("tables/t/part.bin") as f:
        f.write(b"half of a new vers")
        raise RuntimeError("crash mid-write")
    assert store.read_bytes("tables/t/part.bin") == b"good"
    assert store.list() == ["tables/t/part.bin"]  # no staging debris is visible


def _shots(n: int) -> pa.Table:
    return pa.table({"shot_id": pa.array(range(n), pa.int32()), "start_s": [float(i) for i in range(n)]})


def test_warehouse_partitions_and_sql_across_titles(store: ObjectStore, tmp_path: Path):
    wh = Warehouse(store, tmp_path / "catalog.duckdb")
    wh.write_table("shots", "alpha", _shots(3))
    wh.write_table("shots", "2019", _shots(2))  # a numeric-looking title stays a string
    wh.write_table("titles", "alpha", pa.table({"fps": [25.0]}))
    assert wh.tables() == ["shots", "titles"] and wh.titles("shots") == ["2019", "alpha"]
    rows = wh.sql("SELECT title_id, count(*) AS n FROM shots GROUP BY 1 ORDER BY 1").to_pylist()
    assert rows == [{"title_id": "2019", "n": 2}, {"title_id": "alpha", "n": 3}]
    assert wh.read_table("shots", "alpha").column_names == ["title_id", "shot_id", "start_s"]
    # Re-writing a title replaces its partition only; a wider schema is read by name.
    wh.write_table("shots", "alpha", _shots(5).append_column("extra", pa.array(["x"] * 5)))
    rows = wh.sql("SELECT title_id, count(*) AS n, count(extra) AS e FROM shots GROUP BY 1 ORDER BY 1")
    assert rows.to_pylist() == [{"title_id": "2019", "n": 2, "e": 0}, {"title_id": "alpha", "n": 5, "e": 5}]
    with pytest.raises(TableNotFoundError, match="materialise the `shots` asset"):
        wh.read_table("shots", "nope")
    with pytest.raises(MarqueeError, match="tables with data: shots, titles"):
        wh.sql("SELECT * FROM faces")
    with pytest.raises(ValueError, match="other titles"):
        wh.write_table("shots", "alpha", pa.table({"title_id": ["beta"]}))
    wh.delete_partition("shots", "2019")
    assert wh.titles("shots") == ["alpha"]


def test_tables_written_together_are_all_kept_when_one_is_bad(tmp_path: Path):
    wh = Warehouse(ObjectStore(str(tmp_path / "lake")))
    wh.write_tables("alpha", {"shots": _shots(3), "titles": pa.table({"fps": [25.0]})})
    with pytest.raises(ValueError, match="other titles"):
        wh.write_tables("alpha", {"shots": _shots(5), "titles": pa.table({"title_id": ["beta"]})})
    assert wh.read_table("shots", "alpha").num_rows == 3  # the good table was not replaced either
    assert wh.read_table("titles", "alpha").column("fps").to_pylist() == [25.0]


def test_catalog_file_holds_views_for_other_duckdb_clients(tmp_path: Path):
    import duckdb

    wh = Warehouse(ObjectStore(str(tmp_path / "lake")), tmp_path / "catalog.duckdb")
    wh.write_table("shots", "alpha", _shots(4))
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM shots").fetchone() == (4,)
    # While another client holds the catalog, writes and queries still go through.
    wh.write_table("shots", "beta", _shots(1))
    assert wh.sql("SELECT count(*) AS n FROM shots").to_pylist() == [{"n": 5}]
    con.close()


def _writer_process(root: str, catalog: str, title: str, rounds: int, q: mp.Queue) -> None:
    try:
        wh = Warehouse(ObjectStore(root), Path(catalog))
        for i in range(rounds):
            wh.write_table("shots", title, _shots(i + 1))
            wh.sql("SELECT count(*) FROM shots")
        q.put((title, "ok"))
    except Exception as exc:  # reported to the parent, which fails the test with it
        q.put((title, repr(exc)))


def test_two_processes_write_different_titles_at_once(tmp_path: Path):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    args = (str(tmp_path / "lake"), str(tmp_path / "catalog.duckdb"))
    procs = [ctx.Process(target=_writer_process, args=(*args, t, 15, q)) for t in ("alpha", "beta")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    results = dict(q.get(timeout=5) for _ in procs)
    assert results == {"alpha": "ok", "beta": "ok"}
    wh = Warehouse(ObjectStore(args[0]), Path(args[1]))
    rows = wh.sql("SELECT title_id, count(*) AS n FROM shots GROUP BY 1 ORDER BY 1").to_pylist()
    assert rows == [{"title_id": "alpha", "n": 15}, {"title_id": "beta", "n": 15}]


def test_exclusive_create_children_and_a_lease(store: ObjectStore):
    """The primitives leases stand on, on a local folder and over the S3 wire protocol."""
    from marquee.resources.leases import TitleBusyError, TitleLease, live_owners

    assert store.create_exclusive("locks/t/1.json", b"first")
    assert not store.create_exclusive("locks/t/1.json", b"second")
    assert store.read_bytes("locks/t/1.json") == b"first"
    store.write_bytes("media/k/film/v1/a.jpg", b"a")
    store.write_bytes("media/k/film/v2/b.jpg", b"b")
    store.write_bytes("media/k/film/graph.png", b"g")
    assert store.children("media/k/film") == ["graph.png", "v1", "v2"]
    assert store.children("media/none") == []
    with TitleLease(store, "film", owner="run-a", step="faces", wait_s=0):
        assert live_owners(store, "film") == {"run-a"}
        with pytest.raises(TitleBusyError):
            TitleLease(store, "film", owner="run-b", step="faces", wait_s=0.1, poll_s=0.05).acquire()
    assert live_owners(store, "film") == set()
