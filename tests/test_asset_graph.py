"""The asset graph Dagster shows is the graph of table reads and writes (``marquee.resources.tables``).

Statically: every asset declares its reads once (``marquee.assets.common.Reads``), its Dagster deps
are exactly the writers of those tables (and of the models it loads), every table has one writer in
the graph, and no asset module imports another asset module or reaches the warehouse around its
declarations. At run time: a whole-title run reads exactly what each asset declared.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey
from runs import run_title

from marquee.assets.common import DECLARED, READS_SEEN, Reads, TitleStep, UndeclaredTableError
from marquee.orchestration.definitions import build_definitions
from marquee.resources.settings import Settings
from marquee.resources.tables import MODELS, TABLES, spec, tables_of, upstream

ASSETS_DIR = Path(__file__).resolve().parents[1] / "marquee" / "assets"
#: Asset modules every asset may import: the shared helpers and the partitions definition.
SHARED = {"marquee.assets.common", "marquee.assets.partitions"}
#: Declared reads that a default run does not make, and why they are declared anyway.
CONDITIONAL = {
    ("expression_scores", "face_embeddings"): "read only when a trained expression model uses descriptors",
}
#: Warehouse calls that would bypass the declared reads and writes.
BYPASS = {"read_table", "write_table", "write_tables", "has_table"}


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("graph")
    settings = Settings(home, str(home / "lake"), home / "catalog.duckdb", None)
    return build_definitions(settings).resolve_asset_graph()


def test_every_assets_deps_are_the_writers_of_what_it_reads(graph):
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == set(DECLARED), "every asset declares its reads, and only assets in the graph do"
    for name, reads in DECLARED.items():
        shown = {p.to_user_string() for p in graph.get(AssetKey(name)).parent_keys}
        expected = set(upstream(reads.tables, reads.models)) | set(reads.after)
        assert shown == expected, f"{name}: Dagster shows {sorted(shown)}, its reads need {sorted(expected)}"
        for table in reads.tables:
            assert spec(table).asset in shown, f"{name} reads {table} but does not depend on its writer"


def test_every_table_and_model_has_one_writer_in_the_graph(graph):
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for table in TABLES.values():
        assert table.asset in keys, f"table {table.name} is written by {table.asset}, which is not an asset"
        assert table.schema.names == list(dict.fromkeys(table.schema.names)), (
            f"{table.name}: duplicate column"
        )
    for model in MODELS.values():
        assert model.asset in keys
    written = {t for a in keys for t in tables_of(a)}
    assert written == set(TABLES)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _warehouse_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        f"{path.name}:{n.lineno} .{n.func.attr}()"
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in BYPASS
    ]


def test_no_asset_module_imports_another_or_bypasses_its_declarations():
    modules = sorted(p for p in ASSETS_DIR.glob("*.py") if p.name != "__init__.py")
    assert len(modules) > 10
    for path in modules:
        own = f"marquee.assets.{path.stem}"
        others = {m for m in _imports(path) if m.startswith("marquee.assets")} - SHARED - {own}
        assert not others, f"{path.name} imports other asset modules {sorted(others)}: move it to common"
        if path.name != "common.py":
            assert not _warehouse_calls(path), _warehouse_calls(path)


def test_a_step_refuses_tables_it_did_not_declare(tmp_path):
    from marquee.resources.storage import ObjectStore
    from marquee.resources.warehouse import Warehouse

    store = ObjectStore(str(tmp_path))
    step = TitleStep(
        store,
        Warehouse(store),
        "t",
        "me",
        lease=None,  # type: ignore[arg-type]
        op="faces",
        reads=frozenset({"keyframes"}),
        writes=frozenset(tables_of("faces")),
    )
    with pytest.raises(UndeclaredTableError, match="reads 'shots' without declaring it"):
        step.read("shots")
    with pytest.raises(UndeclaredTableError, match="gives to other assets"):
        step.write({"shots": []})
    with pytest.raises(ValueError, match="missing columns"):
        step.write({"faces": pa.table({"face_id": [1]})})
    with pytest.raises(KeyError, match="unknown table"):
        Reads("nobody", tables=("no_such_table",))


def test_a_whole_title_reads_exactly_what_each_asset_declared(materialised, with_trailer):
    """Both titles ran the whole job (one with a trailer); ``keyframes`` alone reads the stored shots."""
    assert materialised["result"].success and with_trailer["result"].success
    alone = run_title(materialised["defs"], materialised["instance"], "chars", ["keyframes"])
    assert alone.success
    seen: dict[str, set[str]] = {}
    for op, table in READS_SEEN:
        seen.setdefault(op, set()).add(table)
    # an op's declared reads: the union of its assets' (shots and keyframes share one op)
    declared_by_op = {
        "shots_and_keyframes": set(DECLARED["shots"].tables) | set(DECLARED["keyframes"].tables)
    }
    for name, reads in DECLARED.items():
        if name not in ("shots", "keyframes"):
            declared_by_op[name] = set(reads.tables)
    title_job = set(declared_by_op) - {"expression_model", "trailerness_model"}  # models: their own jobs
    for op in title_job:
        expected = {t for t in declared_by_op[op] if (op, t) not in CONDITIONAL}
        assert seen.get(op, set()) - {t for o, t in CONDITIONAL if o == op} == expected, (
            f"{op}: declared {sorted(declared_by_op[op])}, read {sorted(seen.get(op, set()))}"
        )
    for op, tables in seen.items():
        assert tables <= declared_by_op[op], f"{op} read undeclared {sorted(tables - declared_by_op[op])}"


def _package_imports() -> dict[str, set[str]]:
    """Folder (``marquee.ops.faces``, ...) -> the marquee folders its modules import, at any depth."""
    root = ASSETS_DIR.parent
    out: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        folder = ".".join(("marquee", *path.relative_to(root).parent.parts)).rstrip(".")
        for module in _imports(path):
            if module.startswith("marquee."):
                target = (
                    module if (root.parent / module.replace(".", "/")).is_dir() else module.rpartition(".")[0]
                )
                if target != folder:
                    out.setdefault(folder, set()).add(target)
    return out


def test_layers_point_one_way_and_folders_have_no_import_loop():
    """orchestration -> assets -> ops/resources; ops never import Dagster, assets, orchestration or
    resources; no two folders import each other, directly or around a loop."""
    imports = _package_imports()
    for folder, targets in imports.items():
        if folder.startswith("marquee.ops"):
            bad = {
                t
                for t in targets
                if t.startswith(("marquee.assets", "marquee.orchestration", "marquee.resources"))
            }
            assert not bad, f"{folder} imports {sorted(bad)}"
        if folder.startswith(("marquee.resources", "marquee.assets")):
            assert not any(t.startswith("marquee.orchestration") for t in targets), folder
    for path in (ASSETS_DIR.parent / "ops").rglob("*.py"):
        assert not any(m.split(".")[0] == "dagster" for m in _imports(path)), f"{path} imports Dagster"
    # a loop between folders: some folder reachable from itself
    for start in imports:
        seen, todo = set(), list(imports[start])
        while todo:
            folder = todo.pop()
            assert folder != start, f"an import loop goes through {start}"
            if folder not in seen:
                seen.add(folder)
                todo.extend(imports.get(folder, ()))
