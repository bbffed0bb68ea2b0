"""Anthropic's Messages API shapes for the model stub's answers: the request's prompt (system, messages,
``cache_control`` breakpoints, extended thinking), the ``message`` object with its ``usage``, and the SSE
events of a streamed answer (``message_start`` ... ``message_delta`` with cumulative usage, ``message_stop``).

Prompt caching as Anthropic bills it: ``input_tokens`` excludes the cached prefix (everything up to the
last block marked ``cache_control``, when it is long enough to cache), which is reported as
``cache_creation_input_tokens`` the first time the gateway sees it and ``cache_read_input_tokens`` after.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.tooling.dev_gateway.model_stub import Answer, text_tokens

MIN_CACHEABLE_TOKENS = 1024  # Anthropic caches no prefix shorter than this (Sonnet/Opus)
MESSAGE_OVERHEAD = 3  # tokens per message around its text, like the chat accounting


@dataclass(frozen=True)
class AnthropicPrompt:
    tokens: int  # every input token
    cached_prefix: int  # tokens up to the last cache_control breakpoint (0: none, or too short to cache)
    prefix_key: str  # what identifies that prefix in the gateway's prompt cache
    text: str  # what the answer is derived from
    thinking_budget: int  # extended thinking: budget_tokens (0: off)


def _blocks(content: Any) -> list[dict[str, Any]]:
    """A system prompt or message content as content blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


def read_prompt(request: dict[str, Any]) -> AnthropicPrompt:
    """Token counts of a Messages request, in Anthropic's cache order: tools, system, messages."""
    pieces: list[tuple[int, bool, str]] = []  # (tokens, has cache_control, text) in cache order
    for tool in request.get("tools") or []:
        if isinstance(tool, dict):
            pieces.append((text_tokens(json.dumps(tool)), "cache_control" in tool, json.dumps(tool)))
    for block in _blocks(request.get("system")):
        text = str(block.get("text", ""))
        pieces.append((text_tokens(text), "cache_control" in block, text))
    for message in request.get("messages") or []:
        if not isinstance(message, dict):
            continue
        pieces.append((MESSAGE_OVERHEAD, False, str(message.get("role", ""))))
        for block in _blocks(message.get("content")):
            text = str(block.get("text", ""))
            pieces.append((text_tokens(text), "cache_control" in block, text))
    total = max(1, sum(tokens for tokens, _, _ in pieces))
    breakpoints = [i for i, (_, marked, _) in enumerate(pieces) if marked]
    prefix_key = ""
    cached_tokens = 0
    if breakpoints:
        prefix = pieces[:breakpoints[-1] + 1]
        cached_tokens = sum(tokens for tokens, _, _ in prefix)
        prefix_key = hashlib.sha256("\x00".join(text for _, _, text in prefix).encode()).hexdigest()
        if cached_tokens < MIN_CACHEABLE_TOKENS:
            cached_tokens, prefix_key = 0, ""
    thinking = request.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) and thinking.get("type") == "enabled" else 0
    return AnthropicPrompt(total, cached_tokens, prefix_key, "\n".join(text for _, _, text in pieces),
                           budget if isinstance(budget, int) and budget > 0 else 0)


def thinking_tokens(prompt: AnthropicPrompt) -> int:
    """Deterministic thinking length: grows with the prompt, never past the budget."""
    return min(prompt.thinking_budget, 16 + prompt.tokens // 10) if prompt.thinking_budget else 0


def usage_json(prompt: AnthropicPrompt, cache_hit: bool, output_tokens: int, thinking: int) -> dict[str, Any]:
    """Anthropic's usage: input_tokens excludes the cache reads and writes it lists beside it."""
    written = 0 if cache_hit else prompt.cached_prefix
    read = prompt.cached_prefix if cache_hit else 0
    usage: dict[str, Any] = {"input_tokens": prompt.tokens - prompt.cached_prefix,
                             "cache_creation_input_tokens": written, "cache_read_input_tokens": read,
                             "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0},
                             "output_tokens": output_tokens, "service_tier": "standard"}
    if thinking:
        usage["output_tokens_details"] = {"thinking_tokens": thinking}
    return usage


def message_id(correlation: str) -> str:
    return "msg_" + correlation.replace("-", "")[:24]


def _content(reply: Answer, thinking: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if thinking:
        blocks.append({"type": "thinking", "thinking": " ".join(["considering"] * thinking),
                       "signature": "dev-gateway-signature"})
    blocks.append({"type": "text", "text": reply.text})
    return blocks


def stop_reason(reply: Answer) -> str:
    return "max_tokens" if reply.finish_reason == "length" else "end_turn"


def message_body(correlation: str, model: str, reply: Answer, prompt: AnthropicPrompt,
                 cache_hit: bool) -> dict[str, Any]:
    """A non-streamed Messages response."""
    thinking = thinking_tokens(prompt)
    return {"id": message_id(correlation), "type": "message", "role": "assistant", "model": model,
            "content": _content(reply, thinking), "stop_reason": stop_reason(reply), "stop_sequence": None,
            "usage": usage_json(prompt, cache_hit, len(reply.words) + thinking, thinking)}


def sse_events(correlation: str, model: str, reply: Answer, prompt: AnthropicPrompt,
               cache_hit: bool) -> Iterator[tuple[str, int | None]]:
    """``event: ...`` / ``data: {...}`` pairs with the index of the answer token each carries (None: none):
    message_start (input side of the usage, output 1), a thinking block when enabled, the text block one
    token per delta, message_delta (the cumulative counts, input side repeated as the API does today),
    message_stop."""
    thinking = thinking_tokens(prompt)

    def event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

    start: dict[str, Any] = {"id": message_id(correlation), "type": "message", "role": "assistant", "model": model,
                             "content": [], "stop_reason": None, "stop_sequence": None,
                             "usage": usage_json(prompt, cache_hit, 1, 0)}
    yield event("message_start", {"message": start}), None
    index = 0
    if thinking:
        yield event("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}), None
        thought = {"type": "thinking_delta", "thinking": " ".join(["considering"] * thinking)}
        yield event("content_block_delta", {"index": 0, "delta": thought}), None
        signature = {"type": "signature_delta", "signature": "dev-gateway-signature"}
        yield event("content_block_delta", {"index": 0, "delta": signature}), None
        yield event("content_block_stop", {"index": 0}), None
        index = 1
    yield event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}), None
    yield event("ping", {}), None
    for position, piece in enumerate(reply.pieces()):
        yield event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}}), position
    yield event("content_block_stop", {"index": index}), None
    final = usage_json(prompt, cache_hit, len(reply.words) + thinking, thinking)
    yield event("message_delta", {"delta": {"stop_reason": stop_reason(reply), "stop_sequence": None},
                                  "usage": final}), None
    yield event("message_stop", {}), None


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
