"""Kusto's missing values in the local workspace, whichever writer filled it.

In Log Analytics a ``string`` column has no null: a missing string is ``""``.  Other types keep a
null.  So peer queries written for Log Analytics (``x == ""``, ``isempty(x)``, ``isnotempty(x)``,
``summarize by x`` over a sometimes-missing ``x``) must give here what they give there.  Each
writer (``chargeback workspace import``, demo data, the dev gateway) fills a workspace; the queries
run on it and are compared with answers computed in Python from the rows the writer was given,
with every missing string taken as ``""`` (Log Analytics' semantics).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql
import pytest

from shared.adapters import local_workspace
from shared.tooling.demo import demo_data
from shared.tooling.dev_gateway.config import GatewayConfig
from shared.tooling.dev_gateway.log_rows import Exchange, gateway_row, llm_rows
from shared.tooling.dev_gateway.workspace_writer import WorkspaceWriter
from shared.tooling.log_import.writer import import_files
from shared.workspace_schema import table_schemas
from tests.conftest import DEMO_END

GATEWAY = "ApiManagementGatewayLogs"
LLM = "ApiManagementGatewayLlmLog"
# string columns a peer query groups or filters on, each missing on some rows of the writer's fixture
GATEWAY_STRINGS = ("ApimSubscriptionId", "BackendId", "LastErrorReason")
DEMO_GATEWAY_STRINGS = ("ApimSubscriptionId", "ProductId")  # the demo's requests without a key
LLM_STRINGS = ("DeploymentName",)


def kusto_string(row: Mapping[str, Any], name: str) -> str:
    """What Log Analytics holds for a string field: the value, or "" when it is missing."""
    value = row.get(name)
    return "" if value is None else str(value)


def kql(path: Path, text: str) -> list[tuple[Any, ...]]:
    con = local_workspace.connect(path, read_only=True)
    try:
        return list(duckdb_kql.query(con, text).fetchall())
    finally:
        con.close()


def check_peer_queries(path: Path, table: str, column: str, source_rows: Sequence[Mapping[str, Any]]) -> None:
    values = [kusto_string(row, column) for row in source_rows]
    assert "" in values and any(values), f"{table}.{column}: the fixture must have it missing and present"
    # the backend-health style query: one group per value, the missing ones in the "" group (never null)
    by_value = kql(path, f"{table} | summarize Requests = count() by {column}")
    assert dict(by_value) == dict(Counter(values)), column
    # the same behind the peer's filter: no phantom group
    present = kql(path, f'{table} | where {column} != "" | summarize Requests = count() by {column}')
    assert dict(present) == dict(Counter(v for v in values if v != "")), column
    empty = sum(1 for v in values if v == "")
    assert kql(path, f'{table} | where {column} == "" | count') == [(empty,)], column
    assert kql(path, f"{table} | where isempty({column}) | count") == [(empty,)], column
    assert kql(path, f"{table} | where isnotempty({column}) | count") == [(len(values) - empty,)], column
    assert kql(path, f"{table} | where strlen({column}) == 0 | count") == [(empty,)], column


def check_no_null_strings(path: Path) -> None:
    """No string column holds NULL (Kusto has no null string)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table in (GATEWAY, LLM):
            for name in local_workspace.string_columns(table):
                nulls = con.execute(f'SELECT count(*) FROM "{table}" WHERE "{name}" IS NULL').fetchone()
                assert nulls == (0,), f"{table}.{name}"
    finally:
        con.close()


def null_count(path: Path, table: str, column: str) -> int:
    rows = kql(path, f"{table} | where isnull({column}) | count")
    return int(rows[0][0])


def check_workspace(path: Path, gateway: Sequence[Mapping[str, Any]], llm: Sequence[Mapping[str, Any]],
                    gateway_strings: tuple[str, ...] = GATEWAY_STRINGS) -> None:
    check_no_null_strings(path)
    for column in gateway_strings:
        check_peer_queries(path, GATEWAY, column, gateway)
    for column in LLM_STRINGS:
        check_peer_queries(path, LLM, column, llm)
    # other types keep Kusto's null: a request that never reached a backend has no backend code
    missing_code = sum(1 for row in gateway if row.get("BackendResponseCode") is None)
    assert missing_code and null_count(path, GATEWAY, "BackendResponseCode") == missing_code


# ---- demo data ---------------------------------------------------------------------------------

def test_demo_data_workspace_has_kusto_strings(tmp_path: Path) -> None:
    traffic = demo_data.generate(seed=5, days=1, end=DEMO_END, requests_per_hour=20, llm_log_share=0.7)
    path = tmp_path / "demo.duckdb"
    con = local_workspace.connect(path)
    try:
        local_workspace.create_tables(con)
        local_workspace.insert_rows(con, GATEWAY, traffic.gateway)
        local_workspace.insert_rows(con, LLM, traffic.llm)
    finally:
        con.close()
    # the demo's LLM log always names its deployment: a row of the LLM log missing it is added here
    extra = {"TimeGenerated": DEMO_END - timedelta(minutes=1), "CorrelationId": "no-deployment",
             "SequenceNumber": 0, "PromptTokens": 1, "CompletionTokens": 1, "TotalTokens": 2}
    con = local_workspace.connect(path)
    try:
        local_workspace.insert_rows(con, LLM, [extra])
    finally:
        con.close()
    check_workspace(path, traffic.gateway, [*traffic.llm, extra], DEMO_GATEWAY_STRINGS)
    # the demo never names a backend: every row is in the "" group, none is null
    assert kql(path, f"{GATEWAY} | summarize n = count() by BackendId") == [("", len(traffic.gateway))]


# ---- chargeback workspace import ---------------------------------------------------------------

def diagnostic_gateway(cid: str, minute: int, subscription: str | None, backend: str | None,
                       error: str | None) -> dict[str, Any]:
    """A GatewayLogs diagnostic record (the storage-account export shape) with optional fields left out."""
    properties: dict[str, Any] = {"method": "POST", "url": "https://apim.example/openai/x", "responseCode": 200,
                                  "apiId": "azure-openai", "operationId": "ChatCompletions_Create"}
    if subscription is not None:
        properties["apimSubscriptionId"] = subscription
    if backend is not None:
        properties["backendId"] = backend
        properties["backendResponseCode"] = 200
    if error is not None:
        properties["lastError"] = {"source": "forward-request", "reason": error, "message": "failed"}
    return {"time": f"2026-11-20T10:{minute:02d}:05Z", "category": "GatewayLogs", "correlationId": cid,
            "operationName": "Microsoft.ApiManagement/GatewayLogs", "properties": properties}


def diagnostic_llm(cid: str, minute: int, deployment: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15,
                                  "modelName": "gpt-4o", "sequenceNumber": 0}
    if deployment is not None:
        properties["deploymentName"] = deployment
    return {"time": f"2026-11-20T10:{minute:02d}:05Z", "category": "GatewayLlmLogs", "correlationId": cid,
            "operationName": "Microsoft.ApiManagement/GatewayLlmLogs", "properties": properties}


def test_imported_records_missing_fields_have_kusto_strings(tmp_path: Path) -> None:
    cases = [("a", "team-a", "pool-1", None), ("b", None, "pool-1", None), ("c", "team-b", None, "Timeout"),
             ("d", "team-b", "pool-2", "ClientConnectionFailure"), ("e", None, None, None)]
    gateway_records = [diagnostic_gateway(cid, i, sub, backend, error)
                       for i, (cid, sub, backend, error) in enumerate(cases)]
    llm_records = [diagnostic_llm("a", 0, "gpt-4o"), diagnostic_llm("b", 1, None), diagnostic_llm("d", 3, "mini")]
    export = tmp_path / "export.json"
    export.write_text("".join(json.dumps(r) + "\n" for r in [*gateway_records, *llm_records]), encoding="utf-8")
    path = tmp_path / "imported.duckdb"
    report = import_files(path, [export])
    assert report.tables[GATEWAY].inserted == len(cases) and report.tables[LLM].inserted == len(llm_records)
    # the rows as Log Analytics would hold them, written straight from the cases (not through the importer)
    gateway = [{"ApimSubscriptionId": sub, "BackendId": backend, "LastErrorReason": error,
                "BackendResponseCode": 200 if backend else None} for _, sub, backend, error in cases]
    llm = [{"DeploymentName": r["properties"].get("deploymentName")} for r in llm_records]
    check_workspace(path, gateway, llm)


# ---- the dev gateway ---------------------------------------------------------------------------

def exchange(number: int, subscription: str, status: int, reached_backend: bool) -> Exchange:
    ex = Exchange(when=datetime(2026, 11, 20, 10, number, tzinfo=UTC), started=time.perf_counter(),
                  correlation=f"cid-{number}", method="POST",
                  url="http://127.0.0.1/openai/deployments/gpt-4o/chat/completions", caller="127.0.0.1",
                  request_headers={}, subscription=subscription, status=status)
    if reached_backend:
        ex.deployment, ex.operation, ex.backend_status, ex.backend_ms = "gpt-4o", "ChatCompletions_Create", status, 5.0
        ex.response_body = b'{"usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}'
        ex.llm = {"model": "gpt-4o", "prompt_tokens": 3, "completion_tokens": 2, "stream": False,
                  "api_version": "2024-10-21", "request_messages": [], "response_messages": []}
    else:
        ex.error_reason, ex.error_message, ex.error_source = "Unauthorized", "no key", "authorization"
    return ex


def test_dev_gateway_rows_have_kusto_strings(tmp_path: Path) -> None:
    config = GatewayConfig.default()
    exchanges = [exchange(1, "team-a", 200, True), exchange(2, "", 401, False), exchange(3, "team-b", 200, True),
                 exchange(4, "", 401, False)]
    gateway = [gateway_row(ex, config) for ex in exchanges]
    llm = [row for ex in exchanges for row in llm_rows(ex, config)]
    llm.append({**llm[0], "CorrelationId": "no-deployment", "DeploymentName": None})  # a header-less chunk
    path = tmp_path / "gateway.duckdb"
    writer = WorkspaceWriter(path)
    try:
        writer.write(gateway, llm)
        assert writer.flush(timeout=30)
    finally:
        writer.close()
    check_workspace(path, gateway, llm)


# ---- a workspace written before the rule -------------------------------------------------------

def columns_sql(table: str) -> str:
    return ", ".join(f'"{c.name}" {local_workspace.DUCKDB_TYPES[c.kql_type]}' for c in table_schemas()[table])


def null_strings(con: Any, table: str) -> int:
    where = " OR ".join(f'"{name}" IS NULL' for name in local_workspace.string_columns(table))
    return int(con.execute(f'SELECT count(*) FROM "{table}" WHERE {where}').fetchone()[0])


def test_older_workspace_is_fixed_once_by_the_first_writer(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    for table in (GATEWAY, LLM):
        con.execute(f'CREATE TABLE "{table}" ({columns_sql(table)})')
    con.execute(f'INSERT INTO "{GATEWAY}" ("CorrelationId", "ResponseCode") VALUES (\'x\', 200), (NULL, NULL)')
    con.execute(f'INSERT INTO "{LLM}" ("CorrelationId", "PromptTokens") VALUES (\'x\', NULL)')
    assert null_strings(con, GATEWAY) == 2 and null_strings(con, LLM) == 1
    con.close()

    con = local_workspace.connect(path)
    try:
        local_workspace.create_tables(con)
        assert null_strings(con, GATEWAY) == 0 and null_strings(con, LLM) == 0
        rows = con.execute(f'SELECT "CorrelationId", "ResponseCode", "BackendTime" FROM "{GATEWAY}" '
                           'ORDER BY "CorrelationId"').fetchall()
        assert rows == [("", None, None), ("x", 200, None)]  # strings "", other types stay null
        assert con.execute(f'SELECT "PromptTokens" FROM "{LLM}"').fetchall() == [(None,)]
        # once: a later open does not scan again (a NULL written behind its back stays)
        con.execute(f'INSERT INTO "{LLM}" ("CorrelationId") VALUES (NULL)')
        local_workspace.create_tables(con)
        assert null_strings(con, LLM) == 1
    finally:
        con.close()
    assert kql(path, f'{GATEWAY} | where CorrelationId == "" | count') == [(1,)]


def rows_of(path: Path, table: str) -> Iterable[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return list(con.execute(f'SELECT * FROM "{table}"').fetchall())
    finally:
        con.close()


@pytest.mark.parametrize("value", [None, ""])
def test_absent_and_empty_strings_are_stored_alike(tmp_path: Path, value: str | None) -> None:
    path = tmp_path / "w.duckdb"
    con = local_workspace.connect(path)
    try:
        local_workspace.create_tables(con)
        row: dict[str, Any] = {"CorrelationId": "c", "ResponseCode": 200}
        if value is not None:
            row["BackendId"] = value
        local_workspace.insert_rows(con, GATEWAY, [row])
    finally:
        con.close()
    names = [c.name for c in table_schemas()[GATEWAY]]
    (stored,) = rows_of(path, GATEWAY)
    as_dict = dict(zip(names, stored, strict=True))
    assert as_dict["BackendId"] == "" and as_dict["ApimSubscriptionId"] == "" and as_dict["BackendTime"] is None
