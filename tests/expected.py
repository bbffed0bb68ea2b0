"""Independent computation of what the rollup must produce, straight from generated log rows.

Deliberately written without the production modules (no shared.core, no KQL, no regex): plain
loops, string scanning and ``json`` over the rows the workspace was filled with.
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


STREAM_PREFIXES = ("data:", "event:")  # SSE: chat streams start with data:, Responses API and Anthropic with event:
RESPONSES_ENDS = ("response.completed", "response.incomplete", "response.failed")  # a Responses API stream's last event
WHITESPACE = " \t\n\f\r"  # what the queries' \s matches
ANTHROPIC_INPUT = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")  # message_start has them
MODEL_NESTING = 8  # containers nested deeper than this before a "model" key end the search on that line


def body_usage(body: str) -> tuple[dict[str, Any] | None, str | None]:
    """(usage object, model) from a logged body: whole JSON, SSE stream, Gemini's JSON array, or a cut prefix.

    The usage is the response's own, never a ``usage`` key nested in echoed content: a JSON body's
    top-level ``usage`` (else ``usageMetadata``, Gemini); Gemini's JSON-array stream: its last element's
    ``usageMetadata``; in an SSE stream, the last ``data:`` line holding a usage object anywhere, read where
    that event keeps its own (a Responses API event, ``"type": "response.*"``: its ``response`` object's;
    Anthropic's ``message_delta``: its own, only once the stream reached ``message_stop``, completed by
    the ``message_start`` event's ``message.usage`` where the delta leaves a count out; a Gemini chunk: its
    ``usageMetadata`` if it is the final chunk, with a finishReason). A body that is not whole JSON (cut
    at the 8,192-byte cap) has none.
    """
    model = body_model(body)
    if body.startswith("["):
        document = _parse(body)
        last = document[-1] if isinstance(document, list) and document else None
        usage = last.get("usageMetadata") if isinstance(last, dict) else None
        return (usage if isinstance(usage, dict) else None), model
    if not body.startswith(STREAM_PREFIXES):
        document = _parse(body)
        if not isinstance(document, dict):
            return None, model
        usage = document.get("usage")
        usage = usage if usage is not None else document.get("usageMetadata")
        return (usage if isinstance(usage, dict) else None), model
    chosen = None
    for line in body.split("\n"):  # SSE lines; JSON text never holds a raw newline
        if line.startswith("data:") and _holds_usage_object(line):
            chosen = line
    if chosen is None:
        return None, model
    payload = chosen[len("data:"):]
    event = _parse(payload[1:] if payload.startswith(" ") else payload)
    if not isinstance(event, dict):
        return None, model
    kind = event.get("type")
    kind = kind if isinstance(kind, str) else ""
    if kind.startswith("response."):
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
    elif kind == "message_delta":
        usage = event.get("usage") if '"message_stop"' in body else None
        if isinstance(usage, dict):
            start = _message_start_usage(body)
            missing = [name for name in ANTHROPIC_INPUT if usage.get(name) is None and name in start]
            usage = {**usage, **{name: start[name] for name in missing}}
    elif event.get("usageMetadata") is not None:
        candidates = event.get("candidates")
        first = candidates[0] if isinstance(candidates, list) and candidates else None
        finish = first.get("finishReason") if isinstance(first, dict) else None
        usage = event["usageMetadata"] if finish is not None and finish != "" else None
    else:
        usage = event.get("usage")
    return (usage if isinstance(usage, dict) else None), model


def body_tier(body: str) -> str:
    """``"priority"`` when the response's own ``service_tier`` says it was served at priority, else ``""``.

    Read where :func:`body_usage` reads the usage: a JSON object body's top level; in an SSE stream, the
    last ``data:`` line holding a usage object, at its top level, or in its ``response`` object for a
    Responses API event (``"type": "response.*"``).  A ``service_tier`` anywhere else (echoed tool
    arguments, metadata, an earlier event) says nothing; Gemini's JSON array has none."""
    if body.startswith("["):
        return ""
    if not body.startswith(STREAM_PREFIXES):
        document = _parse(body)
        said = document.get("service_tier") if isinstance(document, dict) else None
        return "priority" if said == "priority" else ""
    chosen = [line for line in body.split("\n") if line.startswith("data:") and _holds_usage_object(line)]
    if not chosen:
        return ""
    payload = chosen[-1][len("data:"):]
    event = _parse(payload[1:] if payload.startswith(" ") else payload)
    if not isinstance(event, dict):
        return ""
    kind = event.get("type")
    holder = event.get("response") if isinstance(kind, str) and kind.startswith("response.") else event
    said = holder.get("service_tier") if isinstance(holder, dict) else None
    return "priority" if said == "priority" else ""


def _holds_usage_object(line: str) -> bool:
    """Whether a ``"usage"`` or ``"usageMetadata"`` key with an object value appears anywhere in the line."""
    for key in ('"usage"', '"usageMetadata"'):
        at = line.find(key)
        while at >= 0:
            rest = line[at + len(key):].lstrip(" \t")
            if rest.startswith(":") and rest[1:].lstrip(" \t").startswith("{"):
                return True
            at = line.find(key, at + 1)
    return False


def _message_start_usage(body: str) -> dict[str, Any]:
    """Anthropic: the usage in the first ``data:`` line whose text says ``"type": "message_start"``."""
    for line in body.split("\n"):
        if not line.startswith("data:"):
            continue
        at = line.find('"type"')
        while at >= 0:
            rest = line[at + len('"type"'):].lstrip(" \t")
            if rest.startswith(":") and rest[1:].lstrip(" \t").startswith('"message_start"'):
                payload = line[len("data:"):]
                event = _parse(payload[1:] if payload.startswith(" ") else payload)
                message = event.get("message") if isinstance(event, dict) else None
                usage = message.get("usage") if isinstance(message, dict) else None
                return usage if isinstance(usage, dict) else {}
            at = line.find('"type"', at + 1)
    return {}


def body_model(body: str) -> str | None:
    """The model a body names: the first line (a JSON body, or a stream's ``data:`` line) whose top-level
    object has a ``"model"`` key with a non-empty string value before anything unreadable; in a stream
    event, also inside its ``response`` or ``message`` object. Read as text, so a cut body still names it;
    keys in nested values (echoed content) and text inside strings are skipped whole."""
    for line in body.split("\n"):
        text = line[len("data:"):] if line.startswith("data:") else line
        if line.startswith("data:") and text.startswith(" "):
            text = text[1:]
        if text.startswith("{"):
            found = _model_in_object(text, 1, descend=True)
            if found:
                return found
    return None


def _model_in_object(text: str, at: int | None, descend: bool) -> str | None:
    while at is not None and at < len(text):
        if descend and (text.startswith('"response"', at) or text.startswith('"message"', at)):
            value_at = _after_colon(text, at + (10 if text.startswith('"response"', at) else 9))
            if value_at is not None and text.startswith("{", value_at):
                found = _model_in_object(text, value_at + 1, descend=False)
                if found:
                    return found
        if text.startswith('"model"', at):
            value_at = _after_colon(text, at + len('"model"'))
            if value_at is not None and text.startswith('"', value_at):
                end = value_at + 1
                while end < len(text) and text[end] not in '"\n':
                    end += 1
                if end < len(text) and text[end] == '"' and end > value_at + 1:
                    return text[value_at + 1:end]
        char = text[at]
        if char == '"':
            at = _skip_string(text, at)
        elif char in "[{":
            at = _skip_container(text, at, 1)
        elif char in "]}\n":
            return None
        else:
            at += 1
    return None


def _after_colon(text: str, at: int) -> int | None:
    while at < len(text) and text[at] in " \t":
        at += 1
    if at >= len(text) or text[at] != ":":
        return None
    at += 1
    while at < len(text) and text[at] in " \t":
        at += 1
    return at


def _skip_string(text: str, at: int) -> int | None:
    at += 1
    while at < len(text):
        if text[at] == "\n":
            return None
        if text[at] == "\\":
            if at + 1 >= len(text) or text[at + 1] == "\n":
                return None
            at += 2
            continue
        if text[at] == '"':
            return at + 1
        at += 1
    return None


def _skip_container(text: str, at: int, depth: int) -> int | None:
    if depth > MODEL_NESTING:
        return None
    at += 1
    while at < len(text):
        char = text[at]
        if char in "]}":
            return at + 1
        if char == "\n":
            return None
        next_at = (_skip_string(text, at) if char == '"' else
                   _skip_container(text, at, depth + 1) if char in "[{" else at + 1)
        if next_at is None:
            return None
        at = next_at
    return None


def url_model(url: str) -> str | None:
    """A Gemini / Vertex AI URL's model: ``/models/{model}:generateContent``."""
    at = url.find("/models/")
    while at >= 0:
        start = end = at + len("/models/")
        while end < len(url) and url[end] not in "/:?":
            end += 1
        if end > start and end < len(url) and url[end] == ":":
            return url[start:end]
        at = url.find("/models/", at + 1)
    return None


def url_deployment(url: str) -> str | None:
    at = url.find("/deployments/")
    if at < 0:
        return None
    start = end = at + len("/deployments/")
    while end < len(url) and url[end] not in "/?":
        end += 1
    return url[start:end] or None


LLM_OPERATIONS = ("chatcompletions_create", "completions_create", "embeddings_create", "responses_create",
                  "response_create", "createresponse", "responses_post", "messages_create", "createmessage",
                  "generatecontent", "streamgeneratecontent")


def is_llm_call(operation: str, url: str) -> bool:
    """Recognised by operation or URL path (case-insensitive): Azure OpenAI, Anthropic Messages, Gemini."""
    url = url.lower()
    return (operation.lower() in LLM_OPERATIONS or "/openai/" in url or ":generatecontent" in url
            or ":streamgeneratecontent" in url or "/publishers/anthropic/" in url
            or url.endswith("/messages") or "/messages?" in url)


def stream_complete(body: str) -> bool:
    """A stream that reached its end: [DONE] (chat), message_stop (Anthropic), a Responses API stream whose
    last line is its whole terminal event, a Gemini stream whose last line is a chunk with a finishReason."""
    if "[DONE]" in body or '"message_stop"' in body:
        return True
    ended = body.rstrip(WHITESPACE)
    last_line = ended.split("\n")[-1]
    if ended.endswith("}") and '"finishReason"' in last_line[:-1]:
        return True
    lines = [line for line in body.split("\n") if line.strip()]
    if not lines or not lines[-1].startswith("data:"):
        return False
    event = _parse(lines[-1][len("data:"):])
    return isinstance(event, dict) and event.get("type") in RESPONSES_ENDS


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def whole_count(value: Any) -> TypeGuard[int | float]:
    """A plausible token count: a whole number (10 or 10.0, not True or "10") in [0, 1e9)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and 0 <= value < 10**9


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _path(document: Any, *keys: str) -> Any:
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document


KINDS: dict[str, tuple[tuple[str, ...], ...]] = {  # counter -> the usage paths it is read from, first present wins
    "cached_tokens": (("prompt_tokens_details", "cached_tokens"), ("input_tokens_details", "cached_tokens"),
                      ("input_token_details", "cached_tokens"), ("cache_read_input_tokens",),
                      ("cachedContentTokenCount",)),
    "cache_write_tokens": (("cache_creation_input_tokens",),),
    "reasoning_tokens": (("completion_tokens_details", "reasoning_tokens"),
                         ("output_tokens_details", "reasoning_tokens"), ("output_tokens_details", "thinking_tokens"),
                         ("thoughtsTokenCount",)),
    "audio_prompt_tokens": (("prompt_tokens_details", "audio_tokens"), ("input_tokens_details", "audio_tokens"),
                            ("input_token_details", "audio_tokens")),
    "cached_audio_tokens": (("prompt_tokens_details", "cached_tokens_details", "audio_tokens"),
                            ("input_tokens_details", "cached_tokens_details", "audio_tokens"),
                            ("input_token_details", "cached_tokens_details", "audio_tokens")),
    "audio_completion_tokens": (("completion_tokens_details", "audio_tokens"),
                                ("output_tokens_details", "audio_tokens"), ("output_token_details", "audio_tokens")),
}


def usage_counts(usage: dict[str, Any]) -> dict[str, int] | None:
    """Every provider's usage as Counters nests counts (None: not valid usage).

    prompt = prompt_tokens | input_tokens + Anthropic's cache reads and writes | Gemini's promptTokenCount +
    toolUsePromptTokenCount; completion = completion_tokens | output_tokens | Gemini's candidates + thoughts
    (missing: 0); total = total_tokens | totalTokenCount | prompt + completion; each other kind from the
    first of its names present, 0 when absent or not a plausible count.
    """
    prompt = _number(usage.get("prompt_tokens"))
    if prompt is None:
        given = _number(usage.get("input_tokens"))
        if given is not None:
            prompt = (given + (_number(usage.get("cache_read_input_tokens")) or 0.0)
                      + (_number(usage.get("cache_creation_input_tokens")) or 0.0))
    if prompt is None:
        given = _number(usage.get("promptTokenCount"))
        if given is not None:
            prompt = given + (_number(usage.get("toolUsePromptTokenCount")) or 0.0)
    completion = _number(_first(usage.get("completion_tokens"), usage.get("output_tokens")))
    if completion is None and usage.get("promptTokenCount") is not None:
        completion = ((_number(usage.get("candidatesTokenCount")) or 0.0)
                      + (_number(usage.get("thoughtsTokenCount")) or 0.0))
    completion = 0.0 if completion is None else completion
    if prompt is None:
        return None
    total = _number(_first(usage.get("total_tokens"), usage.get("totalTokenCount")))
    total = prompt + completion if total is None else total
    if not (whole_count(prompt) and whole_count(completion) and whole_count(total)):
        return None
    counts = {"prompt_tokens": int(prompt), "completion_tokens": int(completion), "total_tokens": int(total)}
    for kind, paths in KINDS.items():
        value = _number(_first(*(_path(usage, *path) for path in paths)))
        counts[kind] = int(value) if whole_count(value) else 0  # implausible: left out
    return counts


def valid_usage(usage: dict[str, Any]) -> bool:
    """A whole, plausible prompt count; completion/total, when given, whole and plausible too."""
    return usage_counts(usage) is not None


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


def apim_service(resource_id: str | None) -> str:
    """The APIM service a log row's ``_ResourceId`` names (lower-cased), ``""`` when it names none."""
    marker = "/providers/microsoft.apimanagement/service/"
    lowered = (resource_id or "").lower()
    at = lowered.find(marker)
    if at < 0:
        return ""
    return lowered[at + len(marker):].split("/", 1)[0]


def expected_hourly(gateway: list[dict[str, Any]], llm: list[dict[str, Any]], start: datetime,
                    end: datetime, source: str = "auto", probe_subscription: str = "",
                    probe_header: str = "x-chargeback-probe", by_service: bool = False,
                    by_tier: bool = False) -> dict[Any, dict[str, int]]:
    """Per hour x subscription x product x model x deployment, and x APIM service (the key's next
    element) with ``by_service``; without, every service's rows are summed (the merged rollup).  With
    ``by_tier`` the service tier (:func:`body_tier`) is the key's last element; without, tiers are summed."""
    known = llm_requests(llm) if source != "gatewaybody" else {}
    out: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for g in gateway:
        if not (start <= g["TimeGenerated"] < end):
            continue
        info = known.get(g["CorrelationId"])
        named = info is not None and info["ModelName"] is not None  # the LLM log knows the request
        if not named and not is_llm_call(g.get("OperationId") or "", g.get("Url") or ""):
            continue  # not LLM traffic
        tokens = info if info is not None and info["counted"] else None  # ... and has its counts
        body = (g.get("BackendResponseBody") or "") if source != "llmlog" else ""
        usage, model_in_body = body_usage(body) if body else (None, None)
        counts = usage_counts(usage) if usage is not None else None
        hour = g["TimeGenerated"].replace(minute=0, second=0, microsecond=0)
        url = g.get("Url") or ""
        # The model the logs name, counted or not: the LLM log's, the body's, the URL's (Gemini).
        model = info["ModelName"] if named and info is not None else model_in_body or url_model(url) or "unknown"
        deployment = (info or {}).get("DeploymentName") or url_deployment(url) or "unknown"
        headers = g.get("RequestHeaders") or {}
        probe = (probe_subscription and g["ApimSubscriptionId"] == probe_subscription) or any(
            name.lower() == probe_header.lower() and value == "1" for name, value in headers.items())
        subscription = "synthetic-probe" if probe else (g["ApimSubscriptionId"] or "unattributed")
        key: tuple[Any, ...] = (hour, subscription, g["ProductId"] or "", model, deployment)
        if by_service:
            key = (*key, apim_service(g.get("_ResourceId")))
        if by_tier:
            key = (*key, body_tier(body) if body else "")
        c = out[key]
        c["requests"] += 1
        c["error_requests"] += g["ResponseCode"] >= 400
        sse = body.startswith(STREAM_PREFIXES)
        streamed = info["IsStreamCompletion"] if named and info is not None else sse or body.startswith("[")
        c["streamed_requests"] += streamed
        if counts is not None:  # kinds the LLM log has no column for: from the body, whichever counts
            for kind in KINDS:
                c[kind] += counts[kind]
        if tokens:
            c["prompt_tokens"] += tokens["PromptTokens"] or 0
            c["completion_tokens"] += tokens["CompletionTokens"] or 0
            c["total_tokens"] += tokens["TotalTokens"] or 0
        elif counts is not None:
            for kind in ("prompt_tokens", "completion_tokens", "total_tokens"):
                c[kind] += counts[kind]
        elif 200 <= g["ResponseCode"] < 300:
            c["unmetered_requests"] += 1
            c["unmetered_streamed"] += streamed
            complete = stream_complete(body) if sse else body.rstrip(WHITESPACE).endswith(("}", "]"))
            c["unmetered_truncated"] += bool(body) and not complete
    return dict(out)


def rollup_to(hourly: dict[Any, dict[str, int]], period: str) -> dict[Any, dict[str, int]]:
    out: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for (hour, *rest), counters in hourly.items():
        start = hour.replace(hour=0) if period == "day" else hour.replace(day=1, hour=0)
        for name, value in counters.items():
            out[(start, *rest)][name] += value
    return dict(out)
