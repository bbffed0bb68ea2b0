"""JSON log files: JSON lines as a storage-account export writes them, concatenated documents,
``{"records": [...]}`` documents (older storage exports, Event Hub messages) and plain arrays,
each record with the line it starts on.  A value that is not valid JSON is reported at its line
and reading resumes at the next line.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from shared.tooling.log_import.records import Item, Malformed, record_to_row


class _Lines:
    def __init__(self, text: str) -> None:
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def of(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1


_WS = re.compile(r"\s*")


def _skip_space(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos

_RECORDS_DOC = re.compile(r'\{\s*"records"\s*:\s*(?=\[)')
_DECODER = json.JSONDecoder()


def json_values(text: str, line_of: Callable[[int], int] | None = None) -> Iterator[tuple[int, Any] | Malformed]:
    """Records in ``text`` with their start line: top-level values one after another (JSON lines,
    concatenated documents), each array or ``{"records": [...]}`` expanded to its elements.

    A value that is not valid JSON is reported at its line and reading resumes at the next line.
    """
    lines_of = line_of or _Lines(text).of
    pos, end = 0, len(text)
    while True:
        pos = _skip_space(text, pos)
        if pos >= end:
            return
        line = lines_of(pos)
        try:
            value, after = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield Malformed(line, f"bad JSON: {exc.msg} (column {exc.colno})")
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline + 1
            continue
        records = _RECORDS_DOC.match(text, pos)
        if isinstance(value, list):
            yield from _array_elements(text, pos, lines_of)
        elif isinstance(value, dict) and isinstance(value.get("records"), list):
            if records:  # the usual layout: element line numbers are known
                yield from _array_elements(text, records.end(), lines_of)
            else:
                yield from ((line, element) for element in value["records"])
        else:
            yield line, value
        pos = after


def _array_elements(text: str, bracket: int, line_of: Callable[[int], int]) -> Iterator[tuple[int, Any]]:
    """Elements of the (already validated) JSON array starting at ``text[bracket] == "["``."""
    pos = _skip_space(text, bracket + 1)
    if text[pos] == "]":
        return
    while True:
        element, after = _DECODER.raw_decode(text, pos)
        yield line_of(pos), element
        pos = _skip_space(text, after)
        if text[pos] == "]":
            return
        pos = _skip_space(text, pos + 1)  # past the comma


def json_items(text: str, table: str | None) -> Iterator[Item]:
    for entry in json_values(text):
        yield entry if isinstance(entry, Malformed) else record_to_row(entry[1], entry[0], table)
