"""Independent computation of what the rollup must produce, straight from generated log rows.

Deliberately written without the production modules (no shared.core, no KQL, no regex): plain
loops and ``json`` over the rows the workspace was filled with.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

FIELDS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
          "streamed_requests", "error_requests", "unmetered_requests", "unmetered_streamed",
          "unmetered_truncated")
Key = tuple[datetime, str, str, str, str]


def body_usage(body: str) -> tuple[dict[str, Any] | None, str | None]:
    """(usage object, model) from a logged body: whole JSON, SSE stream, or a truncated prefix."""
    decoder = json.JSONDecoder()
    model = None
    usage = None
    at = body.find('"model"')
    if at >= 0:
        try:
            model = decoder.raw_decode(body, body.index(":", at) + 1 + _spaces(body, body.index(":", at) + 1))[0]
        except (ValueError, IndexError):
            model = None
    start = 0
    while (at := body.find('"usage"', start)) >= 0:
        start = at + 1
        colon = body.find(":", at)
        value_at = colon + 1 + _spaces(body, colon + 1)
        try:
            value = decoder.raw_decode(body, value_at)[0]
        except ValueError:
            continue
        if isinstance(value, dict):
            usage = value
    return usage, model if isinstance(model, str) else None


def whole_count(value: Any) -> bool:
    """A plausible token count: a whole number (10 or 10.0, not True or "10") in [0, 1e9)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and 0 <= value < 10**9


def valid_usage(usage: dict[str, Any]) -> bool:
    """A whole, plausible prompt count; completion/total, when given, whole and plausible too."""
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    if not whole_count(prompt):
        return False
    completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
    total = usage.get("total_tokens", prompt + (completion if isinstance(completion, int | float) else 0))
    return whole_count(completion) and whole_count(total)


def _spaces(text: str, at: int) -> int:
    n = 0
    while at + n < len(text) and text[at + n] in " \t\r\n":
        n += 1
    return n


def expected_hourly(gateway: list[dict[str, Any]], llm: list[dict[str, Any]], start: datetime,
                    end: datetime, source: str = "auto", probe_subscription: str = "",
                    probe_header: str = "x-chargeback-probe") -> dict[Key, dict[str, int]]:
    first_chunk = {row["CorrelationId"]: row for row in llm if row["SequenceNumber"] == 0}
    if source == "gatewaybody":
        first_chunk = {}
    out: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for g in gateway:
        if not (start <= g["TimeGenerated"] < end):
            continue
        tokens = first_chunk.get(g["CorrelationId"])
        body = (g.get("BackendResponseBody") or "") if source != "llmlog" else ""
        usage, body_model = body_usage(body) if body else (None, None)
        if usage is not None and not valid_usage(usage):
            usage = None
        hour = g["TimeGenerated"].replace(minute=0, second=0, microsecond=0)
        url_deployment = g["Url"].split("/deployments/")[1].split("/")[0]
        if tokens:
            model, deployment = tokens["ModelName"], tokens["DeploymentName"]
        else:
            model, deployment = body_model or "unknown", url_deployment
        headers = g.get("RequestHeaders") or {}
        probe = (probe_subscription and g["ApimSubscriptionId"] == probe_subscription) or any(
            name.lower() == probe_header.lower() and value == "1" for name, value in headers.items())
        subscription = "synthetic-probe" if probe else (g["ApimSubscriptionId"] or "unattributed")
        key = (hour, subscription, g["ProductId"] or "", model, deployment)
        c = out[key]
        c["requests"] += 1
        c["error_requests"] += g["ResponseCode"] >= 400
        streamed = bool(tokens["IsStreamCompletion"]) if tokens else body.startswith("data:")
        c["streamed_requests"] += streamed
        if usage is not None:
            details = usage.get("prompt_tokens_details", usage.get("input_tokens_details")) or {}
            cached = details.get("cached_tokens", 0)
            c["cached_tokens"] += cached if whole_count(cached) else 0  # implausible: left out
        if tokens:
            c["prompt_tokens"] += tokens["PromptTokens"]
            c["completion_tokens"] += tokens["CompletionTokens"]
            c["total_tokens"] += tokens["TotalTokens"]
        elif usage is not None:  # chat/completions names, else the Responses API's
            c["prompt_tokens"] += usage.get("prompt_tokens", usage.get("input_tokens", 0))
            c["completion_tokens"] += usage.get("completion_tokens", usage.get("output_tokens", 0))
            c["total_tokens"] += usage.get("total_tokens", 0)
        elif 200 <= g["ResponseCode"] < 300:
            c["unmetered_requests"] += 1
            c["unmetered_streamed"] += streamed
            complete = ("[DONE]" in body) if streamed else body.rstrip().endswith("}")
            c["unmetered_truncated"] += bool(body) and not complete
    return dict(out)


def rollup_to(hourly: dict[Key, dict[str, int]], period: str) -> dict[Key, dict[str, int]]:
    out: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for (hour, *rest), counters in hourly.items():
        start = hour.replace(hour=0) if period == "day" else hour.replace(day=1, hour=0)
        for name, value in counters.items():
            out[(start, *rest)][name] += value  # type: ignore[index]
    return dict(out)
