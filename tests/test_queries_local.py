"""Every .kql file in queries/ runs on the local engine (DuckDB workspace with the real schemas)."""

from datetime import UTC, datetime
from pathlib import Path

import duckdb_kql
import pytest

from shared.adapters import local_workspace
from shared.core.kql import declared_parameters
from shared.devtools.demo_run import write_demo_workspace
from shared.queries import CONTRACTS, QUERIES_DIR, load
from tests.conftest import DEMO_END

QUERY_FILES = sorted(p for p in QUERIES_DIR.rglob("*.kql") if "schemas" not in p.parts)
SAMPLE_VALUES: dict[str, object] = {
    "datetime": DEMO_END, "string": "team-search", "long": 1, "int": 1, "real": 1.0, "bool": True,
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ws") / "workspace.duckdb"
    write_demo_workspace(path, seed=7, days=2, end=DEMO_END)
    return path


def test_there_are_queries() -> None:
    assert QUERY_FILES, "no .kql files found"


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: str(p.relative_to(QUERIES_DIR)))
def test_query_runs_on_local_engine(path: Path, workspace: Path) -> None:
    text = path.read_text()
    values = {p.name: SAMPLE_VALUES[p.kql_type] for p in declared_parameters(text) if p.default is None}
    # window_start before window_end for the rollup queries
    if "window_start" in values:
        values["window_start"] = datetime(2026, 11, 18, tzinfo=UTC)
    con = local_workspace.connect(workspace, read_only=True)
    try:
        relation = duckdb_kql.query(con, text, values)
        rows = relation.fetchall()
        columns = list(relation.columns)
    finally:
        con.close()
    assert columns
    contract = CONTRACTS.get(path.stem)
    if contract:
        assert list(contract) == columns, "result columns differ from the code's contract"
        assert rows, "the demo workspace has traffic in this window"


def test_contract_queries_load() -> None:
    for name in CONTRACTS:
        assert load(name).columns == CONTRACTS[name]
