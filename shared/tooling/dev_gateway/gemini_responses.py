"""Google's Gemini API shapes (Google AI ``generativelanguage`` and Vertex AI answer alike) for the model
stub's answers: the request's prompt (``contents``, ``systemInstruction``, ``cachedContent``, thinking
settings), the ``GenerateContentResponse`` with its ``usageMetadata``, and a streamed answer, as SSE
(``alt=sse``) or as the JSON array ``streamGenerateContent`` answers without it.

The counts nest as Gemini reports them: ``promptTokenCount`` includes ``cachedContentTokenCount``;
``candidatesTokenCount`` excludes ``thoughtsTokenCount`` (both billed as output); ``totalTokenCount`` is
their sum. Every streamed chunk carries the running ``usageMetadata``; the last one, with a
``finishReason``, the final counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.tooling.dev_gateway.model_stub import Answer, text_tokens

WORDS_PER_CHUNK = 8  # Gemini streams a few tokens per chunk, not one
DEFAULT_THINKING_BUDGET = 256  # what the stub thinks when a 2.5 model is given no budget (dynamic thinking)


@dataclass(frozen=True)
class GeminiPrompt:
    tokens: int  # promptTokenCount: every input token, the cached content included
    cached: int  # cachedContentTokenCount
    text: str  # what the answer is derived from
    thinking_budget: int  # 0: no thinking


def _parts_text(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    return "".join(str(part.get("text", "")) for part in parts or [] if isinstance(part, dict))


def read_prompt(model: str, request: dict[str, Any]) -> GeminiPrompt:
    texts = [_parts_text(request.get("systemInstruction"))]
    texts += [_parts_text(content) for content in request.get("contents") or []]
    text = "\n".join(t for t in texts if t)
    tokens = max(1, text_tokens(text))
    cached_name = request.get("cachedContent")
    cached = 0
    if isinstance(cached_name, str) and cached_name:  # an explicit cache: its size, fixed per cache name
        cached = 1024 + hashlib.sha256(cached_name.encode()).digest()[0] * 8
    config = request.get("generationConfig")
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    budget = thinking.get("thinkingBudget") if isinstance(thinking, dict) else None
    if not isinstance(budget, int) or budget < 0:  # unset or dynamic (-1): 2.5 models think, older ones do not
        budget = DEFAULT_THINKING_BUDGET if "2.5" in model else 0
    return GeminiPrompt(tokens + cached, cached, text, budget)


def thoughts_tokens(prompt: GeminiPrompt) -> int:
    return min(prompt.thinking_budget, 16 + prompt.tokens // 10) if prompt.thinking_budget else 0


def usage_metadata(prompt: GeminiPrompt, candidates: int | None, thoughts: int) -> dict[str, Any]:
    """usageMetadata in Gemini's key order; ``candidates`` None: a chunk before any answer token."""
    usage: dict[str, Any] = {"promptTokenCount": prompt.tokens}
    if candidates is not None:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = prompt.tokens + (candidates or 0) + thoughts
    if prompt.cached:
        usage["cachedContentTokenCount"] = prompt.cached
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt.tokens}]
    if prompt.cached:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt.cached}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def response_id(correlation: str) -> str:
    return correlation.replace("-", "")[:22]


def finish_reason(reply: Answer) -> str:
    return "MAX_TOKENS" if reply.finish_reason == "length" else "STOP"


def _chunk(correlation: str, model: str, text: str, finish: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
            "responseId": response_id(correlation)}


def response_body(correlation: str, model: str, reply: Answer, prompt: GeminiPrompt) -> dict[str, Any]:
    """A non-streamed generateContent response."""
    thoughts = thoughts_tokens(prompt)
    return _chunk(correlation, model, reply.text, finish_reason(reply),
                  usage_metadata(prompt, len(reply.words), thoughts))


def chunks(correlation: str, model: str, reply: Answer, prompt: GeminiPrompt) -> Iterator[tuple[dict[str, Any], int]]:
    """(chunk, index of its first answer token): a few words each, running counts, the last with finishReason."""
    thoughts = thoughts_tokens(prompt)
    pieces = reply.pieces() or [""]
    for start in range(0, len(pieces), WORDS_PER_CHUNK):
        done = start + WORDS_PER_CHUNK >= len(pieces)
        sent = min(len(reply.words), start + WORDS_PER_CHUNK)
        yield _chunk(correlation, model, "".join(pieces[start:start + WORDS_PER_CHUNK]),
                     finish_reason(reply) if done else None, usage_metadata(prompt, sent, thoughts)), start


def sse_events(correlation: str, model: str, reply: Answer, prompt: GeminiPrompt) -> Iterator[tuple[str, int | None]]:
    """``alt=sse``: ``data: {...}`` events, CRLF-separated as Google sends them."""
    for chunk, first in chunks(correlation, model, reply, prompt):
        yield "data: " + json.dumps(chunk, separators=(",", ":")) + "\r\n\r\n", first


def array_events(correlation: str, model: str, reply: Answer, prompt: GeminiPrompt) -> Iterator[tuple[str, int | None]]:
    """Without ``alt=sse``: one JSON array, pretty-printed, its elements written as they come."""
    for n, (chunk, first) in enumerate(chunks(correlation, model, reply, prompt)):
        yield ("[" if n == 0 else ",\r\n") + json.dumps(chunk, indent=2), first
    yield "]", None


def error_body(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}
