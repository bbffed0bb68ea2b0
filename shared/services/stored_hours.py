"""Which (subscription, day)s may hold stored hourly rows, so the rollup reads only theirs.

The rollup recomputes a day from the stored hours of the subscriptions a chunk returns (stale hours
under keys the query no longer returns are emptied, hours outside the chunk are summed in).  Reading
them is one round trip per (subscription, day); on a range nothing was stored for, every such read
comes back empty.  So before the first write of a day in a run, one read of the day's *listing*
tells which subscriptions may hold hours of it:

- the *touched marks* of the day (:mod:`shared.adapters.usage_index`): the rollup writes a
  subscription's mark for a day, and waits for it, before handing over any hourly row of that
  (subscription, day);
- the period index's day partition (read only when some subscription is not marked): every
  subscription with a day row, which covers hours stored before marks existed (each hour was
  written with its day row).  While the index is not complete, this answer is "anyone".

Why a subscription listed nowhere holds no stored hour of that day, whatever crashed when: an hour
is written only by the rollup (or the quarantine's retry of a row the rollup once handed over), and
from this version on only after its mark is stored; marks are never deleted (``index rebuild``
leaves the marks alone); a mark the store would not take stops the run before its hours.
So a run that crashed between marks, hours and day rows leaves marks at least for every hour it
wrote, and the next run reads those.  A spurious mark (marks written, hours never) costs a read and
nothing else, which is also why marks need no writer-lease confirmation.  (Hours written before
marks existed rely on their day row: an older version that crashed between the usage and the index
write of one store write could leave hours with no index entry; ``chargeback rollup --from/--to``
over such a range after ``index rebuild`` is exact again, since the rebuild indexes those day rows.)

Within one run a listing is taken once per day, before this run writes anything of that day, and
kept: a subscription not listed then holds no hours but this run's own.  Those are summed here as
the day rows this run wrote (*carried* to the day's next chunk), so a day split over several chunks
needs no read either.  Only days the run is still in are kept (memory: one or two days' day rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared.core.usage import UsageRow
from shared.errors import StorageError
from shared.ports import RollupUsageRepository

_NOT_READ = frozenset({"\0not read"})  # a day whose index partition was not needed yet


class StoredHours:
    """One run's knowledge of which subscriptions may hold stored hours of the days it writes."""

    def __init__(self, usage: RollupUsageRepository) -> None:
        self._usage = usage
        self._touched: dict[datetime, frozenset[str]] = {}  # marks before this run wrote the day
        self._indexed: dict[datetime, frozenset[str] | None] = {}
        self._marked: dict[datetime, set[str]] = {}  # marks stored now (this run's included)
        self._carried: dict[tuple[str, datetime], list[UsageRow]] = {}

    def may_hold(self, subscription: str, day: datetime) -> bool:
        """Whether ``subscription`` may hold hours of ``day`` written before this run (then they are
        read); otherwise its only stored hours of the day are this run's (:meth:`carried`)."""
        if subscription in self._touched_before(day):
            return True
        indexed = self._indexed.get(day, _NOT_READ)
        if indexed is _NOT_READ:
            # Read when the first subscription not marked before the run shows up, before its rows
            # are written: whatever this run wrote of the day by then is of marked subscriptions.
            indexed = self._indexed[day] = self._usage.indexed_subscriptions(day)
        return indexed is None or subscription in indexed

    def carried(self, subscription: str, day: datetime) -> list[UsageRow]:
        """The day rows this run wrote for a subscription that :meth:`may_hold` nothing."""
        return self._carried.get((subscription, day), [])

    def carry(self, subscription: str, day: datetime, day_rows: list[UsageRow]) -> None:
        self._carried[(subscription, day)] = day_rows

    def mark(self, days: Iterable[tuple[str, datetime]]) -> None:
        """Store the touched marks these (subscription, day)s lack; returns once they are stored."""
        missing = sorted({(subscription, day) for subscription, day in days
                          if subscription not in self._marked_now(day)})
        if not missing:
            return
        written = self._usage.mark_touched(missing)
        if written != len(missing):
            raise StorageError(f"the store kept {len(missing) - written} of {len(missing)} touched marks aside; "
                               "no hour of those subscriptions was written (the next run tries again)")
        for subscription, day in missing:
            self._marked[day].add(subscription)

    def forget_before(self, day: datetime) -> None:
        """Drop what is kept of days before ``day`` (the run has left them)."""
        for kept in (self._touched, self._indexed, self._marked):
            for old in [at for at in kept if at < day]:
                del kept[old]
        for key in [key for key in self._carried if key[1] < day]:
            del self._carried[key]

    def _marked_now(self, day: datetime) -> set[str]:
        if day not in self._marked:
            self._marked[day] = set(self._touched_before(day))
        return self._marked[day]

    def _touched_before(self, day: datetime) -> frozenset[str]:
        if day not in self._touched:
            self._touched[day] = self._usage.touched_subscriptions(day)
        return self._touched[day]
