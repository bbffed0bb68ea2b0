"""Fuzzing the body parsing (the KQL rules, run on the local engine): arbitrary bodies, encodings,
huge, negative and non-integer counts, unknown fields.  Nothing may escape the rollup, and every
successful request is either metered or counted as unmetered.  Usage-shaped objects in echoed
request content (tools, metadata, text.format, output text) are never what is billed."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shared.adapters.local_workspace import LocalWorkspaceSource
from shared.queries import load
from shared.services.rollup import usage_rows
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import body_usage, valid_usage
from tests.integration.test_rollup import write_workspace

numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
                    st.text(max_size=5), st.none(), st.booleans())
usage_objects = st.fixed_dictionaries(
    {}, optional={"prompt_tokens": numbers, "completion_tokens": numbers, "total_tokens": numbers,
                  "prompt_tokens_details": st.fixed_dictionaries({}, optional={"cached_tokens": numbers}),
                  "surprise": st.text(max_size=10)})
json_bodies = st.builds(lambda model, usage, extra: json.dumps({"model": model, "usage": usage, **extra}),
                        st.text(max_size=12), usage_objects,
                        st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3))
sse_bodies = st.builds(lambda usage, done: "data: " + json.dumps({"model": "m", "usage": None}) + "\n\n"
                       + ("data: " + json.dumps({"model": "m", "usage": usage}) + "\n\n" if usage else "")
                       + ("data: [DONE]\n\n" if done else ""), st.one_of(st.none(), usage_objects), st.booleans())
bodies = st.one_of(st.text(max_size=300), json_bodies, sse_bodies,
                   json_bodies.map(lambda b: b[: max(1, len(b) // 2)]),  # cut short, like the 8 KiB cap
                   st.binary(max_size=100).map(lambda b: b.decode("latin-1")))


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(bodies, min_size=1, max_size=8))
def test_arbitrary_bodies_never_escape_and_are_all_accounted_for(body_list: list[str]) -> None:
    start = DEMO_END - timedelta(hours=len(body_list))
    # one request per hour, so each result row is exactly one request
    gateway: list[dict[str, Any]] = [
        {"TimeGenerated": start + timedelta(hours=i), "CorrelationId": f"c{i}", "ApimSubscriptionId": "fuzz",
         "ProductId": "p", "OperationId": "ChatCompletions_Create", "ResponseCode": 200,
         "Url": "https://apim/openai/deployments/d/chat/completions", "BackendResponseBody": body.replace("\x00", "")}
        for i, body in enumerate(body_list)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ws.duckdb"
        write_workspace(path, demo_data.DemoTraffic(gateway, []))
        for name in ("usage_from_gateway_body", "usage_by_subscription"):
            records = LocalWorkspaceSource(path).run(load(name), {"window_start": start, "window_end": DEMO_END})
            rows = {row.period_start: row.counters for row in usage_rows(records)}  # the rollup's own mapping
            assert len(rows) == len(body_list)
            for request in gateway:
                counters = rows[request["TimeGenerated"]]
                assert counters.requests == 1
                usage = body_usage(request["BackendResponseBody"])[0]
                if usage is not None and valid_usage(usage) and all(
                        isinstance(usage.get(k, 0), int) for k in ("completion_tokens", "total_tokens")):
                    # clearly valid usage is always counted, exactly
                    assert counters.unmetered_requests == 0, request["BackendResponseBody"]
                    assert counters.prompt_tokens == usage["prompt_tokens"]
                assert 0 <= counters.cached_tokens < 10**9
                if counters.unmetered_requests == 0:
                    assert 0 <= counters.prompt_tokens < 10**9 and 0 <= counters.total_tokens < 10**9
                else:
                    assert counters.unmetered_requests == 1 and counters.total_tokens == 0


# Echoed request content holding usage-shaped objects, placed before the response's own usage.
counts = st.integers(min_value=0, max_value=10**8)
fake_usages = st.one_of(usage_objects, st.builds(lambda p, c: {"prompt_tokens": p, "completion_tokens": c,
                                                               "total_tokens": p + c}, counts, counts),
                        st.builds(lambda p, c: {"input_tokens": p, "output_tokens": c}, counts, counts))
echoes = st.lists(st.sampled_from(["tools", "metadata", "text", "output", "instructions"]), min_size=1, max_size=4,
                  unique=True)


def echoed(fields: list[str], fake: dict[str, Any]) -> dict[str, Any]:
    """Request content a response may echo, each piece holding ``fake`` (as an object, or as text)."""
    pieces: dict[str, Any] = {
        "tools": [{"type": "function", "name": "f", "parameters": {"examples": [{"usage": fake}], "type": "object"}}],
        "metadata": {"usage": fake},
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {"default": {"usage": fake}}}},
        "output": [{"type": "message", "content": [{"type": "output_text", "text": json.dumps({"usage": fake})}]}],
        "instructions": '"usage": ' + json.dumps(fake),
    }
    return {name: pieces[name] for name in fields}


@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(counts, counts, fake_usages, echoes, st.sampled_from(["chat", "responses"]),
                          st.booleans()), min_size=1, max_size=4))
def test_echoed_usage_is_never_billed(cases: list[tuple[int, int, dict[str, Any], list[str], str, bool]]) -> None:
    """Whatever usage-shaped objects the echoed content holds, the response's own usage is billed."""
    start = DEMO_END - timedelta(hours=len(cases))
    gateway: list[dict[str, Any]] = []
    for i, (prompt, completion, fake, fields, api, streamed) in enumerate(cases):
        if api == "chat":
            usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
            final = {"object": "chat.completion", "model": "m", **echoed(fields, fake), "choices": [], "usage": usage}
            body = ("data: " + json.dumps({"object": "chat.completion.chunk", "model": "m", **echoed(fields, fake),
                                           "usage": None}) + "\n\ndata: " + json.dumps(final) + "\n\ndata: [DONE]\n\n"
                    if streamed else json.dumps(final))
        else:
            usage = {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}
            response = {"object": "response", "model": "m", **echoed(fields, fake), "usage": usage}
            body = ("event: response.created\ndata: " + json.dumps({"type": "response.created", "response": {
                **response, "usage": None}}) + "\n\nevent: response.completed\ndata: "
                + json.dumps({"type": "response.completed", "response": response}) + "\n\n"
                if streamed else json.dumps(response))
        gateway.append({"TimeGenerated": start + timedelta(hours=i), "CorrelationId": f"e{i}",
                        "ApimSubscriptionId": "fuzz", "ProductId": "p", "OperationId": "Responses_Create",
                        "ResponseCode": 200, "Url": "https://apim/openai/deployments/d/responses",
                        "BackendResponseBody": body})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ws.duckdb"
        write_workspace(path, demo_data.DemoTraffic(gateway, []))
        for name in ("usage_from_gateway_body", "usage_by_subscription"):
            records = LocalWorkspaceSource(path).run(load(name), {"window_start": start, "window_end": DEMO_END})
            rows = {row.period_start: row.counters for row in usage_rows(records)}
            for request, (prompt, completion, *_) in zip(gateway, cases, strict=True):
                counters = rows[request["TimeGenerated"]]
                assert body_usage(request["BackendResponseBody"])[0] is not None  # the oracle agrees
                assert (counters.prompt_tokens, counters.completion_tokens, counters.total_tokens,
                        counters.unmetered_requests) == (prompt, completion, prompt + completion, 0), request
