"""The period index: day and month usage rows stored a second time, keyed by period.

The usage table is keyed by subscription, so a read of *every* subscription's month is a RowKey
range over all partitions: the service walks every partition of the whole history to find one
month.  The index table (``<prefix>usageindex``) holds the same entities keyed the other way:
PartitionKey = the period (``m|2026-11``, ``d|2026-11-30``, as in the usage RowKey), RowKey = the
usage row's PartitionKey and RowKey joined by a space (below every character of an encoded key, so
one period's rows come in the usage table's order: subscription, then the rest of the key).  An
all-subscription day or month read is then a PartitionKey range (one partition per period), whose
cost follows the rows returned and not the years of history beside them.  The usage report's paged
reader uses the index for one period (its order is the usage table's); longer ranges are scanned.

Beside the completeness marker, the meta partition holds one *touched mark* per (subscription, day)
(RowKey ``touched|d|2026-11-30 <subscription key>``), written by the rollup before that
subscription's first hourly row of that day: with the day partition, one range read tells which
subscriptions may hold hours of a day (:mod:`shared.services.stored_hours`).  Marks are not period
rows: the period reads and ``rebuild`` never see them, and a mark too many only costs a read.

Hour rows are not indexed: they are 24x the day rows, so indexing them would double the largest
write of every run, and an all-subscription hour read is bounded by the report's range anyway.

The index is written in the same store write as the usage rows (:meth:`TableStore.upsert`: one
partition per transaction, each an idempotent replace), so a rerun converges on both tables alike.
``chargeback index rebuild`` writes it again from the usage table (after an upgrade, or to repair
it) and removes index entities whose usage row is gone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.core.keys import (
    KEY_DIGEST,
    LONG_MARK,
    SEPARATOR,
    name_digest,
    partition_key,
    period_code,
    period_range,
    prefix_range,
    storable_name,
)
from shared.core.months import next_month
from shared.core.usage import Granularity

INDEXED = (Granularity.DAY, Granularity.MONTH)
INDEXED_VALUES = frozenset(granularity.value for granularity in INDEXED)
JOIN = " "  # sorts below every character an encoded key holds (shared.core.keys)
MAX_INDEX_KEY = 512  # UTF-16 units of a key (Azurite's limit; keys are ASCII here)
REBUILD_BATCH = 5_000  # entities written at a time by a rebuild (memory stays flat at any history)


def index_table_name(prefix: str) -> str:
    return f"{prefix}usageindex"


def index_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """The index copy of a usage entity (same properties, keys turned around)."""
    row_key: str = entity["RowKey"]
    period = SEPARATOR.join(row_key.split(SEPARATOR, 2)[:2])  # ``d|2026-11-30`` (the code holds one separator)
    return {**entity, "PartitionKey": period, "RowKey": _fitted(f"{entity['PartitionKey']}{JOIN}{row_key}")}


def _fitted(key: str) -> str:
    """The joined key, or, past the key limit, its head and ``%~`` + a hash of the whole (as
    ``shared.core.keys`` shortens a long name).  Only rows whose every name is near the 120-character
    part limit and that name an APIM service get there; the head keeps subscription and period
    first, so the index order still goes subscription by subscription."""
    if len(key) <= MAX_INDEX_KEY:
        return key
    return f"{key[:MAX_INDEX_KEY - len(LONG_MARK) - KEY_DIGEST]}{LONG_MARK}{name_digest(key)[:KEY_DIGEST]}"


def single_period(granularity: Granularity, start: datetime, end: datetime) -> bool:
    """Whether ``[start, end)`` holds at most one period start: one index partition, read in the
    usage table's own order (a longer range comes period by period)."""
    first, last = granularity.ceil(start), granularity.ceil(end)
    following = next_month(first) if granularity is Granularity.MONTH else first + timedelta(days=1)
    return granularity in INDEXED and last <= following


def index_filter(granularity: Granularity, start: datetime, end: datetime) -> tuple[str, dict[str, str]]:
    """The index read of every row whose period starts in ``[start, end)``: a PartitionKey range."""
    low, high = period_range(granularity, start, end)
    return "PartitionKey ge @low and PartitionKey lt @high", {"low": low, "high": high}


# The index is read only once it is known to be complete: it was created with the usage table
# (a fresh install), or `chargeback index rebuild` wrote every period again.  An installation that
# already had usage rows when the index arrived keeps scanning, correct if slower, until then.
META_PARTITION = "~index"  # sorts after every period partition (d|..., m|...): never read as a period
COMPLETE = "complete"


def complete_marker() -> dict[str, Any]:
    return {"PartitionKey": META_PARTITION, "RowKey": COMPLETE}



TOUCHED = "touched"  # RowKey head of the touched marks in the meta partition (after "complete")


def touched_entity(subscription_id: str, day: datetime) -> dict[str, Any]:
    """The mark that ``subscription_id`` has (or is about to have) hourly rows on ``day``."""
    row_key = _fitted(f"{_touched_head(day)}{JOIN}{partition_key(subscription_id)}")
    return {"PartitionKey": META_PARTITION, "RowKey": row_key, "SubscriptionId": storable_name(subscription_id)}


def touched_filter(day: datetime) -> tuple[str, dict[str, str]]:
    """The read of one day's marks: a RowKey range of the meta partition."""
    low, high = prefix_range(f"{_touched_head(day)}{JOIN}")
    return ("PartitionKey eq @meta and RowKey ge @low and RowKey lt @high",
            {"meta": META_PARTITION, "low": low, "high": high})


def _touched_head(day: datetime) -> str:
    return f"{TOUCHED}{SEPARATOR}{period_code(Granularity.DAY, day)}"
