"""Tokens only from the response's own usage, never from a usage-shaped object in echoed content.

Responses echo request content: a function's parameters JSON schema, the Responses API's
``text.format`` schema and ``tools``, ``metadata``, and output text the caller steered. Each body
below carries a fake usage (1 + 1 = 2 tokens) before the real one (60,000 + 40,000 = 100,000); the
billed tokens must be the real ones, in both queries on the local engine, the oracle
(tests/expected.py) and the bench's hand SQL. A body cut at the 8,192-byte logging cap is
unmetered (truncated), never billed from whatever usage-shaped text precedes the cut.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.rollup_query import comparable, run_hand
from shared.adapters.local_workspace import LocalWorkspaceSource
from shared.queries import load
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import body_usage, expected_hourly
from tests.integration.test_chunk_layouts import by_subscription, run_local
from tests.integration.test_rollup import write_workspace

START = DEMO_END - timedelta(hours=3)
HOUR = DEMO_END - timedelta(hours=2)

CHAT_FAKE = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
CHAT_REAL = {"prompt_tokens": 60000, "completion_tokens": 40000, "total_tokens": 100000,
             "prompt_tokens_details": {"cached_tokens": 1024}}
RESPONSES_FAKE = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
RESPONSES_REAL = {"input_tokens": 60000, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 40000,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 100000}
# Said by the model, so JSON-escaped inside a string: `\"usage\": {...}` in the logged text.
SPOOF_TEXT = 'Report: "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2} done'


def function_tool(fake: dict[str, int]) -> dict[str, Any]:
    """A function tool whose parameters schema holds a usage-shaped object (an example / default)."""
    return {"type": "function", "function": {"name": "report_usage", "parameters": {
        "examples": [{"usage": fake}], "type": "object",
        "properties": {"usage": {"type": "object", "default": fake}}}}}


def chat_completion(**echo: Any) -> dict[str, Any]:
    """A chat completion with echoed fields placed before the real usage."""
    return {"id": "chatcmpl-x", "object": "chat.completion", "created": 1764000000, "model": "gpt-4o-2024-08-06",
            **echo,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": SPOOF_TEXT}}],
            "usage": CHAT_REAL, "system_fingerprint": "fp_x"}


def response_object(usage: dict[str, Any] | None) -> dict[str, Any]:
    """A Responses API response in its documented key order: text.format and tools (echoed request
    content, each with a usage-shaped fake) before usage, metadata after."""
    schema = {"examples": [{"usage": RESPONSES_FAKE}], "type": "object", "properties": {"usage": {
        "type": "object", "properties": {"input_tokens": {"type": "integer"}}, "default": RESPONSES_FAKE}}}
    return {
        "id": "resp_x", "object": "response", "created_at": 1764000000,
        "status": "completed" if usage else "in_progress", "error": None, "incomplete_details": None,
        "instructions": "Answer with a usage report.", "max_output_tokens": None, "model": "gpt-4.1-2025-04-14",
        "output": [{"type": "message", "id": "msg_x", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": SPOOF_TEXT, "annotations": []}]}] if usage else [],
        "parallel_tool_calls": True, "previous_response_id": None, "store": True, "temperature": 1.0,
        "text": {"format": {"type": "json_schema", "name": "usage_report", "strict": False, "schema": schema}},
        "tool_choice": "auto",
        "tools": [{"type": "function", "name": "report_usage", "parameters": schema, "strict": False}],
        "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None,
        "metadata": {"usage": json.dumps(RESPONSES_FAKE)},  # metadata values are strings
    }


def sse(events: list[tuple[str | None, dict[str, Any]]], done: bool) -> str:
    return "".join((f"event: {name}\n" if name else "") + f"data: {json.dumps(event)}\n\n" for name, event in events) \
        + ("data: [DONE]\n\n" if done else "")


def chat_stream() -> str:
    """Chunks with "usage": null (one echoing a fake in a nested object), the model's text as deltas,
    and the final usage chunk, which itself holds a nested fake before its own usage."""
    chunk = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06"}
    events: list[tuple[str | None, dict[str, Any]]] = [
        (None, {**chunk, "echo": {"usage": CHAT_FAKE}, "choices": [{"index": 0, "delta": {"role": "assistant"}}],
                "usage": None}),
        *((None, {**chunk, "choices": [{"index": 0, "delta": {"content": piece}}], "usage": None})
          for piece in (SPOOF_TEXT[:20], SPOOF_TEXT[20:])),
        (None, {**chunk, "metadata": {"usage": CHAT_FAKE}, "choices": [], "usage": CHAT_REAL}),
    ]
    return sse(events, done=True)


def responses_stream(complete: bool = True) -> str:
    """response.created (echo with fakes, usage null), text deltas saying a fake, response.completed."""
    events: list[tuple[str | None, dict[str, Any]]] = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": response_object(None)}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
                                        "item_id": "msg_x", "output_index": 0, "content_index": 0,
                                        "delta": SPOOF_TEXT}),
        ("response.output_text.done", {"type": "response.output_text.done", "sequence_number": 2,
                                       "item_id": "msg_x", "output_index": 0, "content_index": 0, "text": SPOOF_TEXT}),
    ]
    if complete:
        events.append(("response.completed", {"type": "response.completed", "sequence_number": 3,
                                              "response": response_object(RESPONSES_REAL)}))
    return sse(events, done=False)


def cut(text: str) -> str:
    """As APIM logs it past its 8,192-byte body cap."""
    return text.encode()[:8192].decode("utf-8", "ignore")


# subscription -> (operation, logged body)
METERED: dict[str, tuple[str, str]] = {
    "chat-json-tool-parameters": ("ChatCompletions_Create", json.dumps(chat_completion(
        tools=[function_tool(CHAT_FAKE)]))),
    "chat-json-metadata": ("ChatCompletions_Create", json.dumps(chat_completion(metadata={"usage": CHAT_FAKE}))),
    "chat-json-output-text": ("ChatCompletions_Create", json.dumps(chat_completion())),
    "chat-json-tool-call-arguments": ("ChatCompletions_Create", json.dumps(chat_completion(
        tool_calls_echo=[{"type": "function", "function": {"name": "report_usage",
                                                          "arguments": json.dumps({"usage": CHAT_FAKE})}}]))),
    "chat-sse": ("ChatCompletions_Create", chat_stream()),
    "responses-json": ("Responses_Create", json.dumps(response_object(RESPONSES_REAL))),
    "responses-sse": ("Responses_Create", responses_stream()),
}
# Past the cap: the real usage is cut off, fakes remain before the cut.
PADDING = "x" * 9000


def padded_tools(response: dict[str, Any]) -> dict[str, Any]:
    """A long tool description after the echoed schemas: the cap falls between them and the usage."""
    return {**response, "tools": [*response["tools"], {"type": "function", "name": "pad", "description": PADDING}]}


TRUNCATED: dict[str, tuple[str, str]] = {
    "chat-json-cut": ("ChatCompletions_Create", cut(json.dumps(chat_completion(
        tools=[function_tool(CHAT_FAKE)], padding=PADDING)))),
    "responses-json-cut": ("Responses_Create", cut(json.dumps(padded_tools(response_object(RESPONSES_REAL))))),
    "responses-sse-cut": ("Responses_Create", responses_stream(complete=False)),
    "responses-sse-cut-in-completed": ("Responses_Create", cut(responses_stream().replace(
        '"response.completed", "sequence_number": 3, "response": {"id"',
        '"response.completed", "sequence_number": 3, "response": {"pad": "' + PADDING + '", "id"'))),
}


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


def first_usage_in_text(body: str) -> Any:
    """What a search for the first `"usage": {` in the text finds (the rule these bodies defeat)."""
    at = body.index('"usage": {')
    return json.JSONDecoder().raw_decode(body, at + len('"usage": '))[0]


def test_the_fake_comes_first_in_every_body() -> None:
    """The cases are meaningful: a text search finds a fake before the real usage (the output-text
    and tool-call-arguments fakes are JSON-escaped, so there the text search skips them too)."""
    for subscription, (_, body) in {**METERED, **TRUNCATED}.items():
        escaped = subscription in ("chat-json-output-text", "chat-json-tool-call-arguments")
        assert ('\\"usage\\"' in body) if escaped else first_usage_in_text(body) in (CHAT_FAKE, RESPONSES_FAKE), \
            subscription
    for _, body in TRUNCATED.values():
        assert len(body.encode()) <= 8192


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


def test_oracle_takes_the_responses_own_usage() -> None:
    for subscription, (_, body) in METERED.items():
        usage = body_usage(body)[0]
        assert usage in (CHAT_REAL, RESPONSES_REAL), subscription
    assert all(body_usage(body)[0] is None for _, body in TRUNCATED.values())


def test_hand_sql_agrees_with_the_query(workspace: Path) -> None:
    query = load("usage_by_subscription")
    values = {"window_start": START, "window_end": DEMO_END, "usage_source": "auto", "probe_subscription": "",
              "probe_header": "x-chargeback-probe"}
    kql = LocalWorkspaceSource(workspace).run(query, values)
    assert comparable(run_hand(workspace, values), list(query.columns)) == comparable(kql, list(query.columns))
    assert len(kql) == len(METERED) + len(TRUNCATED)
