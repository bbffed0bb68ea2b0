"""Real-shaped response bodies of every API the AI gateway fronts, for the provider tests.

Azure OpenAI (chat completions with Azure's alphabetical keys and content-filter results, the Responses
API, audio transcription), Anthropic Messages and Gemini (Google AI and Vertex AI), JSON and streamed,
whole, cut at APIM's 8,192-byte logging cap, and streamed without usage.  Each builder's counts are
chosen so every token kind has its own number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

BODY_CAP = 8192
FILTERS = {"hate": {"filtered": False, "severity": "safe"}, "self_harm": {"filtered": False, "severity": "safe"},
           "sexual": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}


def cut(text: str) -> str:
    """What APIM logs of a longer body: its first 8,192 bytes."""
    return text.encode()[:BODY_CAP].decode("utf-8", "ignore")


def sse(events: list[tuple[str | None, dict[str, Any] | str]], crlf: bool = False) -> str:
    end = "\r\n\r\n" if crlf else "\n\n"
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":") if crlf else None)
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}{end}")
    return "".join(out)


# -- Azure OpenAI ---------------------------------------------------------------------------------------
def azure_chat(model: str, usage: dict[str, Any] | None, content: str = "Fine.", echo_model: bool = False,
               service_tier: str | None = None, echo_tier: bool = False) -> str:
    """A chat completion as Azure OpenAI returns it: keys sorted, choices (with content-filter results)
    first, so a long answer puts the model after the logging cap.  ``service_tier``: the tier the
    response reports (top level); ``echo_tier``: a tool call whose arguments, and metadata, say
    ``"service_tier": "priority"`` (echoed content, not the response's tier)."""
    message: dict[str, Any] = {"annotations": [], "content": content, "refusal": None, "role": "assistant"}
    if echo_model:  # a tool call whose arguments object is echoed with a "model" key of its own
        message["tool_calls"] = [{"function": {"arguments": json.dumps({"model": "echoed"}), "name": "pick"},
                                  "id": "call_1", "type": "function"}]
        message["audio"] = {"id": "audio_1", "data": "", "expires_at": 1764000000, "transcript": "",
                            "model": "echoed-nested"}
    body: dict[str, Any] = {
        "choices": [{"content_filter_results": FILTERS, "finish_reason": "stop", "index": 0, "logprobs": None,
                     "message": message}],
        "created": 1764000000, "id": "chatcmpl-azure", "model": model, "object": "chat.completion",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTERS}],
        "system_fingerprint": "fp_azure"}
    if usage is not None:
        body["usage"] = usage
    if echo_tier:
        message["tool_calls"] = [{"function": {"arguments": json.dumps({"service_tier": "priority"}), "name": "set"},
                                  "id": "call_2", "type": "function"}]
        body["metadata"] = {"service_tier": "priority"}
    if service_tier is not None:
        body["service_tier"] = service_tier
    return json.dumps(dict(sorted(body.items())))


def openai_chat(model: str, usage: dict[str, Any], content: str = "Fine.") -> str:
    """OpenAI's own key order: the model before the choices (a cut answer still names it)."""
    return json.dumps({"id": "chatcmpl-x", "object": "chat.completion", "created": 1764000000, "model": model,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}], "usage": usage, "service_tier": "default"})


def azure_chat_stream(model: str, usage: dict[str, Any] | None, service_tier: str | None = None) -> str:
    """Azure's stream: a prompt-filter chunk with an empty model first, content chunks, a usage chunk only
    when the caller asked stream_options.include_usage, [DONE].  ``service_tier``: on every chunk but the
    prompt-filter one (the usage chunk, the last, included)."""
    base = {"created": 1764000000, "id": "chatcmpl-s", "model": model, "object": "chat.completion.chunk",
            "system_fingerprint": "fp_azure", **({"service_tier": service_tier} if service_tier is not None else {})}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTERS}]})]
    for piece in ("Hel", "lo"):
        events.append((None, {"choices": [{"content_filter_results": FILTERS, "delta": {"content": piece},
                                           "finish_reason": None, "index": 0, "logprobs": None}], **base,
                              **({"usage": None} if usage else {})}))
    events.append((None, {"choices": [{"content_filter_results": {}, "delta": {}, "finish_reason": "stop",
                                       "index": 0, "logprobs": None}], **base, **({"usage": None} if usage else {})}))
    if usage:
        events.append((None, {"choices": [], **base, "usage": usage}))
    events.append((None, "[DONE]"))
    return sse(events)


def responses_json(model: str, usage: dict[str, Any]) -> str:
    return json.dumps({"id": "resp_1", "object": "response", "created_at": 1764000000, "status": "completed",
                       "error": None, "incomplete_details": None, "instructions": "Say \"model\": \"fake\".",
                       "max_output_tokens": None, "model": model,
                       "output": [{"type": "reasoning", "id": "rs_1", "summary": []},
                                  {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                                   "content": [{"type": "output_text", "text": "ok", "annotations": []}]}],
                       "parallel_tool_calls": True, "reasoning": {"effort": "medium", "summary": None},
                       "usage": usage, "user": None, "metadata": {"model": "metadata-echo"}})


def responses_stream(model: str, usage: dict[str, Any], service_tier: str | None = None,
                     echo_tier: bool = False) -> str:
    """A Responses API stream: response.created (the response object without usage), an output delta,
    response.completed with the response object, its usage and ``service_tier``.  ``echo_tier``: the
    request's metadata echoed in the response object says ``"service_tier": "priority"``."""
    response: dict[str, Any] = {"id": "resp_s", "object": "response", "created_at": 1764000000, "model": model,
                                "status": "in_progress", "output": [], "usage": None,
                                "metadata": {"service_tier": "priority"} if echo_tier else {}}
    done = {**response, "status": "completed", "usage": usage,
            **({"service_tier": service_tier} if service_tier is not None else {}),
            "output": [{"type": "message", "id": "msg_s", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": "ok", "annotations": []}]}]}
    return sse([("response.created", {"type": "response.created", "sequence_number": 0, "response": response}),
                ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
                                                "item_id": "msg_s", "output_index": 0, "content_index": 0,
                                                "delta": "ok"}),
                ("response.completed", {"type": "response.completed", "sequence_number": 2, "response": done})])


def transcription_json(usage: dict[str, Any]) -> str:
    """gpt-4o-transcribe: usage names its audio input in input_token_details (singular)."""
    return json.dumps({"text": "Hello there.", "usage": usage})


# -- Anthropic Messages ---------------------------------------------------------------------------------
def anthropic_json(model: str, usage: dict[str, Any] | None, text: str = "Hi.") -> str:
    body: dict[str, Any] = {"id": "msg_01", "type": "message", "role": "assistant", "model": model,
                            "content": [{"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
                                        {"type": "text", "text": text}],
                            "stop_reason": "end_turn", "stop_sequence": None}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body)


def anthropic_stream(model: str, start_usage: dict[str, Any], deltas: Sequence[dict[str, Any] | None],
                     stop: bool = True, text: str = "Hello") -> str:
    """message_start (the input side), a text block, one message_delta per item of ``deltas`` (its usage,
    cumulative; None: a delta without usage), message_stop unless ``stop`` is False."""
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_02", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0})]
    for usage in deltas:
        delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
        if usage is not None:
            delta["usage"] = usage
        events.append(("message_delta", delta))
    if stop:
        events.append(("message_stop", {"type": "message_stop"}))
    return sse(events)


# -- Gemini ---------------------------------------------------------------------------------------------
def gemini_chunk(text: str, usage: dict[str, Any] | None, finish: str | None, model: str) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    chunk: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        chunk["usageMetadata"] = usage
    chunk.update({"modelVersion": model, "responseId": "resp-gemini"})
    return chunk


def gemini_json(model: str, usage: dict[str, Any], text: str = "Sure.") -> str:
    """generateContent: pretty-printed, as Google answers."""
    return json.dumps(gemini_chunk(text, usage, "STOP", model), indent=2)


def gemini_stream(model: str, running: Sequence[dict[str, Any] | None], final: dict[str, Any] | None,
                  complete: bool = True) -> str:
    """alt=sse: CRLF-separated chunks with running usage, the final one with a finishReason."""
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, gemini_chunk(f"part {n} ", usage, None, model)) for n, usage in enumerate(running)]
    if complete:
        events.append((None, gemini_chunk("end.", final, "STOP", model)))
    return sse(events, crlf=True)


def gemini_array(model: str, running: Sequence[dict[str, Any]], final: dict[str, Any]) -> str:
    """streamGenerateContent without alt=sse: one pretty-printed JSON array of the chunks."""
    chunks = [gemini_chunk(f"part {n} ", usage, None, model) for n, usage in enumerate(running)]
    chunks.append(gemini_chunk("end.", final, "STOP", model))
    return "[" + ",\r\n".join(json.dumps(chunk, indent=2) for chunk in chunks) + "]"
