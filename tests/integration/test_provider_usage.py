"""Every API the AI gateway fronts and every token kind, counted from logged bodies on the local engine.

Azure OpenAI (chat JSON and SSE with cached, audio and reasoning details, the Responses API,
transcription), Anthropic Messages (JSON, SSE with message_start/message_delta, cache reads and writes)
and Gemini (generateContent, streamGenerateContent as SSE and as a JSON array, thoughts, cached
content). Each request has its own subscription and known counts; each is checked three ways: the
numbers written out below, the independent oracle (tests/expected.py) and the bench's hand SQL. Cut
bodies and streams without usage are unmetered and keep the model the logs name.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.rollup_query import comparable, parameters, run_hand
from shared.adapters.local_workspace import LocalWorkspaceSource
from shared.queries import load
from shared.services.rollup import usage_rows
from shared.tooling.demo import demo_data
from tests import provider_bodies as bodies
from tests.conftest import DEMO_END
from tests.expected import expected_hourly
from tests.integration.test_rollup import write_workspace

START = DEMO_END - timedelta(hours=3)
HOUR = DEMO_END - timedelta(hours=2)

AZURE = "https://apim.example.net/openai/deployments/{}/chat/completions?api-version=2025-01-01-preview"
RESPONSES = "https://apim.example.net/openai/v1/responses"
TRANSCRIBE = "https://apim.example.net/openai/deployments/transcribe/audio/transcriptions?api-version=2025-03-01"
ANTHROPIC = "https://apim.example.net/anthropic/v1/messages"
ANTHROPIC_PLAIN = "https://apim.example.net/claude/messages?beta=true"  # an API whose backend ends in /v1
GEMINI = "https://apim.example.net/gemini/v1beta/models/{}:{}"
VERTEX = ("https://apim.example.net/vertex/v1/projects/p1/locations/europe-west4/publishers/google/models/"
          "{}:streamGenerateContent")

CHAT_USAGE = {"prompt_tokens": 2000, "completion_tokens": 500, "total_tokens": 2500,
              "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 300,
                                        "cached_tokens_details": {"audio_tokens": 100}},
              "completion_tokens_details": {"reasoning_tokens": 200, "audio_tokens": 120,
                                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
RESPONSES_USAGE = {"input_tokens": 3000, "input_tokens_details": {"cached_tokens": 2048}, "output_tokens": 700,
                   "output_tokens_details": {"reasoning_tokens": 512}, "total_tokens": 3700}
TRANSCRIBE_USAGE = {"type": "tokens", "input_tokens": 90,
                    "input_token_details": {"text_tokens": 10, "audio_tokens": 80},
                    "output_tokens": 12, "total_tokens": 102}
ANTHROPIC_USAGE = {"input_tokens": 50, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 4000,
                   "cache_creation": {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 0},
                   "output_tokens": 300, "output_tokens_details": {"thinking_tokens": 120}, "service_tier": "standard"}
ANTHROPIC_START = {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048,
                   "output_tokens": 1}
GEMINI_USAGE = {"promptTokenCount": 1200, "candidatesTokenCount": 80, "totalTokenCount": 1480,
                "cachedContentTokenCount": 1024, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1200}],
                "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1024}], "thoughtsTokenCount": 200}
GEMINI_RUNNING = [{"promptTokenCount": 40, "totalTokenCount": 40}, {"promptTokenCount": 40, "candidatesTokenCount": 5,
                                                                  "totalTokenCount": 75, "thoughtsTokenCount": 30}]
GEMINI_FINAL = {"promptTokenCount": 40, "candidatesTokenCount": 12, "totalTokenCount": 82, "thoughtsTokenCount": 30}
LONG = "All work and no play. " * 600  # past the 8 KB cap

# subscription -> (url, logged body, expected counters (only the non-zero ones), expected model)
CASES: dict[str, tuple[str, str, dict[str, int], str]] = {
    "azure-chat-json": (AZURE.format("gpt4o-audio"), bodies.azure_chat("gpt-4o-audio-preview", CHAT_USAGE), {
        "prompt_tokens": 2000, "completion_tokens": 500, "total_tokens": 2500, "cached_tokens": 1024,
        "audio_prompt_tokens": 300, "cached_audio_tokens": 100, "reasoning_tokens": 200,
        "audio_completion_tokens": 120}, "gpt-4o-audio-preview"),
    "azure-chat-sse": (AZURE.format("gpt4o"), bodies.azure_chat_stream("gpt-4o-2024-11-20", CHAT_USAGE), {
        "prompt_tokens": 2000, "completion_tokens": 500, "total_tokens": 2500, "cached_tokens": 1024,
        "audio_prompt_tokens": 300, "cached_audio_tokens": 100, "reasoning_tokens": 200,
        "audio_completion_tokens": 120, "streamed_requests": 1}, "gpt-4o-2024-11-20"),
    "responses-json": (RESPONSES, bodies.responses_json("o4-mini-2025-04-16", RESPONSES_USAGE), {
        "prompt_tokens": 3000, "completion_tokens": 700, "total_tokens": 3700, "cached_tokens": 2048,
        "reasoning_tokens": 512}, "o4-mini-2025-04-16"),
    "transcription": (TRANSCRIBE, bodies.transcription_json(TRANSCRIBE_USAGE), {
        "prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102, "audio_prompt_tokens": 80}, "unknown"),
    # Anthropic: prompt = input + cache reads + cache writes; cached = reads; cache writes their own kind.
    "anthropic-json": (ANTHROPIC, bodies.anthropic_json("claude-sonnet-4-5-20250929", ANTHROPIC_USAGE), {
        "prompt_tokens": 5550, "completion_tokens": 300, "total_tokens": 5850, "cached_tokens": 4000,
        "cache_write_tokens": 1500, "reasoning_tokens": 120}, "claude-sonnet-4-5-20250929"),
    # Today's API repeats the input side in message_delta.
    "anthropic-sse": (ANTHROPIC, bodies.anthropic_stream("claude-haiku-4-5-20251001", ANTHROPIC_START, [
        {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048,
         "output_tokens": 64}]), {
        "prompt_tokens": 2073, "completion_tokens": 64, "total_tokens": 2137, "cached_tokens": 2048,
        "streamed_requests": 1}, "claude-haiku-4-5-20251001"),
    # Earlier API versions: message_delta has output_tokens only; the input side is message_start's. Two
    # deltas: the counts are cumulative, the last one holds.
    "anthropic-sse-output-only": (ANTHROPIC_PLAIN, bodies.anthropic_stream("claude-3-5-haiku-20241022", {
        "input_tokens": 400, "cache_creation_input_tokens": 1100, "cache_read_input_tokens": 0, "output_tokens": 1},
        [{"output_tokens": 30}, {"output_tokens": 75}]), {
        "prompt_tokens": 1500, "completion_tokens": 75, "total_tokens": 1575, "cache_write_tokens": 1100,
        "streamed_requests": 1}, "claude-3-5-haiku-20241022"),
    # Gemini: completion = candidates + thoughts (candidates exclude them); cached ⊆ prompt.
    "gemini-json": (GEMINI.format("gemini-2.5-pro", "generateContent"),
                    bodies.gemini_json("gemini-2.5-pro", GEMINI_USAGE),
                    {"prompt_tokens": 1200, "completion_tokens": 280, "total_tokens": 1480, "cached_tokens": 1024,
                     "reasoning_tokens": 200}, "gemini-2.5-pro"),
    "gemini-sse": (GEMINI.format("gemini-2.5-flash", "streamGenerateContent?alt=sse"),
                   bodies.gemini_stream("gemini-2.5-flash", GEMINI_RUNNING, GEMINI_FINAL), {
                       "prompt_tokens": 40, "completion_tokens": 42, "total_tokens": 82, "reasoning_tokens": 30,
                       "streamed_requests": 1}, "gemini-2.5-flash"),
    "vertex-array": (VERTEX.format("gemini-2.0-flash-001"), bodies.gemini_array(
        "gemini-2.0-flash-001", [{"promptTokenCount": 9, "totalTokenCount": 9}],
        {"promptTokenCount": 9, "candidatesTokenCount": 21, "totalTokenCount": 30}), {
        "prompt_tokens": 9, "completion_tokens": 21, "total_tokens": 30, "streamed_requests": 1},
        "gemini-2.0-flash-001"),
}

UNMETERED = {"unmetered_requests": 1}
TRUNCATED = {"unmetered_requests": 1, "unmetered_truncated": 1}
STREAMED_UNMETERED = {"unmetered_requests": 1, "unmetered_streamed": 1, "streamed_requests": 1}
# Unmetered requests, shown under the model the logs name.
UNMETERED_CASES: dict[str, tuple[str, str, dict[str, int], str]] = {
    # OpenAI's key order: the model comes before the long answer the cap cuts.
    "chat-cut-model-first": (AZURE.format("gpt4o"),
                             bodies.cut(bodies.openai_chat("gpt-4o-2024-08-06", CHAT_USAGE, LONG)),
                             TRUNCATED, "gpt-4o-2024-08-06"),
    # Azure's sorted keys with a long answer: the cap falls in choices, before the model; no other source
    # names it here (no LLM log row, not a Gemini URL): unknown, until pricing's deployment catalog.
    "azure-cut-in-choices": (AZURE.format("gpt4o"),
                             bodies.cut(bodies.azure_chat("gpt-4o-2024-08-06", CHAT_USAGE, LONG)),
                             TRUNCATED, "unknown"),
    # Sorted keys, short answer, cut after the model: nested "model" keys in echoed content come first.
    "azure-cut-after-model": (AZURE.format("gpt4o"), bodies.cut(bodies.azure_chat(
        "gpt-4o-2024-08-06", None, "ok", echo_model=True) [:-1] + ', "padding": "' + "x" * 9000 + '"}'),
        TRUNCATED, "gpt-4o-2024-08-06"),
    "azure-sse-no-usage": (AZURE.format("gpt4o"), bodies.azure_chat_stream("gpt-4o-2024-08-06", None),
                           STREAMED_UNMETERED, "gpt-4o-2024-08-06"),
    "anthropic-json-cut": (ANTHROPIC, bodies.cut(bodies.anthropic_json("claude-opus-4-1-20250805", ANTHROPIC_USAGE,
                                                                         LONG)), TRUNCATED, "claude-opus-4-1-20250805"),
    "anthropic-sse-cut": (ANTHROPIC, bodies.anthropic_stream("claude-sonnet-4-5-20250929", ANTHROPIC_START,
                                                             [{"output_tokens": 10}], stop=False),
                          {**STREAMED_UNMETERED, "unmetered_truncated": 1}, "claude-sonnet-4-5-20250929"),
    "anthropic-sse-no-usage": (ANTHROPIC,
                               bodies.anthropic_stream("claude-sonnet-4-5-20250929", ANTHROPIC_START, [None]),
                               STREAMED_UNMETERED, "claude-sonnet-4-5-20250929"),
    "gemini-json-cut": (GEMINI.format("gemini-2.5-pro", "generateContent"),
                        bodies.cut(bodies.gemini_json("gemini-2.5-pro", GEMINI_USAGE, LONG)), TRUNCATED,
                        "gemini-2.5-pro"),
    "gemini-sse-cut": (GEMINI.format("gemini-2.5-flash", "streamGenerateContent?alt=sse"),
                       bodies.gemini_stream("gemini-2.5-flash", GEMINI_RUNNING, GEMINI_FINAL, complete=False),
                       {**STREAMED_UNMETERED, "unmetered_truncated": 1}, "gemini-2.5-flash"),
    "gemini-sse-no-usage": (GEMINI.format("gemini-2.5-flash", "streamGenerateContent?alt=sse"),
                            bodies.gemini_stream("gemini-2.5-flash", [None], None), STREAMED_UNMETERED,
                            "gemini-2.5-flash"),
    "vertex-array-cut": (VERTEX.format("gemini-2.0-flash-001"), bodies.cut(bodies.gemini_array(
        "gemini-2.0-flash-001", [{"promptTokenCount": 9, "totalTokenCount": 9}] * 60, GEMINI_FINAL)),
        {**STREAMED_UNMETERED, "unmetered_truncated": 1}, "gemini-2.0-flash-001"),
}
# Not LLM calls: token counting and batch management bill nothing and are left out entirely.
IGNORED = {
    "anthropic-count-tokens": ("https://apim.example.net/anthropic/v1/messages/count_tokens", '{"input_tokens": 12}'),
    "gemini-count-tokens": (GEMINI.format("gemini-2.5-pro", "countTokens"), '{"totalTokens": 31}'),
}


def provider_traffic() -> demo_data.DemoTraffic:
    """One request per case, each its own subscription, all in HOUR; Anthropic and Gemini logged under a
    passthrough API's wildcard operation id (recognised by URL path), Azure under its operation ids. Two
    more: a request the LLM log counts whose body holds the kinds it has no column for, and one the LLM
    log names without counts and no body."""
    traffic = demo_data.DemoTraffic()
    cases: dict[str, tuple[str, str]] = {name: (url, body) for name, (url, body, _, _) in
                                         {**CASES, **UNMETERED_CASES}.items()}
    for n, (subscription, (url, body)) in enumerate({**cases, **IGNORED}.items()):
        operation = "ChatCompletions_Create" if "/openai/deployments/" in url and "audio" not in url else (
            "Responses_Create" if url == RESPONSES else "passthrough-post")
        traffic.gateway.append({
            "TimeGenerated": HOUR + timedelta(seconds=n), "CorrelationId": f"provider-{n:03d}",
            "ApimSubscriptionId": subscription, "ProductId": "p", "OperationId": operation, "Url": url,
            "ResponseCode": 200, "BackendResponseBody": body})
    llm_cases: tuple[tuple[str, str, str | None, dict[str, int]], ...] = (
        ("llm-counted", "llm-counted-body-kinds", bodies.azure_chat("gpt-4o-2024-08-06", CHAT_USAGE),
         {"PromptTokens": 1990, "CompletionTokens": 510, "TotalTokens": 2500}),
        ("llm-uncounted", "llm-named-no-counts", None, {}))
    for correlation, subscription, logged_body, counts in llm_cases:
        traffic.gateway.append({
            "TimeGenerated": HOUR + timedelta(minutes=30), "CorrelationId": correlation,
            "ApimSubscriptionId": subscription, "ProductId": "p", "OperationId": "ChatCompletions_Create",
            "Url": AZURE.format("gpt4o"), "ResponseCode": 200, "BackendResponseBody": logged_body})
        traffic.llm.append({"TimeGenerated": HOUR + timedelta(minutes=30, seconds=1), "CorrelationId": correlation,
                            "SequenceNumber": 0, "ModelName": "gpt-4o-2024-08-06", "DeploymentName": "gpt4o",
                            "IsStreamCompletion": False, **counts})
    return traffic


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    return provider_traffic()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, traffic: demo_data.DemoTraffic) -> Path:
    path = tmp_path_factory.mktemp("providers") / "workspace.duckdb"
    write_workspace(path, traffic)
    return path


def run(path: Path, name: str, **parameters: str) -> dict[str, dict[str, Any]]:
    """Per subscription: its counters (as the rollup maps the query's rows) with its model and deployment."""
    records = LocalWorkspaceSource(path).run(load(name), {"window_start": START, "window_end": DEMO_END, **parameters})
    out: dict[str, dict[str, Any]] = {}
    for row in usage_rows(records):
        assert row.subscription_id not in out, row.subscription_id
        out[row.subscription_id] = {**row.counters.as_dict(), "model": row.key.model,
                                    "deployment": row.key.deployment}
    return out


def as_oracle_keys(rows: dict[str, dict[str, Any]]) -> dict[Any, dict[str, int]]:
    return {(HOUR, subscription, "p", row["model"], row["deployment"]):
            {k: v for k, v in row.items() if k not in ("model", "deployment")} for subscription, row in rows.items()}


@pytest.mark.parametrize("name", ["usage_by_subscription", "usage_from_gateway_body"])
def test_every_provider_and_token_kind(workspace: Path, traffic: demo_data.DemoTraffic, name: str) -> None:
    rows = run(workspace, name)
    for subscription, (_, _, expected, model) in {**CASES, **UNMETERED_CASES}.items():
        row = rows[subscription]
        nonzero = {k: v for k, v in row.items() if v and k not in ("requests", "model", "deployment")}
        assert (row["requests"], nonzero, row["model"]) == (1, expected, model), subscription
    assert not set(IGNORED) & set(rows)
    source = "auto" if name == "usage_by_subscription" else "gatewaybody"
    assert as_oracle_keys(rows) == expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END, source)


def test_llm_log_counts_and_body_kinds(workspace: Path) -> None:
    """Counted from the LLM log (its counts win), the kinds it has no column for from the body; a request
    the LLM log names without counts is unmetered under the LLM log's model and deployment."""
    rows = run(workspace, "usage_by_subscription")
    counted = rows["llm-counted-body-kinds"]
    assert (counted["prompt_tokens"], counted["completion_tokens"], counted["cached_tokens"],
            counted["audio_prompt_tokens"], counted["cached_audio_tokens"], counted["reasoning_tokens"],
            counted["audio_completion_tokens"], counted["unmetered_requests"]) == (
        1990, 510, 1024, 300, 100, 200, 120, 0)
    named = rows["llm-named-no-counts"]
    assert (named["model"], named["deployment"], named["unmetered_requests"], named["total_tokens"]) == (
        "gpt-4o-2024-08-06", "gpt4o", 1, 0)
    llm_only = run(workspace, "usage_by_subscription", usage_source="llmlog")["llm-counted-body-kinds"]
    assert (llm_only["prompt_tokens"], llm_only["cached_tokens"], llm_only["reasoning_tokens"]) == (1990, 0, 0)


@pytest.mark.parametrize("source", ["auto", "llmlog"])
def test_hand_sql_agrees(workspace: Path, source: str) -> None:
    query = load("usage_by_subscription")
    values = parameters(START, DEMO_END, source)
    kql = LocalWorkspaceSource(workspace).run(query, values)
    assert comparable(run_hand(workspace, values), list(query.columns)) == comparable(kql, list(query.columns))
    assert len(kql) == len(CASES) + len(UNMETERED_CASES) + 2
