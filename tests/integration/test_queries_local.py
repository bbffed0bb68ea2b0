"""Every .kql file in queries/ runs on the local engine (DuckDB workspace with the real schemas)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb_kql
import pytest

from shared.adapters import local_workspace
from shared.core.kql import declared_parameters
from shared.queries import CONTRACTS, QUERIES_DIR
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.unit.test_query_files import QUERY_FILES

SAMPLE_VALUES: dict[str, object] = {
    "datetime": DEMO_END, "string": "team-search", "long": 1, "int": 1, "real": 1.0, "bool": True,
}


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    return demo_data.generate(seed=7, days=2, end=DEMO_END, body_logging=True, llm_log_share=0.7)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, traffic: demo_data.DemoTraffic) -> Path:
    path = tmp_path_factory.mktemp("ws") / "workspace.duckdb"
    con = local_workspace.connect(path)
    local_workspace.create_tables(con)
    local_workspace.insert_rows(con, "ApiManagementGatewayLogs", traffic.gateway)
    local_workspace.insert_rows(con, "ApiManagementGatewayLlmLog", traffic.llm)
    local_workspace.insert_rows(con, "AzureDiagnostics", [
        {"TimeGenerated": DEMO_END, "_ResourceId": "/subscriptions/x/openai", "Category": "Audit",
         "OperationName": "ListKey"}])
    # the demo names no backend: one request through a named one, for the backend-health query
    local_workspace.insert_rows(con, "ApiManagementGatewayLogs", [
        {"TimeGenerated": DEMO_END, "CorrelationId": "backend-1", "OperationId": "health", "ResponseCode": 200,
         "BackendResponseCode": 200, "BackendId": "aoai-east"}])
    con.close()
    return path


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
    assert rows, "every query has something to show on the demo workspace"
    contract = CONTRACTS.get(path.stem)
    if contract:
        assert list(contract) == columns, "result columns differ from the code's contract"
        assert rows, "the demo workspace has traffic in this window"


def test_reference_token_query_matches_independent_sums(workspace: Path, traffic: demo_data.DemoTraffic) -> None:
    """The owner's token-usage query, rewritten for both engines, still adds up what it should."""
    expected: dict[tuple[str, str], int] = {}
    for g in traffic.gateway:
        if g["OperationId"].lower() not in ("completions_create", "chatcompletions_create"):
            continue
        if g["ResponseCode"] != 200:
            continue
        try:
            body = json.loads(g.get("BackendResponseBody") or "")
        except ValueError:
            continue  # SSE or cut at 8,192 bytes: parse_json gives null, the query drops it
        key = (g["CallerIpAddress"], body["model"])
        expected[key] = expected.get(key, 0) + body["usage"]["total_tokens"]
    con = local_workspace.connect(workspace, read_only=True)
    text = (QUERIES_DIR / "reference" / "token_usage_by_ip_and_model.kql").read_text()
    relation = duckdb_kql.query(con, text)
    names = list(relation.columns)
    got = {(r[names.index("ip")], r[names.index("model")]): int(r[names.index("totaltokens")])
           for r in relation.fetchall()}
    con.close()
    assert got == expected and len(got) > 10
