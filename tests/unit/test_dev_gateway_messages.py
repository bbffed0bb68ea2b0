"""The dev gateway splits logged messages without losing a byte."""

from __future__ import annotations

from shared.tooling.dev_gateway import (
    split_messages,
)


def test_split_messages_keeps_every_byte() -> None:
    messages = [{"role": "user", "content": "é" * 10 + "abc"}, {"role": "assistant", "content": "xyz"}]
    pieces = split_messages(messages, 7)
    assert all(sum(len(m["content"].encode()) for m in piece) <= 7 for piece in pieces)
    joined = [(m["role"], m["content"]) for piece in pieces for m in piece]
    assert "".join(c for r, c in joined if r == "user") == "é" * 10 + "abc"
    assert "".join(c for r, c in joined if r == "assistant") == "xyz"
