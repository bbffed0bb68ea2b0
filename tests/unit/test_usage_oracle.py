"""The independent oracle of usage in logged bodies: the response's own usage object wins."""

from __future__ import annotations

import json
from typing import Any

from tests.expected import body_usage

CHAT_FAKE = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}


CHAT_REAL = {"prompt_tokens": 60000, "completion_tokens": 40000, "total_tokens": 100000,
             "prompt_tokens_details": {"cached_tokens": 1024}}


RESPONSES_FAKE = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}


RESPONSES_REAL = {"input_tokens": 60000, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 40000,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 100000}


# Said by the model, so JSON-escaped inside a string: `\"usage\": {...}` in the logged text.
SPOOF_TEXT = 'Report: "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2} done'


def function_tool(fake: dict[str, int]) -> dict[str, Any]:
    """A function tool whose parameters schema holds a usage-shaped object (an example / default)."""
    return {"type": "function", "function": {"name": "report_usage", "parameters": {
        "examples": [{"usage": fake}], "type": "object",
        "properties": {"usage": {"type": "object", "default": fake}}}}}


def chat_completion(**echo: Any) -> dict[str, Any]:
    """A chat completion with echoed fields placed before the real usage."""
    return {"id": "chatcmpl-x", "object": "chat.completion", "created": 1764000000, "model": "gpt-4o-2024-08-06",
            **echo,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": SPOOF_TEXT}}],
            "usage": CHAT_REAL, "system_fingerprint": "fp_x"}


def response_object(usage: dict[str, Any] | None) -> dict[str, Any]:
    """A Responses API response in its documented key order: text.format and tools (echoed request
    content, each with a usage-shaped fake) before usage, metadata after."""
    schema = {"examples": [{"usage": RESPONSES_FAKE}], "type": "object", "properties": {"usage": {
        "type": "object", "properties": {"input_tokens": {"type": "integer"}}, "default": RESPONSES_FAKE}}}
    return {
        "id": "resp_x", "object": "response", "created_at": 1764000000,
        "status": "completed" if usage else "in_progress", "error": None, "incomplete_details": None,
        "instructions": "Answer with a usage report.", "max_output_tokens": None, "model": "gpt-4.1-2025-04-14",
        "output": [{"type": "message", "id": "msg_x", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": SPOOF_TEXT, "annotations": []}]}] if usage else [],
        "parallel_tool_calls": True, "previous_response_id": None, "store": True, "temperature": 1.0,
        "text": {"format": {"type": "json_schema", "name": "usage_report", "strict": False, "schema": schema}},
        "tool_choice": "auto",
        "tools": [{"type": "function", "name": "report_usage", "parameters": schema, "strict": False}],
        "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None,
        "metadata": {"usage": json.dumps(RESPONSES_FAKE)},  # metadata values are strings
    }


def sse(events: list[tuple[str | None, dict[str, Any]]], done: bool) -> str:
    return "".join((f"event: {name}\n" if name else "") + f"data: {json.dumps(event)}\n\n" for name, event in events) \
        + ("data: [DONE]\n\n" if done else "")


def chat_stream() -> str:
    """Chunks with "usage": null (one echoing a fake in a nested object), the model's text as deltas,
    and the final usage chunk, which itself holds a nested fake before its own usage."""
    chunk = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06"}
    events: list[tuple[str | None, dict[str, Any]]] = [
        (None, {**chunk, "echo": {"usage": CHAT_FAKE}, "choices": [{"index": 0, "delta": {"role": "assistant"}}],
                "usage": None}),
        *((None, {**chunk, "choices": [{"index": 0, "delta": {"content": piece}}], "usage": None})
          for piece in (SPOOF_TEXT[:20], SPOOF_TEXT[20:])),
        (None, {**chunk, "metadata": {"usage": CHAT_FAKE}, "choices": [], "usage": CHAT_REAL}),
    ]
    return sse(events, done=True)


def responses_stream(complete: bool = True) -> str:
    """response.created (echo with fakes, usage null), text deltas saying a fake, response.completed."""
    events: list[tuple[str | None, dict[str, Any]]] = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": response_object(None)}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
                                        "item_id": "msg_x", "output_index": 0, "content_index": 0,
                                        "delta": SPOOF_TEXT}),
        ("response.output_text.done", {"type": "response.output_text.done", "sequence_number": 2,
                                       "item_id": "msg_x", "output_index": 0, "content_index": 0, "text": SPOOF_TEXT}),
    ]
    if complete:
        events.append(("response.completed", {"type": "response.completed", "sequence_number": 3,
                                              "response": response_object(RESPONSES_REAL)}))
    return sse(events, done=False)


def cut(text: str) -> str:
    """As APIM logs it past its 8,192-byte body cap."""
    return text.encode()[:8192].decode("utf-8", "ignore")


# subscription -> (operation, logged body)
METERED: dict[str, tuple[str, str]] = {
    "chat-json-tool-parameters": ("ChatCompletions_Create", json.dumps(chat_completion(
        tools=[function_tool(CHAT_FAKE)]))),
    "chat-json-metadata": ("ChatCompletions_Create", json.dumps(chat_completion(metadata={"usage": CHAT_FAKE}))),
    "chat-json-output-text": ("ChatCompletions_Create", json.dumps(chat_completion())),
    "chat-json-tool-call-arguments": ("ChatCompletions_Create", json.dumps(chat_completion(
        tool_calls_echo=[{"type": "function", "function": {"name": "report_usage",
                                                          "arguments": json.dumps({"usage": CHAT_FAKE})}}]))),
    "chat-sse": ("ChatCompletions_Create", chat_stream()),
    "responses-json": ("Responses_Create", json.dumps(response_object(RESPONSES_REAL))),
    "responses-sse": ("Responses_Create", responses_stream()),
}


# Past the cap: the real usage is cut off, fakes remain before the cut.
PADDING = "x" * 9000


def padded_tools(response: dict[str, Any]) -> dict[str, Any]:
    """A long tool description after the echoed schemas: the cap falls between them and the usage."""
    return {**response, "tools": [*response["tools"], {"type": "function", "name": "pad", "description": PADDING}]}


TRUNCATED: dict[str, tuple[str, str]] = {
    "chat-json-cut": ("ChatCompletions_Create", cut(json.dumps(chat_completion(
        tools=[function_tool(CHAT_FAKE)], padding=PADDING)))),
    "responses-json-cut": ("Responses_Create", cut(json.dumps(padded_tools(response_object(RESPONSES_REAL))))),
    "responses-sse-cut": ("Responses_Create", responses_stream(complete=False)),
    "responses-sse-cut-in-completed": ("Responses_Create", cut(responses_stream().replace(
        '"response.completed", "sequence_number": 3, "response": {"id"',
        '"response.completed", "sequence_number": 3, "response": {"pad": "' + PADDING + '", "id"'))),
}


def first_usage_in_text(body: str) -> Any:
    """What a search for the first `"usage": {` in the text finds (the rule these bodies defeat)."""
    at = body.index('"usage": {')
    return json.JSONDecoder().raw_decode(body, at + len('"usage": '))[0]


def test_the_fake_comes_first_in_every_body() -> None:
    """The cases are meaningful: a text search finds a fake before the real usage (the output-text
    and tool-call-arguments fakes are JSON-escaped, so there the text search skips them too)."""
    for subscription, (_, body) in {**METERED, **TRUNCATED}.items():
        escaped = subscription in ("chat-json-output-text", "chat-json-tool-call-arguments")
        assert ('\\"usage\\"' in body) if escaped else first_usage_in_text(body) in (CHAT_FAKE, RESPONSES_FAKE), \
            subscription
    for _, body in TRUNCATED.values():
        assert len(body.encode()) <= 8192


def test_oracle_takes_the_responses_own_usage() -> None:
    for subscription, (_, body) in METERED.items():
        usage = body_usage(body)[0]
        assert usage in (CHAT_REAL, RESPONSES_REAL), subscription
    assert all(body_usage(body)[0] is None for _, body in TRUNCATED.values())
