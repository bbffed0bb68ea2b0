"""The body rules for every provider, as pure logic: the oracle's reading of each provider's usage and
model (tests/expected.py), checked against numbers written out here; the oracle's model scanner against
the very pattern the queries use (run with Python's ``re``: same leftmost-first semantics as RE2 for it),
on generated lines that hide "model" keys in strings and nested echoes; and the dev gateway's Anthropic
and Gemini answers, whose usage must nest as those APIs nest it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.tooling.dev_gateway import anthropic_responses, gemini_responses
from shared.tooling.dev_gateway.model_stub import answer
from tests import provider_bodies as bodies
from tests.expected import MODEL_NESTING, body_model, body_usage, is_llm_call, url_model, usage_counts

QUERY = (Path(__file__).resolve().parents[2] / "queries" / "usage_by_subscription.kql").read_text(encoding="utf-8")
MODEL_PATTERN = re.search(r"BodyModel = iff\(Body == \"\", \"\", extract\(@'(.*?)', 1, Body\)\)", QUERY)
assert MODEL_PATTERN is not None, "the queries' body-model pattern moved: update this test"
MODEL_RE = re.compile(MODEL_PATTERN.group(1))


def query_model(body: str) -> str | None:
    match = MODEL_RE.search(body)
    return match.group(1) if match else None


def counts(body: str) -> dict[str, int] | None:
    usage = body_usage(body)[0]
    return None if usage is None else usage_counts(usage)


def test_anthropic_usage_nests_as_openai() -> None:
    usage = {"input_tokens": 50, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 4000,
             "output_tokens": 300, "output_tokens_details": {"thinking_tokens": 120}}
    assert counts(bodies.anthropic_json("claude", usage)) == {
        "prompt_tokens": 5550, "completion_tokens": 300, "total_tokens": 5850, "cached_tokens": 4000,
        "cache_write_tokens": 1500, "reasoning_tokens": 120, "audio_prompt_tokens": 0, "cached_audio_tokens": 0,
        "audio_completion_tokens": 0}
    # Streamed, earlier API: the delta has the (cumulative) output count only; the input side is message_start's.
    stream = bodies.anthropic_stream("claude", {"input_tokens": 7, "cache_read_input_tokens": 3, "output_tokens": 1},
                                     [{"output_tokens": 9}, {"output_tokens": 20}])
    assert counts(stream) == {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30, "cached_tokens": 3,
                              "cache_write_tokens": 0, "reasoning_tokens": 0, "audio_prompt_tokens": 0,
                              "cached_audio_tokens": 0, "audio_completion_tokens": 0}
    # Without message_stop a later delta may be missing: not billed.
    cut_stream = bodies.anthropic_stream("claude", {"input_tokens": 7}, [{"output_tokens": 9}], stop=False)
    assert body_usage(cut_stream)[0] is None


def test_gemini_completion_includes_thoughts() -> None:
    usage = {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
             "cachedContentTokenCount": 60, "toolUsePromptTokenCount": 5, "totalTokenCount": 155}
    got = counts(bodies.gemini_json("gemini-2.5-pro", usage))
    assert got is not None
    assert (got["prompt_tokens"], got["completion_tokens"], got["total_tokens"], got["cached_tokens"],
            got["reasoning_tokens"]) == (105, 50, 155, 60, 30)
    # A stream counts from its final chunk only; a cut one not at all.
    running = [{"promptTokenCount": 4, "totalTokenCount": 4}]
    final = {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}
    assert (counts(bodies.gemini_stream("g", running, final)) or {}).get("completion_tokens") == 6
    assert body_usage(bodies.gemini_stream("g", running * 3, final, complete=False))[0] is None
    assert (counts(bodies.gemini_array("g", running, final)) or {}).get("total_tokens") == 10


def test_models_named_by_bodies_and_urls() -> None:
    assert body_model(bodies.azure_chat_stream("gpt-4o-2024-11-20", None)) == "gpt-4o-2024-11-20"  # not ""
    assert body_model(bodies.anthropic_stream("claude-x", {}, [], stop=False)) == "claude-x"  # message_start's
    assert body_model(bodies.responses_json("o3", {"input_tokens": 1})) == "o3"  # not the instructions' text
    assert body_model(bodies.gemini_json("gemini-2.5-pro", {"promptTokenCount": 1})) is None  # modelVersion only
    assert url_model("https://a/v1/projects/p/locations/l/publishers/google/models/gemini-2.0-flash:generateContent"
                     ) == "gemini-2.0-flash"
    assert url_model("https://a/openai/models/chat/completions") is None
    assert is_llm_call("passthrough-post", "https://a/anthropic/v1/messages?beta=true")
    assert not is_llm_call("passthrough-post", "https://a/anthropic/v1/messages/count_tokens")
    assert not is_llm_call("", "https://a/v1beta/models/gemini-2.5-pro:countTokens")


# JSON values that hide "model" keys: in strings (quoted, escaped) and in nested objects (echoed content).
scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.none(), st.sampled_from(
    ['model', '"model": "in-a-string"', 'a\\"model\\"', "{[", "", "x\ty"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["model", "response", "message", "usage", "a", "b"]), inner, max_size=3)),
    max_leaves=12)
keys = st.sampled_from(["id", "model", "response", "message", "choices", "usage", "x"])
lines = st.lists(st.tuples(keys, values), max_size=6).map(lambda items: json.dumps(dict(items)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "data: ", "data:", "event: x\ndata: "]), lines), min_size=1, max_size=3),
       st.integers(0, 400))
def test_model_scanner_is_the_queries_pattern(events: list[tuple[str, str]], cut_at: int) -> None:
    """The oracle's scanner and the queries' pattern name the same model, on whole and on cut text."""
    body = "\n\n".join(prefix + line for prefix, line in events)
    for text in (body, body[:cut_at]):
        assert body_model(text) == query_model(text), text


def test_model_scanner_nesting_limit() -> None:
    def nested(depth: int) -> Any:
        return {"model": "deep"} if depth == 0 else [nested(depth - 1)]
    for depth in (MODEL_NESTING - 1, MODEL_NESTING, MODEL_NESTING + 1):
        line = json.dumps({"echo": nested(depth), "model": "top"})
        assert body_model(line) == query_model(line) == ("top" if depth < MODEL_NESTING else None), depth


def test_dev_gateway_anthropic_answer() -> None:
    request = {"model": "claude", "max_tokens": 100, "thinking": {"type": "enabled", "budget_tokens": 40},
               "system": [{"type": "text", "text": "rules " * 900, "cache_control": {"type": "ephemeral"}}],
               "messages": [{"role": "user", "content": "hello"}]}
    prompt = anthropic_responses.read_prompt(request)
    assert prompt.cached_prefix >= anthropic_responses.MIN_CACHEABLE_TOKENS and prompt.prefix_key
    reply = answer(prompt.text, prompt.tokens, 60)
    thinking = anthropic_responses.thinking_tokens(prompt)
    write = anthropic_responses.message_body("c-1", "claude", reply, prompt, cache_hit=False)["usage"]
    read = anthropic_responses.message_body("c-1", "claude", reply, prompt, cache_hit=True)["usage"]
    assert write["input_tokens"] + write["cache_creation_input_tokens"] == prompt.tokens == (
        read["input_tokens"] + read["cache_read_input_tokens"])
    assert write["output_tokens"] == len(reply.words) + thinking and write["output_tokens_details"] == {
        "thinking_tokens": thinking}
    stream = "".join(event for event, _ in anthropic_responses.sse_events("c-1", "claude", reply, prompt, True))
    assert counts(stream) == usage_counts({**read, "output_tokens": len(reply.words) + thinking})
    assert body_model(stream) == "claude"


def test_dev_gateway_gemini_answer() -> None:
    request = {"contents": [{"role": "user", "parts": [{"text": "hi " * 200}]}], "cachedContent": "cachedContents/a"}
    prompt = gemini_responses.read_prompt("gemini-2.5-flash", request)
    reply = answer(prompt.text, prompt.tokens, None)
    thoughts = gemini_responses.thoughts_tokens(prompt)
    usage = gemini_responses.response_body("c-2", "gemini-2.5-flash", reply, prompt)["usageMetadata"]
    assert thoughts > 0 and usage["cachedContentTokenCount"] == prompt.cached > 0
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"] + thoughts
    expected = {"prompt_tokens": prompt.tokens, "completion_tokens": len(reply.words) + thoughts,
                "total_tokens": usage["totalTokenCount"], "cached_tokens": prompt.cached, "reasoning_tokens": thoughts}
    for events in (gemini_responses.sse_events, gemini_responses.array_events):
        body = "".join(event for event, _ in events("c-2", "gemini-2.5-flash", reply, prompt))
        got = counts(body) or {}
        assert {kind: got.get(kind) for kind in expected} == expected, events.__name__
