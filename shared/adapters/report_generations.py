"""Report generations: which version of a month's stored rows a materialized report was made from.

A month report rendered once and kept (:mod:`shared.adapters.month_report_tables`) is valid only
while nothing it was read from has changed.  Every store write of usage or period-index rows of a
month changes that month's *generation*, in the state table (PartitionKey ``report-generation``,
RowKey ``m|2026-11``), in two steps:

1. before the rows are sent, the generation is marked *changing* (a new token, ``Settled`` false);
2. once every one of them was written, it is *settled* under another new token.

A reader takes the generation before it reads the rows and keeps what it renders under it only if
it was settled; it serves a kept report only when that report's generation is the settled one now.
Why that is enough, whatever crashes when: a report rendered while a write was on its way was taken
either under the *changing* mark (never kept) or under the token settled before that write began,
which step 1 already replaced.  A write that fails part way leaves its month *changing*: nothing of
it is materialized until a later write of the month settles it (the next rollup run).  Tokens are
random, never counted up, so two writers never need to read one another's.  Writers of one month
are serialized by the rollup's writer lease; ``chargeback index rebuild`` (which also deletes
index entities) changes the *epoch* (RowKey ``*``), which every month's generation includes.

Hourly rows count too: a month whose prices change inside a day is priced from that day's hours.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from shared.adapters.table_query import query
from shared.errors import StorageError

PARTITION = "report-generation"
EPOCH = "*"  # every month's generation includes it (the index rebuild changes it)
_PERIOD = re.compile(r"[hdm]\|(\d{4}-\d{2})")  # the head of a usage RowKey or an index PartitionKey


def months_written(entities: Iterable[dict[str, Any]], *, key: str) -> set[str]:
    """The months (``2026-11``) whose rows these usage (``key="RowKey"``) or index
    (``key="PartitionKey"``) entities are; entities of no period (index marks) are none."""
    months = set()
    for entity in entities:
        found = _PERIOD.match(str(entity.get(key, "")))
        if found:
            months.add(found.group(1))
    return months


def generation_key(month: str) -> str:
    return f"m|{month}"


def _mark(row_key: str, settled: bool) -> dict[str, Any]:
    return {"PartitionKey": PARTITION, "RowKey": row_key, "Token": uuid.uuid4().hex, "Settled": settled}


@contextmanager
def changing(row_keys: Iterable[str], write: Callable[[list[dict[str, Any]]], int]) -> Iterator[None]:
    """Mark ``row_keys`` (generation keys, or :data:`EPOCH`) changing, run the block, then settle
    them; a block that raises leaves them changing.  ``write`` stores entities of the state table."""
    keys = sorted(set(row_keys))
    if not keys:
        yield
        return
    _stored(write, [_mark(key, settled=False) for key in keys])
    yield
    _stored(write, [_mark(key, settled=True) for key in keys])


def _stored(write: Callable[[list[dict[str, Any]]], int], marks: list[dict[str, Any]]) -> None:
    if write(marks) != len(marks):  # set aside by the store: the rows must not be written unannounced
        raise StorageError(f"the store did not keep the report generation marks {[m['RowKey'] for m in marks]}")


def read_generation(table: Any, call: Callable[[Callable[[], Any]], Any], month: str) -> str | None:
    """The settled generation of ``month`` (``2026-11``) with the epoch, or ``None`` while either is
    changing.  A month never written since generations existed reads as ``-``: any later write of it
    marks it changing first."""
    wanted = {EPOCH, generation_key(month)}
    entities = call(lambda: list(query(table, "PartitionKey eq @p and ( RowKey eq @epoch or RowKey eq @month )",
                                       {"p": PARTITION, "epoch": EPOCH, "month": generation_key(month)},
                                       ("RowKey", "Token", "Settled"))))
    tokens = {str(entity["RowKey"]): entity for entity in entities if entity.get("RowKey") in wanted}
    if any(entity.get("Settled") is not True for entity in tokens.values()):
        return None
    return "/".join(str(tokens[key]["Token"]) if key in tokens else "-" for key in sorted(wanted))
