"""Tokens only from the response's own usage, never from a usage-shaped object in echoed content.

Responses echo request content: a function's parameters JSON schema, the Responses API's
``text.format`` schema and ``tools``, ``metadata``, and output text the caller steered. Each body
below carries a fake usage (1 + 1 = 2 tokens) before the real one (60,000 + 40,000 = 100,000); the
billed tokens must be the real ones, in both queries on the local engine, the oracle
(tests/expected.py) and the bench's hand SQL. A body cut at the 8,192-byte logging cap is
unmetered (truncated), never billed from whatever usage-shaped text precedes the cut.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bench.rollup_query import comparable, parameters, run_hand
from shared.adapters.local_workspace import LocalWorkspaceSource
from shared.queries import load
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import expected_hourly
from tests.integration.test_chunk_layouts import run_local
from tests.integration.test_rollup import write_workspace
from tests.unit.test_chunk_layout_oracle import by_subscription
from tests.unit.test_usage_oracle import (
    METERED,
    TRUNCATED,
)

START = DEMO_END - timedelta(hours=3)
HOUR = DEMO_END - timedelta(hours=2)


def spoof_traffic() -> demo_data.DemoTraffic:
    traffic = demo_data.DemoTraffic()
    for n, (subscription, (operation, body)) in enumerate({**METERED, **TRUNCATED}.items()):
        traffic.gateway.append({
            "TimeGenerated": HOUR + timedelta(seconds=n), "CorrelationId": f"spoof-{n:03d}",
            "ApimSubscriptionId": subscription, "ProductId": "p", "OperationId": operation,
            "Url": "https://apim/openai/deployments/dep/chat/completions", "ResponseCode": 200,
            "BackendResponseBody": body})
    return traffic


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    return spoof_traffic()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, traffic: demo_data.DemoTraffic) -> Path:
    path = tmp_path_factory.mktemp("spoof") / "workspace.duckdb"
    write_workspace(path, traffic)
    return path


@pytest.mark.parametrize("name", ["usage_from_gateway_body", "usage_by_subscription"])
def test_billed_tokens_are_the_real_usage(workspace: Path, traffic: demo_data.DemoTraffic, name: str) -> None:
    got = run_local(workspace, name, START, DEMO_END)
    assert got == expected_hourly(traffic.gateway, [], START, DEMO_END, "gatewaybody")
    rows = by_subscription(got)
    for subscription in METERED:
        row = rows[subscription]
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"], row["cached_tokens"],
                row["unmetered_requests"]) == (60000, 40000, 100000, 1024, 0), subscription
    assert rows["chat-sse"]["streamed_requests"] == rows["responses-sse"]["streamed_requests"] == 1


@pytest.mark.parametrize("name", ["usage_from_gateway_body", "usage_by_subscription"])
def test_cut_bodies_are_unmetered_not_billed_from_the_echo(workspace: Path, name: str) -> None:
    rows = by_subscription(run_local(workspace, name, START, DEMO_END))
    for subscription in TRUNCATED:
        row = rows[subscription]
        assert (row["requests"], row["unmetered_requests"], row["unmetered_truncated"], row["total_tokens"],
                row["cached_tokens"]) == (1, 1, 1, 0, 0), subscription
    assert rows["responses-sse-cut"]["unmetered_streamed"] == 1


def test_hand_sql_agrees_with_the_query(workspace: Path) -> None:
    query = load("usage_by_subscription")
    values = parameters(START, DEMO_END)
    kql = LocalWorkspaceSource(workspace).run(query, values)
    assert comparable(run_hand(workspace, values), list(query.columns)) == comparable(kql, list(query.columns))
    assert len(kql) == len(METERED) + len(TRUNCATED)
