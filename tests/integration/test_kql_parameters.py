"""Values reach KQL only as declared parameters: bound by DuckDB locally, or as typed defaults of
the query's own declaration for Log Analytics.  Both must treat hostile text as a literal."""

from datetime import UTC, datetime
from pathlib import Path

import duckdb_kql
import pytest

from shared.core.kql import bind_as_defaults
from tests.unit.test_kql_literals import QUERY

PAYLOADS = ['x" or 1==1 or Sub=="', "x' or '1'=='1", 'x"; Calls | take 1; //', "x\\\" | where true",
            '" | union Calls | where "" == "', "*", "x) or (true"]


@pytest.fixture
def con(tmp_path: Path):  # type: ignore[no-untyped-def]
    con = duckdb_kql.connect(str(tmp_path / "p.duckdb"))
    con.execute("CREATE TABLE Calls (Sub VARCHAR, Ts TIMESTAMP)")
    rows = [("a", "2026-11-01 00:00:00"), ("b", "2026-11-01 00:00:00")] + [(p, "2026-11-01 00:00:00") for p in PAYLOADS]
    con.executemany("INSERT INTO Calls VALUES (?, ?)", rows)
    return con


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_is_a_literal_in_both_bindings(con, payload: str) -> None:  # type: ignore[no-untyped-def]
    since = datetime(2026, 1, 1, tzinfo=UTC)
    bound = duckdb_kql.query(con, QUERY, {"subscription": payload, "since": since}).fetchall()
    as_defaults = duckdb_kql.query(con, bind_as_defaults(QUERY, {"subscription": payload, "since": since})).fetchall()
    # exactly the one row whose Sub *is* the payload text: no widening, no error
    assert bound == as_defaults == [(1,)]


def test_no_match_stays_no_match(con) -> None:  # type: ignore[no-untyped-def]
    text = bind_as_defaults(QUERY, {"subscription": 'nobody" or true or "', "since": datetime(2026, 1, 1, tzinfo=UTC)})
    assert duckdb_kql.query(con, text).fetchall() == [(0,)]


