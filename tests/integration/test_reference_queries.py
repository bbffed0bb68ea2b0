"""The reference queries (queries/reference: seed queries and Microsoft's AI-Gateway labs queries)
run on the local engine as shipped, and the AI-Gateway token query agrees with the rollup.

The rollup's per-subscription totals (requests, prompt, completion and total tokens) are read back
from Table Storage after a local rollup on Azurite and compared with the AI-Gateway-style token
query over the LLM log (one row per CorrelationId: chunk rows counted once), on requests where both
are defined: those with LLM-log counts and a subscription key.  Both are also compared with sums
computed here from the rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb_kql
import pytest

from shared.adapters import local_workspace
from shared.core.usage import Granularity
from shared.queries import QUERIES_DIR
from shared.settings import Settings
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.integration.test_rollup import service, stored, write_workspace

REFERENCE = QUERIES_DIR / "reference"
COLUMNS = {
    "token_usage_by_ip_and_model": ["ip", "model", "modelkey", "prompttokens", "completiontokens", "totaltokens",
                                    "avgtotaltokens"],
    "prompt_completion_monitor": ["TimeGenerated", "ApimSubscriptionId", "CallerIpAddress", "model", "prompttokens",
                                  "completiontokens", "completion", "CorrelationId"],
    "azure_diagnostics_preview": ["TimeGenerated", "_ResourceId", "Category", "OperationName"],
    "aigw_token_usage_by_deployment": ["SubscriptionId", "DeploymentName", "ModelName", "SumTotalTokens"],
    "aigw_token_usage_summary": ["SubscriptionId", "DeploymentName", "Requests", "SumPromptTokens",
                                 "SumCompletionTokens", "SumTotalTokens"],
    "aigw_prompt_completion_pairs": ["CorrelationId", "ModelName", "TotalTokens", "DeploymentName", "TimeGenerated",
                                     "Input", "Output"],
    "aigw_llm_usage_dashboard": ["DeploymentName", "ModelName", "TotalRequests", "TotalPromptTokens",
                                 "TotalCompletionTokens", "TotalTokens", "StreamingRequests", "AvgTokensPerRequest",
                                 "StreamingRate"],
    "aigw_backend_health": ["BackendId", "TotalRequests", "SuccessfulRequests", "FailedRequests", "Avg429Responses",
                            "SuccessRate"],
}
# requests through named backends (the demo names none), for the backend query to have something to show
BACKEND_ROWS = [{"TimeGenerated": DEMO_END - timedelta(minutes=m), "CorrelationId": f"backend-{m}",
                 "OperationId": "health", "ResponseCode": code, "BackendResponseCode": code,
                 "BackendId": backend} for m, code, backend in
                [(1, 200, "aoai-east"), (2, 429, "aoai-east"), (3, 200, "aoai-west"), (4, 200, None)]]


def run(path: Path, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = local_workspace.connect(path, read_only=True)
    try:
        relation = duckdb_kql.query(con, (REFERENCE / f"{name}.kql").read_text(encoding="utf-8"))
        return list(relation.columns), list(relation.fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    traffic = demo_data.generate(seed=7, days=1, end=DEMO_END, body_logging=True, llm_log_share=0.7)
    path = tmp_path_factory.mktemp("reference") / "workspace.duckdb"
    write_workspace(path, traffic)
    con = local_workspace.connect(path)
    try:
        local_workspace.insert_rows(con, "ApiManagementGatewayLogs", BACKEND_ROWS)
        local_workspace.insert_rows(con, "AzureDiagnostics", [
            {"TimeGenerated": DEMO_END, "_ResourceId": "/subscriptions/x/openai", "Category": "Audit",
             "OperationName": "ListKey"}])
    finally:
        con.close()
    return path


def test_every_reference_query_is_listed() -> None:
    assert sorted(p.stem for p in REFERENCE.glob("*.kql")) == sorted(COLUMNS)
    readme = (REFERENCE / "README.md").read_text(encoding="utf-8")
    for name in COLUMNS:
        assert f"`{name}.kql`" in readme, name


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_reference_query_runs_with_its_columns(demo_workspace: Path, name: str) -> None:
    text = (REFERENCE / f"{name}.kql").read_text(encoding="utf-8")
    assert text.startswith("// Reference query (") and ("Unchanged" in text or "Changed from the original" in text)
    columns, rows = run(demo_workspace, name)
    assert columns == COLUMNS[name]
    assert rows, "the demo workspace has something to show"


def test_backend_health_has_no_empty_or_null_group(demo_workspace: Path) -> None:
    _, rows = run(demo_workspace, "aigw_backend_health")
    got = {row[0]: row[1:5] for row in rows}
    assert got == {"aoai-east": (2, 1, 1, 1), "aoai-west": (1, 1, 0, 0)}


def metered_subset(traffic: demo_data.DemoTraffic) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The requests both sides define: a subscription key, and LLM-log rows with counts."""
    counted = {row["CorrelationId"] for row in traffic.llm
               if any(row.get(k) is not None for k in ("PromptTokens", "CompletionTokens", "TotalTokens"))}
    gateway = [g for g in traffic.gateway if g["CorrelationId"] in counted and g.get("ApimSubscriptionId")]
    kept = {g["CorrelationId"] for g in gateway}
    return gateway, [row for row in traffic.llm if row["CorrelationId"] in kept]


def independent_totals(gateway: list[dict[str, Any]], llm: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    per_request: dict[str, dict[str, int]] = {}
    for row in llm:  # each count: the max over the request's rows
        counts = per_request.setdefault(row["CorrelationId"], {})
        for key in ("PromptTokens", "CompletionTokens", "TotalTokens"):
            if row.get(key) is not None:
                counts[key] = max(counts.get(key, 0), int(row[key]))
    out: dict[str, Counter[str]] = {}
    for g in gateway:
        totals = out.setdefault(g["ApimSubscriptionId"], Counter())
        counts = per_request[g["CorrelationId"]]
        totals["requests"] += 1
        totals["prompt_tokens"] += counts.get("PromptTokens", 0)
        totals["completion_tokens"] += counts.get("CompletionTokens", 0)
        totals["total_tokens"] += counts.get("TotalTokens", 0)
    return out


def test_rollup_totals_equal_the_ai_gateway_token_query(settings: Settings) -> None:
    traffic = demo_data.generate(seed=19, days=1, end=DEMO_END, body_logging=True, llm_log_share=0.8)
    gateway, llm = metered_subset(traffic)
    chunked = Counter(row["CorrelationId"] for row in llm)
    assert any(n > 1 for n in chunked.values()), "chunked requests, so counting each row once would differ"
    write_workspace(settings.local_workspace_path, demo_data.DemoTraffic(gateway=gateway, llm=llm))

    start = DEMO_END - timedelta(days=1)
    service(settings, DEMO_END).backfill(start, DEMO_END)
    rollup: dict[str, Counter[str]] = {}
    for key, counters in stored(settings, Granularity.HOUR).items():
        totals = rollup.setdefault(key[1], Counter())
        for name in ("requests", "prompt_tokens", "completion_tokens", "total_tokens"):
            totals[name] += counters[name]

    columns, rows = run(settings.local_workspace_path, "aigw_token_usage_summary")
    gateway_query: dict[str, Counter[str]] = {}
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        totals = gateway_query.setdefault(values["SubscriptionId"], Counter())
        totals["requests"] += int(values["Requests"])
        totals["prompt_tokens"] += int(values["SumPromptTokens"])
        totals["completion_tokens"] += int(values["SumCompletionTokens"])
        totals["total_tokens"] += int(values["SumTotalTokens"])

    expected = independent_totals(gateway, llm)
    assert len(expected) >= 3 and sum(t["total_tokens"] for t in expected.values()) > 0
    assert gateway_query == expected
    assert rollup == expected
    # counting every LLM-log row would not agree: the deduplication is what makes them equal
    raw_total = sum(int(row["TotalTokens"]) for row in llm if row.get("TotalTokens") is not None)
    assert raw_total > sum(t["total_tokens"] for t in expected.values())
