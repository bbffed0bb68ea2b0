"""The deterministic model behind the dev gateway: token counts of a request, and its answer.

Prompt tokens follow OpenAI's accounting at about four bytes per token.  The same prompt always
gets the same answer (words drawn from a fixed vocabulary, one token each, seeded by a hash of
the prompt) and the same embedding; longer prompts get longer answers.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
from dataclasses import dataclass, field
from typing import Any

MAX_COMPLETION_TOKENS = 4096
VOCABULARY = ("the", "gateway", "token", "model", "usage", "report", "team", "cost", "quota", "answer", "request",
              "stream", "latency", "region", "subscription", "product", "deployment", "hour", "day", "month",
              "budget", "limit", "log", "query", "table", "row", "chunk", "probe", "alert", "health", "local",
              "stub", "prompt", "completion", "embedding", "vector", "context", "window", "batch", "retry")


def text_tokens(text: str) -> int:
    """About four bytes per token (what the OpenAI tokenizers average on English text)."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def content_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts count here
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def chat_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """OpenAI's chat accounting: 3 tokens per message + its text (+1 with a name) + 3 to prime the reply."""
    total = 3
    for message in messages:
        total += 3 + text_tokens(content_text(message.get("content"))) + text_tokens(str(message.get("role", "")))
        if message.get("name"):
            total += 1 + text_tokens(str(message["name"]))
    return total


def embedding_inputs(request: dict[str, Any]) -> list[Any]:
    """An embeddings request's ``input`` as a list of items (a string, or a list of token ids, each)."""
    inputs = request.get("input")
    return inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]


def read_prompt(kind: str, request: dict[str, Any]) -> tuple[int, str, list[dict[str, Any]]]:
    """(prompt tokens, the text the answer is derived from, messages as the LLM log shows them)."""
    if kind == "chat/completions":
        messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
        shown = [{"role": str(m.get("role", "")), "content": content_text(m.get("content"))} for m in messages]
        return chat_prompt_tokens(messages), json.dumps(shown), shown
    if kind == "completions":
        prompt = request.get("prompt", "")
        text = "".join(prompt) if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else str(prompt)
        return max(1, text_tokens(text)), text, [{"role": "user", "content": text}]
    items = embedding_inputs(request)
    tokens = 0
    for item in items:
        if isinstance(item, list):
            tokens += len(item)  # already tokens
        else:
            tokens += max(1, text_tokens(str(item or "")))
    return tokens, json.dumps(items), [{"role": "user", "content": json.dumps(items)}]


@dataclass(frozen=True)
class Answer:
    words: tuple[str, ...]  # one token each; streamed one per chunk
    finish_reason: str

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def pieces(self) -> list[str]:
        return [w if i == 0 else " " + w for i, w in enumerate(self.words)]


def answer(prompt_text: str, prompt_tokens: int, max_tokens: int | None) -> Answer:
    """The same prompt always gets the same answer; longer prompts get longer answers."""
    digest = hashlib.sha256(prompt_text.encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    natural = min(MAX_COMPLETION_TOKENS, 8 + digest[8] % 24 + prompt_tokens // 3)
    count = natural if max_tokens is None else max(0, min(natural, max_tokens))
    words = tuple(rng.choice(VOCABULARY) for _ in range(count))
    return Answer(words, "length" if count < natural else "stop")


def embedding(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector]


@dataclass
class PromptCache:
    """The prompt prefixes a provider has cached (Anthropic's cache_control breakpoints): the first request
    with a prefix writes it, later ones read it.  Shared by the gateway's request threads."""

    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, key: str) -> bool:
        """Whether ``key`` was cached before this call (it is from now on)."""
        with self._lock:
            seen = key in self._seen
            self._seen.add(key)
            return seen
