"""The independent oracle reads every chunk layout of a logged body the same way."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import expected_hourly

START = DEMO_END - timedelta(hours=3)


HOUR = DEMO_END - timedelta(hours=2)


COUNTS = {"PromptTokens": 1200, "CompletionTokens": 300, "TotalTokens": 1500}


NULLS: dict[str, int | None] = dict.fromkeys(COUNTS)


ZEROS = dict.fromkeys(COUNTS, 0)


# subscription -> the counts on each chunk row, SequenceNumber 0, 1, ...
COUNTED_LAYOUTS: dict[str, list[Mapping[str, int | None]]] = {
    "every-row": [COUNTS, COUNTS, COUNTS],
    "first-only": [COUNTS, NULLS, NULLS],
    "last-only": [ZEROS, ZEROS, COUNTS],
    "last-only-nulls": [NULLS, NULLS, COUNTS],
    "middle-only": [NULLS, COUNTS, ZEROS],
    "single-row": [COUNTS],
}


UNCOUNTED_LAYOUTS: dict[str, list[Mapping[str, int | None]]] = {
    "no-counts-nulls": [NULLS, NULLS],
    "no-counts-zeros": [ZEROS, ZEROS, ZEROS],
}


BODY_USAGE = {"prompt_tokens": 70, "completion_tokens": 30, "total_tokens": 100}


def chunked_traffic() -> demo_data.DemoTraffic:
    """One request per layout (its own subscription), all in HOUR; the uncounted layouts twice: without
    a logged body, and with a body holding a usage object (suffix "+body")."""
    traffic = demo_data.DemoTraffic()
    layouts = {**COUNTED_LAYOUTS, **UNCOUNTED_LAYOUTS, **{f"{k}+body": v for k, v in UNCOUNTED_LAYOUTS.items()}}
    for n, (subscription, chunks) in enumerate(layouts.items()):
        correlation = f"chunked-{n:03d}"
        body = json.dumps({"model": "gpt-4o-body", "choices": [], "usage": BODY_USAGE}) \
            if subscription.endswith("+body") else None
        traffic.gateway.append({
            "TimeGenerated": HOUR + timedelta(seconds=n), "CorrelationId": correlation,
            "ApimSubscriptionId": subscription, "ProductId": "p", "OperationId": "ChatCompletions_Create",
            "Url": "https://apim/openai/deployments/dep-url/chat/completions", "ResponseCode": 200,
            "BackendResponseBody": body})
        for sequence, counts in enumerate(chunks):
            # Names on the first row only where the counts are on the last: names from any row too.
            named = sequence == 0 or subscription not in ("last-only", "last-only-nulls")
            traffic.llm.append({
                "TimeGenerated": HOUR + timedelta(seconds=n, milliseconds=200 + sequence),
                "CorrelationId": correlation, "SequenceNumber": sequence, "IsStreamCompletion": True,
                "ModelName": "gpt-4o-llm" if named else None, "DeploymentName": "dep-llm" if named else None,
                **counts})
    return traffic


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    return chunked_traffic()


def by_subscription(rows: dict[Any, dict[str, int]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (_, subscription, _, model, deployment), counters in rows.items():
        assert subscription not in out, f"{subscription} split over several rows"
        out[subscription] = {**counters, "model": model, "deployment": deployment}
    return out


def test_oracle_reads_every_layout() -> None:
    """The oracle itself, on the rows alone (no engine): the counts whichever row has them."""
    traffic = chunked_traffic()
    rows = by_subscription(expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END, "llmlog"))
    assert {layout: (rows[layout]["prompt_tokens"], rows[layout]["total_tokens"], rows[layout]["unmetered_requests"])
            for layout in COUNTED_LAYOUTS} == dict.fromkeys(COUNTED_LAYOUTS, (1200, 1500, 0))
    assert all(rows[layout]["unmetered_requests"] == 1 and rows[layout]["total_tokens"] == 0
               for layout in UNCOUNTED_LAYOUTS)
