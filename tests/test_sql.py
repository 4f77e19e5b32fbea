"""``marquee sql`` is read-only: only reading statements run, and only the lake's tables can be opened.

Fast: partitions are written with ``Warehouse.write_table`` into a temporary store; no Dagster run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marquee.orchestration.cli import build_parser, main
from marquee.resources.storage import ObjectStore
from marquee.resources.warehouse import SqlError, SqlRefusedError, Warehouse


def _shots(n: int) -> pa.Table:
    return pa.table({"shot_id": pa.array(range(n), pa.int32()), "start_s": [float(i) for i in range(n)]})


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """One lake for the module: nothing here may change it (the refusal tests check exactly that)."""
    root = tmp_path_factory.mktemp("sql")
    w = Warehouse(ObjectStore(str(root / "lake")), root / "catalog.duckdb")
    w.write_tables("alpha", {"shots": _shots(3), "titles": pa.table({"fps": [25.0]})})
    w.write_tables("beta", {"shots": _shots(2), "titles": pa.table({"fps": [24.0]})})
    return w


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes: what a refused statement must not change."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "catalog.duckdb" not in p.name
    }


def _part(wh: Warehouse) -> str:
    return wh.store.url(wh.partition_key("shots", "alpha"))


# -- reads ------------------------------------------------------------------------------------------


def test_reads_run(wh: Warehouse):
    assert wh.sql("SELECT count(*) AS n FROM shots").to_pylist() == [{"n": 5}]
    joined = wh.sql(
        "SELECT s.title_id, count(*) AS n, max(t.fps) AS fps FROM shots s JOIN titles t USING (title_id) "
        "GROUP BY 1 ORDER BY 1"
    )
    assert joined.to_pylist() == [
        {"title_id": "alpha", "n": 3, "fps": 25.0},
        {"title_id": "beta", "n": 2, "fps": 24.0},
    ]
    with_cte = (
        "WITH s AS (SELECT title_id, sum(start_s) AS t FROM shots GROUP BY 1) SELECT * FROM s ORDER BY 1"
    )
    assert wh.sql(with_cte).to_pylist() == [{"title_id": "alpha", "t": 3.0}, {"title_id": "beta", "t": 1.0}]
    assert wh.sql("VALUES (1, 'a')").num_rows == 1
    assert wh.sql("FROM shots WHERE title_id = 'beta'").num_rows == 2
    assert "column_name" in wh.sql("DESCRIBE shots").column_names
    assert wh.sql("DESCRIBE shots").column("column_name").to_pylist() == ["title_id", "shot_id", "start_s"]
    assert sorted(wh.sql("SHOW TABLES").column("name").to_pylist()) == ["shots", "titles"]
    assert wh.sql("SUMMARIZE shots").num_rows == 3
    for explain in ("EXPLAIN SELECT * FROM shots", "EXPLAIN ANALYZE SELECT count(*) FROM shots"):
        assert wh.sql(explain).num_rows >= 1
    assert wh.sql("EXPLAIN (FORMAT json) SELECT 1").num_rows == 1
    # The lake's own files can be read directly too, and several reads run (the last one's rows come back).
    tables = wh.store.url("tables")
    assert wh.sql(f"SELECT count(*) AS n FROM read_parquet('{tables}/shots/*/*.parquet')").to_pylist() == [
        {"n": 5}
    ]
    assert wh.sql("SELECT 1 AS a; SELECT 2 AS b").to_pylist() == [{"b": 2}]


def test_the_sandbox_is_on_and_locked(wh: Warehouse):
    rows = wh.sql(
        "SELECT name, value FROM duckdb_settings() "
        "WHERE name IN ('enable_external_access', 'lock_configuration', 'allowed_directories') ORDER BY 1"
    ).to_pylist()
    settings = {r["name"]: r["value"] for r in rows}
    assert settings["enable_external_access"] == "false" and settings["lock_configuration"] == "true"
    assert wh.store.url("tables") + "/" in settings["allowed_directories"]
    assert ".tmp" not in settings["allowed_directories"]  # not DuckDB's spill folder in the working directory


# -- refused statements -----------------------------------------------------------------------------

REFUSED = [
    ("COPY shots TO '{part}' (FORMAT parquet)", "COPY"),
    ("COPY (SELECT 1 AS x) TO '{out}/out.csv'", "COPY"),
    ("EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{part}' (FORMAT parquet)", "COPY"),
    ("EXPLAIN (ANALYZE) /* é */ COPY (SELECT 1 AS x) TO '{part}' (FORMAT parquet)", "COPY"),
    ("SELECT 1; COPY shots TO '{part}' (FORMAT parquet)", "COPY"),
    ("ATTACH '{out}/other.duckdb' AS other", "ATTACH"),
    ("DETACH memory", "DETACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("EXPORT DATABASE '{out}/export'", "EXPORT"),
    ("SET enable_external_access = true", "SET"),
    ("RESET lock_configuration", "RESET"),
    ("CREATE TABLE t AS SELECT * FROM shots", "CREATE"),
    ("CREATE OR REPLACE VIEW shots AS SELECT * FROM read_csv('{out}/secret.csv')", "CREATE"),
    ("CREATE SECRET (TYPE s3)", "CREATE"),
    ("DROP VIEW shots", "DROP"),
    ("PRAGMA version", "PRAGMA"),
    ("CALL pragma_version()", "CALL"),
    ("WITH s AS (SELECT 1) INSERT INTO shots SELECT * FROM s", "INSERT"),
    ("UPDATE shots SET shot_id = 0", "UPDATE"),
    ("DELETE FROM shots", "DELETE"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("USE memory", "USE"),
    ("BEGIN TRANSACTION", "BEGIN"),
    ("PIVOT shots ON shot_id USING count(*)", "PIVOT"),
]


@pytest.mark.parametrize(("query", "kind"), REFUSED, ids=[q for q, _ in REFUSED])
def test_statements_that_write_load_or_configure_are_refused(wh: Warehouse, tmp_path: Path, query, kind):
    out = tmp_path / "out"
    out.mkdir()
    (out / "secret.csv").write_text("a,b\n1,2\n")
    lake = Path(wh.store.root)
    before = _snapshot(lake), _snapshot(tmp_path)
    with pytest.raises(SqlRefusedError) as err:
        wh.sql(query.format(part=_part(wh), out=out))
    assert (
        str(err.value) == f"queries are read-only: {kind} statements are refused (use --unsafe to allow them)"
    )
    assert (_snapshot(lake), _snapshot(tmp_path)) == before  # no partition replaced, no file made
    assert wh.sql("SELECT title_id, count(*) AS n FROM shots GROUP BY 1 ORDER BY 1").to_pylist() == [
        {"title_id": "alpha", "n": 3},
        {"title_id": "beta", "n": 2},
    ]


# -- files outside the lake's tables ----------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path, wh: Warehouse) -> Path:
    """Files a query must not open: a CSV, a Parquet file and a store folder beside ``tables/``."""
    d = tmp_path / "private"
    d.mkdir()
    (d / "secret.csv").write_text("user,password\nroot,hunter2\n")
    pq.write_table(pa.table({"x": [1]}), d / "data.parquet")
    wh.store.write_bytes("tables-old/x.csv", b"a\n1\n")  # shares the prefix "tables"
    return d


FILE_READS = [
    "SELECT * FROM read_csv('{d}/secret.csv')",
    "SELECT * FROM read_csv_auto('{d}/secret.csv')",
    "SELECT * FROM '{d}/secret.csv'",
    "SELECT * FROM read_text('{d}/secret.csv')",
    "SELECT * FROM read_blob('{d}/secret.csv')",
    "SELECT * FROM read_json('{d}/secret.csv')",
    "SELECT * FROM sniff_csv('{d}/secret.csv')",
    "SELECT * FROM glob('{d}/*')",
    "SELECT * FROM read_parquet('{d}/data.parquet')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('{tables}/../../private/secret.csv')",
    "SELECT * FROM read_csv('{tables}-old/x.csv')",
    "EXPLAIN ANALYZE SELECT * FROM read_text('{d}/secret.csv')",
]


@pytest.mark.parametrize("query", FILE_READS)
def test_files_outside_the_tables_cannot_be_opened(wh: Warehouse, outside: Path, query: str):
    q = query.format(d=outside, tables=wh.store.url("tables"))
    with pytest.raises(SqlRefusedError) as err:
        wh.sql(q)
    message = str(err.value)
    assert message.startswith(
        f"queries can open only the lake's tables under {wh.store.url('tables')}/, not "
    )
    assert message.endswith("(use --unsafe to allow other files)") and "\n" not in message
    assert "hunter2" not in message


# -- errors -----------------------------------------------------------------------------------------


def test_errors_are_one_line(wh: Warehouse):
    with pytest.raises(SqlError) as err:
        wh.sql("SELEC * FROM shots")
    assert str(err.value) == 'Parser Error: syntax error at or near "SELEC"'
    with pytest.raises(SqlError) as err:
        wh.sql("SELECT * FROM faces")
    assert str(err.value).startswith("Catalog Error: Table with name faces does not exist!")
    assert str(err.value).endswith("(tables with data: shots, titles)") and "\n" not in str(err.value)
    with pytest.raises(SqlError) as err:
        wh.sql("SELECT nope FROM shots")
    assert str(err.value).startswith("Binder Error: ") and str(err.value).endswith(
        "(tables with data: shots, titles)"
    )
    assert "\n" not in str(err.value)
    with pytest.raises(SqlError, match="no SQL statement"):
        wh.sql("  -- nothing\n")
    with pytest.raises(SqlError) as err:
        wh.sql("SELECT 1/0::INTEGER AS x, 'a'::INTEGER AS y")
    assert "\n" not in str(err.value) and "Conversion Error" in str(err.value)


def test_unsafe_runs_anything(wh: Warehouse, tmp_path: Path):
    out = tmp_path / "copy.csv"
    wh.sql(f"COPY (SELECT * FROM shots ORDER BY ALL) TO '{out}'", unsafe=True)
    assert out.read_text().splitlines()[0] == "title_id,shot_id,start_s"
    assert wh.sql(f"SELECT count(*) AS n FROM read_csv('{out}')", unsafe=True).to_pylist() == [{"n": 5}]
    assert wh.sql("CREATE TABLE t AS SELECT 1 AS a; FROM t", unsafe=True).to_pylist() == [{"a": 1}]


# -- S3 ---------------------------------------------------------------------------------------------


def test_an_s3_lake_is_queried_and_nothing_else_is_opened(s3_server: str, tmp_path: Path):
    """The views read through the registered fsspec filesystem, inside ``s3://bucket/prefix/tables/``."""
    store = ObjectStore("s3://sql-lake/prefix", s3_endpoint_url=s3_server)
    store.fs.mkdir("sql-lake")
    wh = Warehouse(store, tmp_path / "catalog.duckdb")
    wh.write_table("shots", "alpha", _shots(3))
    wh.write_table("titles", "alpha", pa.table({"fps": [25.0]}))
    store.write_bytes("private/secret.csv", b"user,password\nroot,hunter2\n")
    local = tmp_path / "secret.csv"
    local.write_text("a,b\n1,2\n")

    rows = wh.sql(
        "SELECT title_id, count(*) AS n, max(fps) AS fps FROM shots JOIN titles USING (title_id) GROUP BY 1"
    )
    assert rows.to_pylist() == [{"title_id": "alpha", "n": 3, "fps": 25.0}]
    tables = "s3://sql-lake/prefix/tables"
    assert wh.sql(f"SELECT count(*) AS n FROM read_parquet('{tables}/shots/*/*.parquet')").to_pylist() == [
        {"n": 3}
    ]
    for query in (
        f"SELECT * FROM read_csv('{local}')",
        "SELECT * FROM read_csv('s3://sql-lake/prefix/private/secret.csv')",
        "SELECT * FROM glob('s3://sql-lake/prefix/*/*')",
    ):
        with pytest.raises(
            SqlRefusedError, match=f"^queries can open only the lake's tables under {tables}/, not "
        ):
            wh.sql(query)
    with pytest.raises(SqlRefusedError, match="COPY statements are refused"):
        wh.sql(f"COPY shots TO '{tables}/shots/title_id=alpha/part-0.parquet'")
    assert wh.read_table("shots", "alpha").num_rows == 3


# -- the command line -------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Warehouse:
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    for var in ("MARQUEE_STORAGE", "MARQUEE_CATALOG", "MARQUEE_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    w = Warehouse(ObjectStore(str(tmp_path / "home" / "lake")), tmp_path / "home" / "catalog.duckdb")
    w.write_table("shots", "alpha", _shots(3))
    return w


def test_cli_reads_and_refuses(home: Warehouse, tmp_path: Path, capsys):
    assert main(["sql", "--format", "json", "SELECT count(*) AS n FROM shots"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 3}]

    before = _snapshot(tmp_path)
    assert main(["sql", f"COPY shots TO '{_part(home)}' (FORMAT parquet)"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    refused = "queries are read-only: COPY statements are refused (use --unsafe to allow them)"
    assert captured.err == f"marquee sql: error: {refused}\n"
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    assert main(["sql", f"SELECT * FROM read_csv('{secret}')"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("marquee sql: error: queries can open only the lake's tables") and err.count("\n") == 1
    )
    assert main(["sql", "SELEC 1"]) == 2
    assert capsys.readouterr().err == 'marquee sql: error: Parser Error: syntax error at or near "SELEC"\n'
    secret.unlink()
    assert _snapshot(tmp_path) == before


def test_cli_unsafe_reads_any_file(home: Warehouse, tmp_path: Path, capsys):
    secret = tmp_path / "people.csv"
    secret.write_text("name,age\nada,36\n")
    assert main(["sql", "--unsafe", "--format", "json", f"SELECT * FROM read_csv('{secret}')"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "ada", "age": 36}]


def test_cli_help_says_what_unsafe_allows(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sql", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--unsafe" in text and "read and write any file you can" in text
    assert "read-only" in text
