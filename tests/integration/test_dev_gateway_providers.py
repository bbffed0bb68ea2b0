"""The dev gateway's Anthropic Messages and Gemini endpoints over real loopback HTTP: the answers' usage,
what is logged (gateway rows with bodies, no LLM-log rows), and the rollup query on those rows counting
exactly what the answers said, cut bodies unmetered under their model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from shared.adapters.local_workspace import LocalWorkspaceSource
from shared.queries import load
from shared.services.rollup import usage_rows
from shared.tooling.dev_gateway import DevGateway, GatewayConfig
from tests.expected import usage_counts

KEYS = {"key-a": {"subscription": "team-a", "product": "gold", "tpm": 10_000_000},
        "key-small": {"subscription": "team-small", "product": "trial", "tpm": 50}}
CLAUDE = "claude-sonnet-4-5-20250929"
SYSTEM = [{"type": "text", "text": "House rules. " * 500, "cache_control": {"type": "ephemeral"}}]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[DevGateway]:
    with DevGateway(GatewayConfig.from_dict({"keys": KEYS}), tmp_path / "workspace.duckdb") as gw:
        yield gw


def post(gw: DevGateway, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    with httpx.Client(timeout=10) as http:
        return http.post(gw.url + path, json=body, headers=headers)


def logged(gw: DevGateway, table: str) -> list[dict[str, Any]]:
    assert gw.wait_idle(10)
    con = duckdb.connect(str(gw.writer.path), read_only=True)
    try:
        cursor = con.execute(f'SELECT * FROM "{table}" ORDER BY "TimeGenerated"')
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def rollup(gw: DevGateway, name: str = "usage_by_subscription") -> list[dict[str, Any]]:
    assert gw.wait_idle(10)
    now = datetime.now(UTC)
    records = LocalWorkspaceSource(gw.writer.path).run(
        load(name), {"window_start": now - timedelta(hours=2), "window_end": now + timedelta(hours=1)})
    return [{**row.counters.as_dict(), "model": row.key.model, "subscription": row.key.subscription_id}
            for row in usage_rows(records)]


def total(rows: list[dict[str, Any]], model: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        if row["model"] == model:
            for name, value in row.items():
                if isinstance(value, int):
                    out[name] = out.get(name, 0) + value
    return out


def test_anthropic_messages_json_and_stream_with_prompt_cache(gateway: DevGateway) -> None:
    request = {"model": CLAUDE, "max_tokens": 16, "system": SYSTEM, "messages": [{"role": "user", "content": "Hi"}]}
    first = post(gateway, "/anthropic/v1/messages", request, **{"x-api-key": "key-a"})
    second = post(gateway, "/v1/messages", {**request, "thinking": {"type": "enabled", "budget_tokens": 32}},
                  **{"Ocp-Apim-Subscription-Key": "key-a"})
    streamed = post(gateway, "/anthropic/v1/messages", {**request, "stream": True}, **{"x-api-key": "key-a"})
    assert [r.status_code for r in (first, second, streamed)] == [200, 200, 200]
    written, read = first.json()["usage"], second.json()["usage"]
    assert written["cache_creation_input_tokens"] > 1024 and written["cache_read_input_tokens"] == 0
    assert read["cache_read_input_tokens"] == written["cache_creation_input_tokens"]  # the same prefix, cached
    assert read["output_tokens_details"]["thinking_tokens"] > 0
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    final = [e for e in events if e["type"] == "message_delta"][-1]["usage"]

    rows = logged(gateway, "ApiManagementGatewayLogs")
    assert [(r["OperationId"], r["ApiId"], r["ResponseCode"]) for r in rows] == [
        ("passthrough-post", "anthropic-messages", 200)] * 3
    assert rows[0]["BackendResponseBody"] == first.text and rows[2]["BackendResponseBody"] == streamed.text
    assert logged(gateway, "ApiManagementGatewayLlmLog") == []  # not documented for these APIs

    expected = [usage_counts(u) for u in (written, read, final)]
    got = total(rollup(gateway), CLAUDE)
    for kind in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "cache_write_tokens",
                 "reasoning_tokens"):
        assert got[kind] == sum(counts[kind] for counts in expected if counts), kind
    assert (got["requests"], got["streamed_requests"], got["unmetered_requests"]) == (3, 1, 0)
    assert got["prompt_tokens"] == 3 * (written["input_tokens"] + written["cache_creation_input_tokens"])


def test_gemini_json_sse_array_and_vertex(gateway: DevGateway) -> None:
    request = {"contents": [{"role": "user", "parts": [{"text": "Summarise the quarter. " * 20}]}],
               "generationConfig": {"maxOutputTokens": 30}}
    calls = [
        ("/v1beta/models/gemini-2.5-flash:generateContent", {**request, "cachedContent": "cachedContents/q3"}),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", request),
        ("/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.0-flash:streamGenerateContent",
         request),
    ]
    answers = [post(gateway, path, body, **{"x-goog-api-key": "key-a"}) for path, body in calls]
    assert [a.status_code for a in answers] == [200, 200, 200]
    plain = answers[0].json()["usageMetadata"]
    sse_final = json.loads(answers[1].text.strip().split("\r\n\r\n")[-1][len("data: "):])["usageMetadata"]
    array_final = answers[2].json()[-1]["usageMetadata"]
    assert plain["cachedContentTokenCount"] > 0 and plain["thoughtsTokenCount"] > 0
    assert "thoughtsTokenCount" not in array_final  # 2.0 models do not think
    rows = rollup(gateway)
    flash, vertex = total(rows, "gemini-2.5-flash"), total(rows, "gemini-2.0-flash")
    assert flash["prompt_tokens"] == plain["promptTokenCount"] + sse_final["promptTokenCount"]
    assert flash["completion_tokens"] == sum(u["candidatesTokenCount"] + u["thoughtsTokenCount"]
                                             for u in (plain, sse_final))
    assert flash["total_tokens"] == plain["totalTokenCount"] + sse_final["totalTokenCount"]
    assert (flash["cached_tokens"], flash["reasoning_tokens"]) == (
        plain["cachedContentTokenCount"], plain["thoughtsTokenCount"] + sse_final["thoughtsTokenCount"])
    assert (vertex["completion_tokens"], vertex["streamed_requests"]) == (array_final["candidatesTokenCount"], 1)
    assert rollup(gateway, "usage_from_gateway_body") == rows  # body-only: the same, no LLM log involved


def test_long_answers_cut_by_the_body_cap_keep_their_model(gateway: DevGateway) -> None:
    long = {"model": CLAUDE, "max_tokens": 3000, "messages": [{"role": "user", "content": "Tell it all. " * 2000}]}
    for body in (long, {**long, "stream": True}):
        assert post(gateway, "/anthropic/v1/messages", body, **{"x-api-key": "key-a"}).status_code == 200
    gemini = {"contents": [{"role": "user", "parts": [{"text": "Tell it all. " * 2000}]}]}
    assert post(gateway, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gemini,
                **{"x-goog-api-key": "key-a"}).status_code == 200
    assert all(len(r["BackendResponseBody"].encode()) == 8192 for r in logged(gateway, "ApiManagementGatewayLogs"))
    rows = rollup(gateway)
    assert {(r["model"], r["unmetered_requests"], r["unmetered_truncated"], r["total_tokens"]) for r in rows} == {
        (CLAUDE, 2, 2, 0), ("gemini-2.5-flash", 1, 1, 0)}


def test_keys_limits_and_unknown_models(gateway: DevGateway) -> None:
    message = {"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "x " * 400}]}
    assert post(gateway, "/anthropic/v1/messages", message, **{"x-api-key": "nope"}).status_code == 401
    assert post(gateway, "/anthropic/v1/messages", message, **{"x-api-key": "key-small"}).status_code == 429
    unknown = post(gateway, "/anthropic/v1/messages", {**message, "model": "claude-none"}, **{"x-api-key": "key-a"})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    missing = post(gateway, "/v1beta/models/gemini-9:generateContent", {"contents": []}, **{"x-goog-api-key": "key-a"})
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    rows = rollup(gateway)
    assert sum(r["requests"] for r in rows) == 4 and sum(r["error_requests"] for r in rows) == 4
    # Error answers name no model (the request did, but requests are not logged); Gemini's URL still does.
    assert {r["model"] for r in rows} == {"unknown", "gemini-9"}


def test_a_body_that_is_not_a_json_object_is_each_providers_400(gateway: DevGateway) -> None:
    with httpx.Client(timeout=10) as http:
        anthropic = http.post(gateway.url + "/anthropic/v1/messages", content=b"{not json",
                              headers={"x-api-key": "key-a"})
        gemini = http.post(gateway.url + "/v1beta/models/gemini-2.5-flash:generateContent", content=b"[1, 2]",
                           headers={"x-goog-api-key": "key-a"})
        no_key = http.post(gateway.url + "/anthropic/v1/messages", content=b"{not json", headers={"x-api-key": "nope"})
    assert anthropic.status_code == 400 and anthropic.json()["error"]["type"] == "invalid_request_error"
    assert "could not parse the JSON body" in anthropic.json()["error"]["message"]
    assert gemini.status_code == 400 and gemini.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert gemini.json()["error"]["message"] == "the body must be a JSON object"
    assert no_key.status_code == 401  # the key is checked before the body
