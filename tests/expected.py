"""Independent computation of what the rollup must produce, straight from generated log rows.

Deliberately written without the production modules (no shared.core, no KQL, no regex): plain
loops and ``json`` over the rows the workspace was filled with.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any, TypeGuard

FIELDS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
          "streamed_requests", "error_requests", "unmetered_requests", "unmetered_streamed",
          "unmetered_truncated", "reasoning_tokens", "audio_prompt_tokens", "cached_audio_tokens",
          "audio_completion_tokens", "cache_write_tokens")
Key = tuple[datetime, str, str, str, str]


def body_usage(body: str) -> tuple[dict[str, Any] | None, str | None]:
    """(usage object, model) from a logged body: whole JSON, SSE stream, or a truncated prefix.

    The usage is the response's own, never a ``usage`` key nested in echoed content: a JSON body's
    top-level ``usage``; in a stream, the last event whose own usage is an object (top level, or for
    a Responses API event, ``"type": "response.*"``, its ``response`` object's). A body that is not
    whole JSON (cut at the 8,192-byte cap) has none.
    """
    decoder = json.JSONDecoder()
    model = None
    at = body.find('"model"')
    if at >= 0:
        try:
            model = decoder.raw_decode(body, body.index(":", at) + 1 + _spaces(body, body.index(":", at) + 1))[0]
        except (ValueError, IndexError):
            model = None
    if body.startswith(STREAM_PREFIXES):
        usage = None
        for line in body.split("\n"):  # SSE lines; JSON text never holds a raw newline
            if not line.startswith("data:"):
                continue
            payload = line[len("data:"):]
            payload = payload[1:] if payload.startswith(" ") else payload
            if payload.startswith("{"):
                usage = _own_usage(_parse(payload)) or usage
    else:
        usage = _own_usage(_parse(body))
    return usage, model if isinstance(model, str) else None


STREAM_PREFIXES = ("data:", "event:")  # chat streams start with data:, Responses API streams with event:
RESPONSES_ENDS = ("response.completed", "response.incomplete", "response.failed")  # a Responses API stream's last event


def stream_complete(body: str) -> bool:
    """A chat stream that reached [DONE], or a Responses API stream whose last line is its whole terminal event."""
    lines = [line for line in body.split("\n") if line.strip()]
    if "[DONE]" in body or not lines or not lines[-1].startswith("data:"):
        return "[DONE]" in body
    event = _parse(lines[-1][len("data:"):])
    return isinstance(event, dict) and event.get("type") in RESPONSES_ENDS


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _own_usage(document: Any) -> dict[str, Any] | None:
    """The usage object a response (or stream event) carries for itself, if any."""
    if not isinstance(document, dict):
        return None
    kind = document.get("type")
    if isinstance(kind, str) and kind.startswith("response."):  # Responses API event: usage is the response's
        response = document.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
    else:
        usage = document.get("usage")
    return usage if isinstance(usage, dict) else None


def whole_count(value: Any) -> TypeGuard[int | float]:
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


def llm_requests(llm: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per CorrelationId, what the LLM log says about the request, whichever of its chunk rows
    (SequenceNumber 0, 1, ...) carry the counts: each count the largest on any row, each name the
    largest non-empty one, ``counted`` when some row has a count above 0 (none: no counts at all)."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in llm:
        rows[row["CorrelationId"]].append(row)
    out = {}
    for correlation, chunk_rows in rows.items():
        info: dict[str, Any] = {}
        for column in ("PromptTokens", "CompletionTokens", "TotalTokens"):
            counts = [row[column] for row in chunk_rows if row.get(column) is not None]
            info[column] = max(counts) if counts else None
        for column in ("ModelName", "DeploymentName"):
            names = [row[column] for row in chunk_rows if row.get(column)]
            info[column] = max(names) if names else None
        info["counted"] = any((info[c] or 0) > 0 for c in ("PromptTokens", "CompletionTokens", "TotalTokens"))
        info["IsStreamCompletion"] = any(row.get("IsStreamCompletion") for row in chunk_rows)
        out[correlation] = info
    return out


def expected_hourly(gateway: list[dict[str, Any]], llm: list[dict[str, Any]], start: datetime,
                    end: datetime, source: str = "auto", probe_subscription: str = "",
                    probe_header: str = "x-chargeback-probe") -> dict[Key, dict[str, int]]:
    known = llm_requests(llm) if source != "gatewaybody" else {}
    out: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for g in gateway:
        if not (start <= g["TimeGenerated"] < end):
            continue
        info = known.get(g["CorrelationId"])
        named = info is not None and info["ModelName"] is not None  # the LLM log knows the request
        tokens = info if info is not None and info["counted"] else None  # ... and has its counts
        body = (g.get("BackendResponseBody") or "") if source != "llmlog" else ""
        usage, body_model = body_usage(body) if body else (None, None)
        if usage is not None and not valid_usage(usage):
            usage = None
        hour = g["TimeGenerated"].replace(minute=0, second=0, microsecond=0)
        url_deployment = g["Url"].split("/deployments/")[1].split("/")[0]
        model = info["ModelName"] if named and info is not None else body_model or "unknown"
        deployment = (info or {}).get("DeploymentName") or url_deployment
        headers = g.get("RequestHeaders") or {}
        probe = (probe_subscription and g["ApimSubscriptionId"] == probe_subscription) or any(
            name.lower() == probe_header.lower() and value == "1" for name, value in headers.items())
        subscription = "synthetic-probe" if probe else (g["ApimSubscriptionId"] or "unattributed")
        key = (hour, subscription, g["ProductId"] or "", model, deployment)
        c = out[key]
        c["requests"] += 1
        c["error_requests"] += g["ResponseCode"] >= 400
        streamed = info["IsStreamCompletion"] if named and info is not None else body.startswith(STREAM_PREFIXES)
        c["streamed_requests"] += streamed
        if usage is not None:
            details = usage.get("prompt_tokens_details", usage.get("input_tokens_details")) or {}
            cached = details.get("cached_tokens", 0)
            c["cached_tokens"] += int(cached) if whole_count(cached) else 0  # implausible: left out
        if tokens:
            c["prompt_tokens"] += tokens["PromptTokens"] or 0
            c["completion_tokens"] += tokens["CompletionTokens"] or 0
            c["total_tokens"] += tokens["TotalTokens"] or 0
        elif usage is not None:  # chat/completions names, else the Responses API's
            c["prompt_tokens"] += usage.get("prompt_tokens", usage.get("input_tokens", 0))
            c["completion_tokens"] += usage.get("completion_tokens", usage.get("output_tokens", 0))
            c["total_tokens"] += usage.get("total_tokens", 0)
        elif 200 <= g["ResponseCode"] < 300:
            c["unmetered_requests"] += 1
            c["unmetered_streamed"] += streamed
            complete = stream_complete(body) if body.startswith(STREAM_PREFIXES) else body.rstrip().endswith("}")
            c["unmetered_truncated"] += bool(body) and not complete
    return dict(out)


def rollup_to(hourly: dict[Key, dict[str, int]], period: str) -> dict[Key, dict[str, int]]:
    out: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for (hour, *rest), counters in hourly.items():
        start = hour.replace(hour=0) if period == "day" else hour.replace(day=1, hour=0)
        for name, value in counters.items():
            out[(start, *rest)][name] += value  # type: ignore[index]
    return dict(out)
