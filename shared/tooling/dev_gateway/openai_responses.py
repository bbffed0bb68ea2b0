"""Azure OpenAI's response shapes for the model stub's answers: chat and text completions,
embeddings (floats or base64), the ``usage`` object, and the SSE events of a streamed answer
(with the optional final usage chunk of ``stream_options.include_usage``).

A chat request naming a ``service_tier`` gets the tier that served it in the response (the body and
every chunk, as Azure answers): ``"priority"`` when it asked for priority, ``"default"`` otherwise; a
request naming none gets no ``service_tier`` key, as before."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Iterator
from typing import Any

from shared.tooling.dev_gateway.model_stub import Answer, embedding, embedding_inputs

CHAT = "chat/completions"
SYSTEM_FINGERPRINT = "fp_dev_gateway"


def usage_json(prompt: int, completion: int | None) -> dict[str, Any]:
    if completion is None:  # embeddings
        return {"prompt_tokens": prompt, "total_tokens": prompt}
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def answered_tier(kind: str, request: dict[str, Any]) -> str | None:
    """The ``service_tier`` a chat response reports for ``request`` (``None``: no key)."""
    asked = request.get("service_tier")
    if kind != CHAT or not isinstance(asked, str):
        return None
    return "priority" if asked == "priority" else "default"


def _response_id(kind: str, correlation: str) -> str:
    return f"{'chatcmpl' if kind == CHAT else 'cmpl'}-{correlation.replace('-', '')[:24]}"


def completion_body(kind: str, correlation: str, model: str, reply: Answer, prompt_tokens: int,
                    service_tier: str | None = None) -> dict[str, Any]:
    """A non-streamed chat completion or text completion."""
    created = int(time.time())
    if kind == CHAT:
        return {"id": _response_id(kind, correlation), "object": "chat.completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text, "refusal": None},
                             "logprobs": None, "finish_reason": reply.finish_reason}],
                "usage": usage_json(prompt_tokens, len(reply.words)), "system_fingerprint": SYSTEM_FINGERPRINT,
                **({"service_tier": service_tier} if service_tier is not None else {})}
    return {"id": _response_id(kind, correlation), "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": reply.text, "index": 0, "logprobs": None, "finish_reason": reply.finish_reason}],
            "usage": usage_json(prompt_tokens, len(reply.words))}


def embeddings_body(request: dict[str, Any], model: str, prompt_tokens: int, dimensions: int) -> dict[str, Any]:
    """One embedding per input item; ``dimensions`` unless the request asks for another size."""
    size = int(request.get("dimensions") or dimensions)
    data = []
    for index, item in enumerate(embedding_inputs(request)):
        vector = embedding(json.dumps(item), size)
        value: Any = vector
        if request.get("encoding_format") == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": value})
    return {"object": "list", "data": data, "model": model, "usage": usage_json(prompt_tokens, None)}


def sse_events(kind: str, correlation: str, model: str, reply: Answer, prompt_tokens: int,
               include_usage: bool, service_tier: str | None = None) -> Iterator[tuple[str, int | None]]:
    """``data: {...}`` events with the index of the token each carries (None: no token): (chat: a role
    chunk,) one chunk per token, a finish chunk, the usage chunk when asked for, ``data: [DONE]``."""
    created = int(time.time())
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    chat = kind == CHAT
    base: dict[str, Any] = {"id": _response_id(kind, correlation),
                            "object": "chat.completion.chunk" if chat else "text_completion",
                            "created": created, "model": model}
    if chat:
        base["system_fingerprint"] = SYSTEM_FINGERPRINT
    if service_tier is not None:
        base["service_tier"] = service_tier

    def event(choice: dict[str, Any]) -> str:
        return "data: " + json.dumps({**base, "choices": [choice], **extra}) + "\n\n"

    def token(text: str, finish: str | None) -> str:
        if chat:
            delta = {"content": text} if text else {}
            return event({"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish})
        return event({"text": text, "index": 0, "logprobs": None, "finish_reason": finish})

    if chat:
        yield event({"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
                     "finish_reason": None}), None
    for index, piece in enumerate(reply.pieces()):
        yield token(piece, None), index
    yield token("", reply.finish_reason), None
    if include_usage:
        usage = {**base, "choices": [], "usage": usage_json(prompt_tokens, len(reply.words))}
        yield "data: " + json.dumps(usage) + "\n\n", None
    yield "data: [DONE]\n\n", None
