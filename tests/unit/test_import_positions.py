"""Where an import problem is: a record inside a ``{"records": [...]}`` document is reported at its
own line and column (one-line documents included), and bad JSON says where the parser stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.tooling.log_import.readers import parse_bytes
from shared.tooling.log_import.records import Malformed, Row
from shared.tooling.log_import.writer import ImportReport, Skip


def gateway(cid: str, category: str = "GatewayLogs") -> dict[str, Any]:
    return {"time": "2026-11-20T10:00:05Z", "category": category, "correlationId": cid,
            "properties": {"apimSubscriptionId": "team-a", "responseCode": 200}}


def items(text: str) -> list[Row | Malformed]:
    return list(parse_bytes(text.encode()).items)


def test_records_of_a_one_line_document_have_their_own_column() -> None:
    document = {"records": [gateway("a"), gateway("b"), gateway("c", category="Nope"), gateway("d")]}
    text = json.dumps(document)
    found = items(text)
    assert [type(i) for i in found] == [Row, Row, Malformed, Row]
    bad = found[2]
    assert isinstance(bad, Malformed) and bad.line == 1
    start = text.index('{"time"', text.index('"correlationId": "b"'))  # the third record's opening brace
    assert bad.column == start + 1 and bad.reason == "unknown category 'Nope'"
    report = ImportReport(Path("ws.duckdb"))
    report.skip("export.json", "line", bad)
    assert f"export.json line 1 column {start + 1}: unknown category 'Nope'" in report.summary()


def test_records_array_after_other_keys_keeps_real_lines() -> None:
    text = json.dumps({"meta": {"records": 1}, "records": [gateway("a"), gateway("b", category="Nope")]}, indent=2)
    found = items(text)
    bad = found[1]
    assert isinstance(found[0], Row) and isinstance(bad, Malformed)
    lines = text.splitlines()
    expected = max(i for i, line in enumerate(lines, 1) if line == "    {")  # the second record's brace
    assert (bad.line, bad.column) == (expected, 5)


def test_bad_json_inside_a_document_names_where_the_parser_stopped() -> None:
    pretty = json.dumps({"records": [gateway("a"), gateway("b")]}, indent=2)
    broken = pretty.replace('"correlationId": "b"', '"correlationId": b', 1)
    stop = broken[: broken.index(": b,") + 2].splitlines()  # the text up to the bad token
    text = broken + "\n" + json.dumps(gateway("after")) + "\n"
    found = items(text)
    assert len(found) == 2  # the document, reported once (no fragments of it), then the next line
    bad, after = found
    assert isinstance(bad, Malformed) and (bad.line, bad.column) == (1, 1)
    assert bad.reason == f"bad JSON: Expecting value at line {len(stop)} column {len(stop[-1]) + 1}"
    assert isinstance(after, Row) and after.values["CorrelationId"] == "after"
    assert after.line == len(broken.splitlines()) + 1


def test_a_skip_at_the_start_of_its_line_shows_no_column() -> None:
    assert Skip("f.json", "line", 7, "x", 1).where() == "line 7"
    assert Skip("f.avro", "event", 3, "x", None).where() == "event 3"
