"""LLM-log chunk layouts: which rows of a chunked request carry its token counts.

A message over 32 KB is logged as several ``ApiManagementGatewayLlmLog`` rows with increasing
``SequenceNumber``, and Microsoft does not document which of them carry the counts. The rollup
must be right whether they are on every row, on the first only or on the last only, and a request
none of whose rows has a count is unmetered (or, in ``auto``, counted from its logged body), never
zero tokens. Checked three ways on the same rows: the queries on the local engine, the independent
oracle (tests/expected.py) and the bench's hand-written SQL (bench/rollup_hand.sql).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bench.rollup_query import comparable, parameters, run_hand
from shared.adapters.local_workspace import LocalWorkspaceSource
from shared.queries import load
from shared.services.rollup import usage_rows
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import expected_hourly
from tests.integration.test_rollup import as_map, write_workspace
from tests.unit.test_chunk_layout_oracle import (
    COUNTED_LAYOUTS,
    START,
    UNCOUNTED_LAYOUTS,
    by_subscription,
)
from tests.unit.test_chunk_layout_oracle import traffic as traffic  # a fixture, found by its name


def run_local(path: Path, name: str, start: datetime, end: datetime,
              **parameters: str) -> dict[Any, dict[str, int]]:
    """A query's result on the local engine, as the rollup maps it (keyed like tests/expected.py)."""
    records = LocalWorkspaceSource(path).run(load(name), {"window_start": start, "window_end": end, **parameters})
    return as_map(usage_rows(records))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, traffic: demo_data.DemoTraffic) -> Path:
    path = tmp_path_factory.mktemp("chunks") / "workspace.duckdb"
    write_workspace(path, traffic)
    return path


@pytest.mark.parametrize("source", ["auto", "llmlog"])
def test_every_layout_counts_the_request_once(workspace: Path, traffic: demo_data.DemoTraffic, source: str) -> None:
    got = run_local(workspace, "usage_by_subscription", START, DEMO_END, usage_source=source)
    assert got == expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END, source)
    for layout in COUNTED_LAYOUTS:
        row = by_subscription(got)[layout]
        assert (row["requests"], row["prompt_tokens"], row["completion_tokens"], row["total_tokens"],
                row["unmetered_requests"], row["streamed_requests"]) == (1, 1200, 300, 1500, 0, 1), layout
        assert (row["model"], row["deployment"]) == ("gpt-4o-llm", "dep-llm"), layout


@pytest.mark.parametrize("source", ["auto", "llmlog"])
def test_no_counts_on_any_row_is_unmetered_never_zero_tokens(workspace: Path, source: str) -> None:
    rows = by_subscription(run_local(workspace, "usage_by_subscription", START, DEMO_END, usage_source=source))
    for layout in UNCOUNTED_LAYOUTS:
        row = rows[layout]
        # shown under the LLM log's names, as a streamed request the LLM log could not meter
        assert (row["model"], row["deployment"]) == ("gpt-4o-llm", "dep-llm"), layout
        assert (row["requests"], row["unmetered_requests"], row["unmetered_streamed"], row["total_tokens"]) == (
            1, 1, 1, 0), layout
        with_body = rows[f"{layout}+body"]
        if source == "auto":  # the logged body's usage is the fallback
            assert (with_body["prompt_tokens"], with_body["total_tokens"], with_body["unmetered_requests"]) == (
                70, 100, 0), layout
        else:  # llmlog reads no body
            assert (with_body["total_tokens"], with_body["unmetered_requests"]) == (0, 1), layout


@pytest.mark.parametrize("source", ["auto", "llmlog"])
def test_hand_sql_agrees_with_the_query_on_every_layout(workspace: Path, source: str) -> None:
    query = load("usage_by_subscription")
    values = parameters(START, DEMO_END, source)
    kql = LocalWorkspaceSource(workspace).run(query, values)
    hand = run_hand(workspace, values)
    assert comparable(hand, list(query.columns)) == comparable(kql, list(query.columns))
    assert len(kql) == len(COUNTED_LAYOUTS) + 2 * len(UNCOUNTED_LAYOUTS)
