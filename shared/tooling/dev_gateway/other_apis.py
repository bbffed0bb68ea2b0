"""The non-OpenAI APIs APIM's AI gateway fronts, as the dev gateway answers them: Anthropic Messages and
Google's Gemini (Google AI and Vertex AI paths).

APIM imports such models as passthrough language model APIs with wildcard operations; the operation id
it logs is the wildcard's, so the dev gateway logs :data:`PASSTHROUGH_OPERATION`, and the rollup has to
recognise these calls by URL path, as it must in Azure.  Their subscription key may also come in the
header the provider's SDK sends its key in (``x-api-key``, ``x-goog-api-key``: an APIM API can be set to
read the key from any header).  They get no LLM-log rows (see :mod:`.log_rows`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from shared.tooling.dev_gateway import anthropic_responses, gemini_responses
from shared.tooling.dev_gateway.config import Faults, KeyConfig
from shared.tooling.dev_gateway.log_rows import Exchange
from shared.tooling.dev_gateway.model_stub import answer
from shared.tooling.dev_gateway.ports import ApiHandler

PASSTHROUGH_OPERATION = "passthrough-post"
ANTHROPIC_BACKEND = "https://local-foundry.services.ai.azure.com"  # Foundry serves /anthropic/v1/messages
GEMINI_BACKEND = "https://generativelanguage.googleapis.com"
VERTEX_BACKEND = "https://local-aiplatform.googleapis.com"
FAULT_STATUS = {500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def _request(body: bytes) -> dict[str, Any] | str:
    """The JSON request object, or why it is not one."""
    try:
        request = json.loads(body or b"{}")
    except ValueError as exc:
        return f"could not parse the JSON body: {exc}"
    return request if isinstance(request, dict) else "the body must be a JSON object"


def _opened(handler: ApiHandler, ex: Exchange, body: bytes, key_header: str,
            invalid: Callable[[str], dict[str, Any]]) -> tuple[str, KeyConfig, dict[str, Any]] | None:
    """The caller's key, its account and the JSON request; None once APIM's 401 or the provider's 400
    (``invalid`` of the reason: its error body) is sent."""
    found = handler.check_key(ex, key_header)
    if found is None:
        return None
    started = time.perf_counter()
    request = _request(body)
    if isinstance(request, str):
        _backend_failed(handler, ex, 400, invalid(request), started)
        return None
    return found[0], found[1], request


def _backend_failed(handler: ApiHandler, ex: Exchange, status: int, body: Any, started: float) -> None:
    ex.backend_status = status
    ex.backend_ms = (time.perf_counter() - started) * 1000
    ex.error_reason, ex.error_source, ex.error_message = "BackendError", "backend", json.dumps(body)
    handler.respond(ex, status, body)


def anthropic_messages(handler: ApiHandler, ex: Exchange, body: bytes) -> None:
    gw = handler.gateway
    ex.operation, ex.api_id, ex.backend = PASSTHROUGH_OPERATION, "anthropic-messages", ANTHROPIC_BACKEND
    opened = _opened(handler, ex, body, "x-api-key",
                     lambda reason: anthropic_responses.error_body("invalid_request_error", reason))
    if opened is None:
        return
    key, account, request = opened
    prompt = anthropic_responses.read_prompt(request)
    if not handler.within_token_limit(ex, key, account, prompt.tokens):
        return
    started = time.perf_counter()
    model = str(request.get("model") or "")
    faults = gw.faults if gw.faults.applies(model) else Faults()
    gw.pause(faults.delay_seconds)
    max_tokens = request.get("max_tokens")
    if faults.status is not None:
        error = anthropic_responses.error_body("api_error", "Fault injected by the dev gateway.")
        _backend_failed(handler, ex, faults.status, error, started)
    elif model not in gw.config.anthropic_models:
        _backend_failed(handler, ex, 404, anthropic_responses.error_body("not_found_error", f"model: {model}"), started)
    elif not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        error = anthropic_responses.error_body("invalid_request_error", "max_tokens: Field required")
        _backend_failed(handler, ex, 400, error, started)
    else:
        thinking = anthropic_responses.thinking_tokens(prompt)
        reply = answer(prompt.text, prompt.tokens, max(0, max_tokens - thinking))
        cache_hit = bool(prompt.prefix_key) and gw.prompt_cache.hit(prompt.prefix_key)
        if request.get("stream"):
            events = anthropic_responses.sse_events(ex.correlation, model, reply, prompt, cache_hit)
            handler.stream(ex, events, "text/event-stream; charset=utf-8", faults, started)
        else:
            ex.backend_status = 200
            ex.backend_ms = (time.perf_counter() - started) * 1000
            handler.respond(ex, 200, anthropic_responses.message_body(ex.correlation, model, reply, prompt, cache_hit))
        gw.limiter.consume(key, prompt.tokens + len(reply.words) + thinking)


def gemini_generate(handler: ApiHandler, ex: Exchange, body: bytes, model: str, streamed: bool, sse: bool,
                    vertex: bool) -> None:
    gw = handler.gateway
    ex.operation, ex.api_id = PASSTHROUGH_OPERATION, "gemini"
    ex.backend = VERTEX_BACKEND if vertex else GEMINI_BACKEND
    opened = _opened(handler, ex, body, "x-goog-api-key",
                     lambda reason: gemini_responses.error_body(400, "INVALID_ARGUMENT", reason))
    if opened is None:
        return
    key, account, request = opened
    prompt = gemini_responses.read_prompt(model, request)
    if not handler.within_token_limit(ex, key, account, prompt.tokens):
        return
    started = time.perf_counter()
    faults = gw.faults if gw.faults.applies(model) else Faults()
    gw.pause(faults.delay_seconds)
    if faults.status is not None:
        error = gemini_responses.error_body(faults.status, FAULT_STATUS.get(faults.status, "UNKNOWN"),
                                            "Fault injected by the dev gateway.")
        _backend_failed(handler, ex, faults.status, error, started)
        return
    if model not in gw.config.gemini_models:
        message = f"models/{model} is not found for API version v1beta, or is not supported for generateContent."
        _backend_failed(handler, ex, 404, gemini_responses.error_body(404, "NOT_FOUND", message), started)
        return
    config = request.get("generationConfig")
    limit = config.get("maxOutputTokens") if isinstance(config, dict) else None
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    reply = answer(prompt.text, prompt.tokens, limit)
    if not streamed:
        ex.backend_status = 200
        ex.backend_ms = (time.perf_counter() - started) * 1000
        handler.respond(ex, 200, gemini_responses.response_body(ex.correlation, model, reply, prompt), indent=2)
    elif sse:
        events = gemini_responses.sse_events(ex.correlation, model, reply, prompt)
        handler.stream(ex, events, "text/event-stream", faults, started)
    else:
        events = gemini_responses.array_events(ex.correlation, model, reply, prompt)
        handler.stream(ex, events, "application/json; charset=UTF-8", faults, started)
    gw.limiter.consume(key, prompt.tokens + len(reply.words) + gemini_responses.thoughts_tokens(prompt))
