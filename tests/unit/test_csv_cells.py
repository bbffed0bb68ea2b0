"""CSV cells safe in any spreadsheet locale: every field quoted, formula starts of a cell and of each
;/,-separated part neutralised, control characters removed, numeric columns left as numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from shared.core.csv_cells import CHUNK, csv_lines, quoted_csv, safe_cell

STARTS = ["=", "+", "-", "@", "\t", "\r", "\uff1d"]


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("separator", [";", ",", "; ", ",  "])
def test_a_formula_after_a_separator_is_neutralised(start: str, separator: str) -> None:
    cleaned = safe_cell(f"team{separator}{start}HYPERLINK(1)")
    head, _, tail = cleaned.partition(separator[0])
    assert head == "team"
    assert tail.lstrip(" ").startswith("'"), cleaned
    # whatever separator a spreadsheet splits on, no part starts like a formula
    for part in cleaned.replace(",", ";").split(";"):
        assert part.lstrip(" ")[:1] not in ("=", "+", "-", "@", "\uff1d"), cleaned
    assert "\t" not in cleaned and "\r" not in cleaned


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+2", "'=1+2"), ("-1", "'-1"), ("  @x", "'  @x"), ("\x01=x", "'=x"), ("a;\x02+x", "a;'+x"),
    ("line\nbreak\u2028\u2029\x85", "linebreak"), ("gpt-4o", "gpt-4o"), ("a-b;c,d", "a-b;c,d"),
])
def test_safe_cell(text: str, expected: str) -> None:
    assert safe_cell(text) == expected


def test_every_field_is_quoted_and_numbers_stay_numbers() -> None:
    text = quoted_csv(["name", "cost", "tokens"], [{"name": "-credit;=x", "cost": Decimal("-1.50"), "tokens": -3},
                                                   {"name": "ok", "cost": "-0.25", "tokens": 7}],
                      numeric={"cost", "tokens"})
    lines = text.split("\r\n")
    assert lines[0] == '"name","cost","tokens"'
    assert lines[1] == '"\'-credit;\'=x","-1.50","-3"'
    assert lines[2] == '"ok","-0.25","7"' and lines[3] == ""
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [Decimal(r["cost"]) for r in parsed] == [Decimal("-1.50"), Decimal("-0.25")]


@pytest.mark.parametrize(("value", "expected"), [("-1", "-1"), ("-0.0025", "-0.0025"), (-7, "-7"),
                                                 ("-1+1", "'-1+1"), ("-1.5 credit", "'-1.5 credit"), ("-.5", "'-.5"),
                                                 ("1e3", "1e3"), ("-1e3", "'-1e3"), ("+1", "'+1")])
def test_a_plain_number_is_a_number_in_any_column_and_anything_else_is_text(value: object, expected: str) -> None:
    assert quoted_csv(["note"], [{"note": value}]).split("\r\n")[1] == f'"{expected}"'


def test_csv_lines_stream_in_bounded_pieces() -> None:
    records = ({"n": i, "name": f"row-{i}"} for i in range(50_000))
    pieces = list(csv_lines(["n", "name"], records, numeric={"n"}))
    assert len(pieces) > 10 and max(len(p) for p in pieces) < CHUNK + 200
    rows = list(csv.reader(io.StringIO("".join(pieces))))
    assert len(rows) == 50_001 and rows[-1] == ["49999", "row-49999"]
