"""The merged index read keeps reading a shard past an empty response page that carries a
continuation (the service may answer a range read so), and stops only past the shard's last page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shared.adapters.usage_pages import TableUsagePages

T = TypeVar("T")


class DirectStore:
    """Only what the shard stream uses of a store: ``call`` runs the operation."""

    def call(self, operation: Callable[[], T]) -> T:
        return operation()


def test_an_empty_page_with_a_continuation_is_not_the_end_of_a_shard() -> None:
    responses: list[tuple[Any, list[dict[str, Any]], Any]] = [
        (None, [], ("s03|d|2026-11-30", "a")),  # empty, more to come
        (("s03|d|2026-11-30", "a"), [{"RowKey": "a 1"}, {"RowKey": "b 1"}], ("s03|d|2026-11-30", "c")),
        (("s03|d|2026-11-30", "c"), [], ("s03|d|2026-11-30", "d")),
        (("s03|d|2026-11-30", "d"), [{"RowKey": "d 1"}], None),
    ]
    pages = TableUsagePages(DirectStore())  # type: ignore[arg-type]
    assert [entity["RowKey"] for entity in pages._rest(iter(responses))] == ["a 1", "b 1", "d 1"]
    assert pages._next_entities(iter([])) is None  # past the last page
    assert pages._next_entities(iter(responses[:1])) == []  # an empty page is a page
