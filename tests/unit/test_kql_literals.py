"""KQL parameters: declarations read, values checked against their type, literals rendered."""

from datetime import UTC, datetime

import pytest

from shared.core.kql import bind_as_defaults, declared_parameters, literal

QUERY = """declare query_parameters(subscription:string, since:datetime);
Calls | where Sub == subscription and Ts >= since | summarize n = count()"""


def test_declaration_is_read() -> None:
    params = declared_parameters(QUERY)
    assert [(p.name, p.kql_type) for p in params] == [("subscription", "string"), ("since", "datetime")]


@pytest.mark.parametrize(("kql_type", "value"), [
    ("string", "line\nbreak"), ("string", 5), ("datetime", datetime(2026, 1, 1)), ("datetime", "2026-01-01"),
    ("long", "5"), ("long", True), ("real", float("nan")), ("bool", 1), ("dynamic", {}),
])
def test_values_of_the_wrong_type_are_refused(kql_type: str, value: object) -> None:
    with pytest.raises(ValueError):
        literal(kql_type, value)


def test_undeclared_or_missing_values_are_refused() -> None:
    with pytest.raises(ValueError, match="undeclared"):
        bind_as_defaults(QUERY, {"subscription": "a", "since": datetime(2026, 1, 1, tzinfo=UTC), "extra": 1})
    with pytest.raises(ValueError, match="since"):
        bind_as_defaults(QUERY, {"subscription": "a"})


def test_literals() -> None:
    assert literal("string", 'a"b\\c') == '"a\\"b\\\\c"'
    assert literal("datetime", datetime(2026, 11, 25, 13, tzinfo=UTC)) == "datetime(2026-11-25T13:00:00.000000Z)"
    assert literal("long", 42) == "long(42)"
