"""Every log source counts correctly and says what it could not count (issue: silent zero usage).

Generated traffic with logged bodies (whole JSON, SSE with and without the usage chunk, bodies cut
at 8,192 bytes, empty and non-JSON bodies, cached tokens) and an LLM log that misses half the
requests; each source mode is compared with an independent computation (tests/expected.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.composition import rollup_service, table_store
from shared.core.usage import Granularity
from shared.settings import Settings
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import body_usage, expected_hourly
from tests.integration.test_rollup import stored, write_workspace

START = DEMO_END - timedelta(days=1)
EDGE_HOUR = DEMO_END - timedelta(hours=3)


def edge_cases() -> demo_data.DemoTraffic:
    """Hand-made requests for the cases the issue names, each in the same hour."""
    traffic = demo_data.DemoTraffic()
    n = 0

    def request(operation: str, body: str | None, status: int = 200, llm: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, subscription: str = "edge-team") -> None:
        nonlocal n
        n += 1
        correlation = f"edge-{n:04d}"
        traffic.gateway.append({
            "TimeGenerated": EDGE_HOUR + timedelta(seconds=n), "CorrelationId": correlation,
            "ApimSubscriptionId": subscription, "ProductId": "edge", "OperationId": operation,
            "Url": "https://apim/openai/deployments/dep-edge/chat/completions?api-version=2024-10-21",
            "ResponseCode": status, "BackendResponseBody": body, "RequestHeaders": headers})
        for sequence in range(llm.pop("chunks", 1) if llm else 0):
            assert llm is not None
            traffic.llm.append({"TimeGenerated": EDGE_HOUR + timedelta(seconds=n, milliseconds=300),
                                "CorrelationId": correlation, "SequenceNumber": sequence, **llm})

    usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    whole = json.dumps({"model": "gpt-4o-edge", "choices": [], "usage": usage})
    for operation in ("ChatCompletions_Create", "chatcompletions_create", "CHATCOMPLETIONS_CREATE",
                      "Completions_Create", "completions_create", "Embeddings_Create", "embeddings_create",
                      "Responses_Create", "responses_create"):
        request(operation, whole)
    # cut at exactly 8,192 bytes: once after a complete usage object, once before it; neither is whole
    # JSON, so neither has a top-level usage that can be read: both unmetered (truncated)
    early = json.dumps({"model": "gpt-4o-edge", "usage": {**usage, "prompt_tokens_details": {"cached_tokens": 5}},
                        "output": [{"content": "x" * 20000}]})
    request("Responses_Create", early.encode()[:8192].decode())
    late = json.dumps({"model": "gpt-4o-edge", "choices": [{"message": {"content": "y" * 20000}}], "usage": usage})
    cut = late.encode()[:8192].decode()
    assert len(cut.encode()) == 8192
    request("ChatCompletions_Create", cut)
    # SSE with the final usage chunk, and without it
    chunk = {"model": "gpt-4o-edge", "choices": [{"delta": {"content": "hi"}}], "usage": None}
    final = {"model": "gpt-4o-edge", "choices": [], "usage": usage}
    request("ChatCompletions_Create", f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(final)}\n\ndata: [DONE]\n\n")
    no_usage = {k: v for k, v in chunk.items() if k != "usage"}
    request("ChatCompletions_Create", f"data: {json.dumps(no_usage)}\n\ndata: [DONE]\n\n")
    # empty, null and non-JSON bodies on successful calls; an error that is not "unmetered"
    request("ChatCompletions_Create", "")
    request("ChatCompletions_Create", None)
    request("ChatCompletions_Create", "<html>gateway says hi</html>")
    request("ChatCompletions_Create", "not json", status=500)
    # negative counts are not usage
    request("ChatCompletions_Create", json.dumps({"model": "gpt-4o-edge", "usage": {
        "prompt_tokens": -5, "completion_tokens": 1, "total_tokens": -4}}))
    # fractional counts are not usage; an implausible cached count is left out, the request still counts
    request("ChatCompletions_Create", json.dumps({"model": "gpt-4o-odd", "usage": {
        "prompt_tokens": 10.5, "completion_tokens": 1, "total_tokens": 11.5}}))
    request("ChatCompletions_Create", json.dumps({"model": "gpt-4o-odd", "usage": {
        "prompt_tokens": 10.0, "completion_tokens": 2, "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 10**12}}}))
    # in both sources (auto takes the LLM log, once) with a chunked LLM-log entry
    llm = {"ModelName": "gpt-4o-llm", "DeploymentName": "dep-edge", "PromptTokens": 100, "CompletionTokens": 50,
           "TotalTokens": 150, "IsStreamCompletion": True}
    request("ChatCompletions_Create", whole, llm={**llm, "chunks": 3})
    # the Responses API names its counts input/output_tokens
    request("Responses_Create", json.dumps({"model": "gpt-4o-resp", "object": "response", "usage": {
        "input_tokens": 40, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 9, "total_tokens": 49}}))
    # probe traffic, by marker header and by dedicated subscription
    request("ChatCompletions_Create", whole, headers={"x-chargeback-probe": "1"})
    request("ChatCompletions_Create", whole, headers={"X-Chargeback-Probe": "1"})  # header names: any case
    request("ChatCompletions_Create", whole, headers={"x-chargeback-probe": "yes"})  # not the policy's "1"
    request("ChatCompletions_Create", whole, subscription="probe-sub")
    return traffic


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    generated = demo_data.generate(seed=23, days=1, end=DEMO_END, requests_per_hour=20, body_logging=True,
                                   llm_log_share=0.5)
    edges = edge_cases()
    return demo_data.DemoTraffic(generated.gateway + edges.gateway, generated.llm + edges.llm)


def run(settings: Settings, traffic: demo_data.DemoTraffic, source: str) -> dict[Any, dict[str, int]]:
    configured = settings.with_overrides(USAGE_SOURCE=source, PROBE_SUBSCRIPTION_ID="probe-sub")
    write_workspace(configured.local_workspace_path, traffic)
    rollup_service(configured).backfill(START, DEMO_END)
    return stored(configured, Granularity.HOUR)


@pytest.mark.parametrize("source", ["auto", "llmlog", "gatewaybody"])
def test_each_source_matches_independent_computation(settings: Settings, traffic: demo_data.DemoTraffic,
                                                     source: str) -> None:
    got = run(settings, traffic, source)
    assert got == expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END, source, "probe-sub")


def test_edge_cases_are_counted_as_the_issue_says(settings: Settings) -> None:
    got = run(settings, edge_cases(), "auto")
    edge = {k[3]: v for k, v in got.items() if k[1] == "edge-team"}
    body, llm = edge["gpt-4o-edge"], edge["gpt-4o-llm"]
    # 9 casings + SSE with usage + the "yes" marker (not a probe) = 11 metered
    assert body["prompt_tokens"] == 11 * 11 and body["total_tokens"] == 11 * 18
    assert body["cached_tokens"] == 0  # only the early-usage body had some, and it is cut
    assert llm == {**llm, "requests": 1, "prompt_tokens": 100, "total_tokens": 150, "streamed_requests": 1}
    # unmetered: truncated-early, truncated-late, SSE without usage, negative counts (gpt-4o-edge)
    # + empty, null, non-JSON (unknown model)
    unknown = edge["unknown"]
    assert body["unmetered_requests"] == 4 and body["unmetered_truncated"] == 2 and body["unmetered_streamed"] == 1
    assert unknown["unmetered_requests"] == 3 and unknown["error_requests"] == 1
    responses = edge["gpt-4o-resp"]
    assert (responses["prompt_tokens"], responses["completion_tokens"], responses["total_tokens"],
            responses["cached_tokens"], responses["unmetered_requests"]) == (40, 9, 49, 8, 0)
    odd = edge["gpt-4o-odd"]
    assert (odd["requests"], odd["prompt_tokens"], odd["total_tokens"], odd["cached_tokens"],
            odd["unmetered_requests"]) == (2, 10, 12, 0, 1)
    probes = {k[3]: v for k, v in got.items() if k[1] == "synthetic-probe"}
    assert probes["gpt-4o-edge"]["requests"] == 3
    assert not any(k[1] == "probe-sub" for k in got)


def test_auto_never_counts_a_request_twice(settings: Settings, traffic: demo_data.DemoTraffic) -> None:
    auto = run(settings, traffic, "auto")
    requests = sum(c["requests"] for c in auto.values())
    assert requests == sum(1 for g in traffic.gateway if START <= g["TimeGenerated"] < DEMO_END)
    both = {row["CorrelationId"] for row in traffic.llm if row["SequenceNumber"] == 0} & {
        g["CorrelationId"] for g in traffic.gateway if body_usage(g.get("BackendResponseBody") or "")[0]}
    assert len(both) > 20  # plenty of requests have tokens in both sources


def test_body_only_query_agrees_with_auto_fallback(settings: Settings, traffic: demo_data.DemoTraffic,
                                                   tmp_path: Any) -> None:
    """The two query files share the body rules; with no LLM log at all they must agree."""
    body_only = demo_data.DemoTraffic(traffic.gateway, [])
    auto = run(settings, body_only, "auto")
    other = settings.with_overrides(TABLE_PREFIX=settings.table_prefix + "b",
                                    LOCAL_WORKSPACE_PATH=str(tmp_path / "b.duckdb"))
    assert run(other, body_only, "gatewaybody") == auto


def test_unmetered_requests_are_in_the_report(settings: Settings, traffic: demo_data.DemoTraffic) -> None:
    from shared.api.presenters import report_json
    from shared.services.report import parse_usage_query, read_usage

    run(settings, traffic, "gatewaybody")
    query = parse_usage_query(None, START.date().isoformat(), None, "day", DEMO_END)
    totals = report_json(query, read_usage(table_store(settings), query))["totals"]
    assert isinstance(totals, dict)
    assert totals["unmeteredRequests"] > 0 and totals["unmeteredTruncated"] > 0 and totals["unmeteredStreamed"] > 0
    assert datetime.now(UTC) > DEMO_END
