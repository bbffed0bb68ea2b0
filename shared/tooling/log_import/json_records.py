"""JSON log files: JSON lines as a storage-account export writes them, concatenated documents,
``{"records": [...]}`` documents (older storage exports, Event Hub messages) and plain arrays.

Every record comes with where it starts: its line and column, so that a record inside a one-line
``{"records": [...]}`` document is still found.  A value that is not valid JSON is reported where
it starts, saying where the parser stopped; reading resumes at the next line that can start a
top-level value (not indented, not closing a document): the next JSON line, or the next document
of a pretty-printed file.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from shared.tooling.log_import.records import Item, Malformed, record_to_row


class Located(NamedTuple):
    line: int
    column: int | None  # 1-based; None where columns mean nothing (an Avro event's body)
    value: Any


Position = Callable[[int], tuple[int, int | None]]


class _Lines:
    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, pos: int) -> tuple[int, int | None]:
        """1-based line and column of the character at ``pos``."""
        index = bisect.bisect_right(self._starts, pos) - 1
        return index + 1, pos - self._starts[index] + 1


_WS = re.compile(r"\s*")
# A line that can start a top-level value: not indented, not closing or continuing a document.
_NEXT_VALUE_LINE = re.compile(r"^[^\s\]},:]", re.MULTILINE)
_DECODER = json.JSONDecoder()


def _skip_space(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def json_values(text: str, position: Position | None = None) -> Iterator[Located | Malformed]:
    """Records in ``text`` with where they start: top-level values one after another (JSON lines,
    concatenated documents), each array or ``{"records": [...]}`` expanded to its elements."""
    where = position or _Lines(text).position
    pos, end = 0, len(text)
    while True:
        pos = _skip_space(text, pos)
        if pos >= end:
            return
        try:
            value, after = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            line, column = where(pos)
            yield Malformed(line, f"bad JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", column=column)
            newline = text.find("\n", pos)
            resume = _NEXT_VALUE_LINE.search(text, newline + 1) if newline >= 0 else None
            pos = resume.start() if resume else end
            continue
        if isinstance(value, list):
            yield from _array_elements(text, pos, where)
        elif isinstance(value, dict) and isinstance(value.get("records"), list):
            yield from _array_elements(text, _records_array(text, pos), where)
        else:
            yield Located(*where(pos), value)
        pos = after


def _records_array(text: str, brace: int) -> int:
    """Where the ``records`` array of the (already validated) object at ``text[brace] == "{"`` starts."""
    found = -1
    pos = _skip_space(text, brace + 1)
    while text[pos] != "}":
        key, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_space(text, _skip_space(text, pos) + 1)  # past the colon
        if key == "records":
            found = pos  # the last one wins, as in json.loads
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_space(text, pos)
        if text[pos] == ",":
            pos = _skip_space(text, pos + 1)
    return found


def _array_elements(text: str, bracket: int, where: Position) -> Iterator[Located]:
    """Elements of the (already validated) JSON array starting at ``text[bracket] == "["``."""
    pos = _skip_space(text, bracket + 1)
    if text[pos] == "]":
        return
    while True:
        element, after = _DECODER.raw_decode(text, pos)
        yield Located(*where(pos), element)
        pos = _skip_space(text, after)
        if text[pos] == "]":
            return
        pos = _skip_space(text, pos + 1)  # past the comma


def json_items(text: str, table: str | None) -> Iterator[Item]:
    for entry in json_values(text):
        if isinstance(entry, Malformed):
            yield entry
            continue
        item = record_to_row(entry.value, entry.line, table)
        yield dataclasses.replace(item, column=entry.column) if isinstance(item, Malformed) else item
